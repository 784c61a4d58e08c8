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

// TestGenieACSOwnRequests: GenieACS 1.2 takes Inform, GetRPCMethods and
// TransferComplete from a CPE, and a RequestDownload makes its worker
// throw (the session is cut, every retry again). The agent asks
// GetRPCMethods first and sends the device's RequestDownload and
// AutonomousTransferComplete only to an ACS that lists them: here neither
// goes, GenieACS stays up, and the events do not come back.
func TestGenieACSOwnRequests(t *testing.T) {
	acs := genieacs.Start(t, genieacs.Options{})
	require.NoError(t, acs.InstallDefaults())
	dir := t.TempDir()
	cfg := fmt.Sprintf(`acs: {url: "%s"}
device: {data_model: "Device:2.19", oui: 00D09E, product_class: OWN, serial_number: GA-OWN-1}
state_dir: {dir}/state
connection_request: {listen: "127.0.0.1:%d"}
udp_connection_request: {listen: ""}
control: {socket: {dir}/agent.sock}
log: {level: debug}
`, acs.CWMP, freeTCP(t))
	agent := netlab.StartAgent(t, "", dir, cfg)
	id := genieacs.DeviceID("00D09E", "OWN", "GA-OWN-1")
	debug := acs.LogFile("debug.yaml")
	eventually(t, 60*time.Second, func() bool {
		doc, _ := acs.Device(id)
		v, _ := genieacs.Value(doc, "Device.ManagementServer.PeriodicInformInterval")
		return v == "300"
	}, "the device bootstrapped")
	require.NotNil(t, agent.Call("request-download", map[string]string{"file_type": "1 Firmware Upgrade Image", "Version": "2.0"}))
	require.NotNil(t, agent.Call("transfer.autonomous", map[string]string{"file_type": "1 Firmware Upgrade Image", "transfer_url": "http://updates.example/fw.bin"}))
	count := func(method string) int {
		n := 0
		for _, w := range received(t, debug, id) {
			if w.Msg != nil && w.Msg.Method() == method {
				n++
			}
		}
		return n
	}
	eventually(t, 30*time.Second, func() bool { return count("GetRPCMethods") >= 1 }, "the agent asked GenieACS's methods")
	code, _, err := acs.Task(id, map[string]any{"name": "getParameterValues", "parameterNames": []string{"Device.DeviceInfo.UpTime"}}, true, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "GenieACS's sessions go on")
	assert.Zero(t, count("RequestDownload"))
	assert.Zero(t, count("AutonomousTransferComplete"))
	infs := informs(t, debug, id)
	assert.False(t, hasEvent(infs[len(infs)-1], "9 REQUEST DOWNLOAD"), "the event is not carried again")
	assert.NotContains(t, acs.Logs(), "Uncaught exception")
	noFaults(t, acs, id)
}
