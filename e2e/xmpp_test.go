package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/genieacs"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/prosody"
)

// TestGenieACSXMPP: GenieACS's own XMPP Connection Requests (its
// GENIEACS_XMPP_JID) reach a Device:2.19 agent through a real prosody:
// the agent announces ConnReqJabberID, and GenieACS's task is done through
// an XMPP connectionRequest. GenieACS dials the JID's domain on 5222, so
// prosody, GenieACS and the agent share a network namespace of their own,
// and the domain is the IP literal 127.0.0.1 (nothing resolves names
// there).
func TestGenieACSXMPP(t *testing.T) {
	p := netlab.NewPair(t, netlab.PairOptions{})
	ns := p.GW
	ps := prosody.Start(t, prosody.Options{Domain: "127.0.0.1", Port: 5222, Netns: ns,
		Users: [][2]string{{"cpe", "cpe-secret"}, {"acs", "acs-secret"}}})
	acs := genieacs.Start(t, genieacs.Options{Netns: ns, Dial: netlab.Dial(ns), Bind: "127.0.0.1",
		Env: []string{"GENIEACS_XMPP_JID=acs@127.0.0.1", "GENIEACS_XMPP_PASSWORD=acs-secret", "NODE_EXTRA_CA_CERTS=" + ps.CertFile}})
	require.NoError(t, acs.InstallDefaults())
	dir := t.TempDir()
	x := "Device.XMPP.Connection.1."
	cfg := fmt.Sprintf(`acs: {url: "%s", ca_file: %q}
device: {data_model: "Device:2.19", oui: 00D09E, product_class: XMPP, serial_number: GA-XMPP-1}
state_dir: {dir}/state
connection_request: {listen: "127.0.0.1:17547"}
udp_connection_request: {listen: ""}
control: {socket: {dir}/agent.sock}
parameters:
  %[3]sEnable: true
  %[3]sUsername: cpe
  %[3]sPassword: cpe-secret
  %[3]sDomain: 127.0.0.1
  %[3]sResource: cwmp
  %[3]sUseTLS: true
  %[3]sServerConnectAlgorithm: DNS
  Device.ManagementServer.ConnReqXMPPConnection: Device.XMPP.Connection.1
  Device.ManagementServer.ConnReqAllowedJabberIDs: acs@127.0.0.1
log: {level: debug}
`, acs.CWMP, ps.CertFile, x)
	agent := netlab.StartAgent(t, ns, dir, cfg)
	id := genieacs.DeviceID("00D09E", "XMPP", "GA-XMPP-1")
	eventually(t, 30*time.Second, func() bool { return agent.Get("Device.ManagementServer.ConnReqJabberID") != "" }, "the agent's XMPP connection is up")
	assert.Equal(t, "cpe@127.0.0.1/cwmp", agent.Get("Device.ManagementServer.ConnReqJabberID"))
	eventually(t, 60*time.Second, func() bool {
		doc, _ := acs.Device(id)
		v, _ := genieacs.Value(doc, "Device.ManagementServer.PeriodicInformInterval")
		return v == "300"
	}, "the device bootstrapped")
	// GenieACS learns the Jabber ID, then asks for sessions over XMPP.
	code, _, err := acs.Task(id, map[string]any{"name": "getParameterValues", "parameterNames": []string{"Device.ManagementServer.ConnReqJabberID"}}, true, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	code, _, err = acs.Task(id, map[string]any{"name": "getParameterValues", "parameterNames": []string{"Device.DeviceInfo.UpTime"}}, true, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "the task is done through an XMPP Connection Request")
	log, err := os.ReadFile(filepath.Join(dir, "agent.log"))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(log), "XMPP connection request accepted"), "the agent accepted GenieACS's connectionRequest IQ")
	noFaults(t, acs, id)
}
