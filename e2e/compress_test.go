package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/genieacs"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
)

// TestGenieACSCompression: a Device:2.19 agent with HTTPCompression GZIP
// bootstraps against GenieACS (which reads gzipped requests), its
// provisions run, and a refresh of a subtree works.
func TestGenieACSCompression(t *testing.T) {
	acs := genieacs.Start(t, genieacs.Options{})
	require.NoError(t, acs.InstallDefaults())
	dir := t.TempDir()
	cfg := fmt.Sprintf(`acs: {url: "%s"}
device: {data_model: "Device:2.19", oui: 00D09E, product_class: GZ, serial_number: GA-GZIP-1}
state_dir: {dir}/state
connection_request: {listen: "127.0.0.1:%d"}
udp_connection_request: {listen: ""}
control: {socket: {dir}/agent.sock}
parameters:
  Device.ManagementServer.HTTPCompression: GZIP
log: {level: debug}
`, acs.CWMP, freeTCP(t))
	agent := netlab.StartAgent(t, "", dir, cfg)
	id := genieacs.DeviceID("00D09E", "GZ", "GA-GZIP-1")
	eventually(t, 60*time.Second, func() bool {
		doc, _ := acs.Device(id)
		v, _ := genieacs.Value(doc, "Device.ManagementServer.PeriodicInformInterval")
		return v == "300"
	}, "the device bootstrapped and the inform provision ran")
	assert.Equal(t, "GZIP", agent.Get("Device.ManagementServer.HTTPCompression"))
	code, _, err := acs.Task(id, map[string]any{"name": "refreshObject", "objectName": "Device.DeviceInfo"}, true, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	noFaults(t, acs, id)
	log, err := os.ReadFile(filepath.Join(dir, "agent.log"))
	require.NoError(t, err)
	assert.NotContains(t, string(log), "refused a compressed request", "GenieACS took the gzipped requests")
}
