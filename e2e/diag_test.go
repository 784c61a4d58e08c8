package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/genieacs"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
)

// TestGenieACSDiagnostics runs an IPPing as GenieACS users do: a
// setParameterValues task with the test's parameters and DiagnosticsState
// Requested, the agent's "8 DIAGNOSTICS COMPLETE" session after it, then
// a getParameterValues task for the results. The ping is real (to the
// loopback address, where the agent runs); a Device:2.19 and a Device:1.1
// agent each run one.
func TestGenieACSDiagnostics(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent's real ping needs root (or net.ipv4.ping_group_range); CI runs as root")
	}
	acs := genieacs.Start(t, genieacs.Options{})
	require.NoError(t, acs.InstallDefaults())
	for _, c := range []struct{ model, class, serial, obj string }{
		{"Device:2.19", "TR181GW", "GA-DIAG-2", "Device.IP.Diagnostics.IPPing."},
		{"Device:1.1", "Box", "GA-DIAG-1", "Device.LAN.IPPingDiagnostics."},
	} {
		t.Run(c.model, func(t *testing.T) {
			dir := t.TempDir()
			cfg := fmt.Sprintf(`acs: {url: "%s"}
device: {data_model: "%s", oui: 00D09E, product_class: %s, serial_number: %s}
state_dir: {dir}/state
connection_request: {listen: "127.0.0.1:%d"}
udp_connection_request: {listen: ""}
control: {socket: {dir}/agent.sock}
log: {level: debug}
`, acs.CWMP, c.model, c.class, c.serial, freeTCP(t))
			agent := netlab.StartAgent(t, "", dir, cfg)
			id := genieacs.DeviceID("00D09E", c.class, c.serial)
			debug := acs.LogFile("debug.yaml")
			eventually(t, 60*time.Second, func() bool { d, err := acs.Device(id); return err == nil && d != nil },
				"the device bootstrapped")

			code, _, err := acs.Task(id, map[string]any{"name": "setParameterValues", "parameterValues": []any{
				[]any{c.obj + "Host", "127.0.0.1", "xsd:string"},
				[]any{c.obj + "NumberOfRepetitions", 4, "xsd:unsignedInt"},
				[]any{c.obj + "Timeout", 1000, "xsd:unsignedInt"},
				[]any{c.obj + "DiagnosticsState", "Requested", "xsd:string"},
			}}, true, 15*time.Second)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, code)
			eventually(t, 30*time.Second, func() bool {
				for _, inf := range informs(t, debug, id) {
					if hasEvent(inf, "8 DIAGNOSTICS COMPLETE") {
						return inf.RetryCount == 0
					}
				}
				return false
			}, "the agent came back with 8 DIAGNOSTICS COMPLETE, accepted at the first attempt")
			assert.Equal(t, "Complete", agent.Get(c.obj+"DiagnosticsState"))

			code, _, err = acs.Task(id, map[string]any{"name": "getParameterValues", "parameterNames": []string{c.obj + "DiagnosticsState",
				c.obj + "SuccessCount", c.obj + "FailureCount", c.obj + "AverageResponseTime"}}, true, 15*time.Second)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, code)
			var doc map[string]any
			eventually(t, 10*time.Second, func() bool { // GenieACS saves the device after the task is done
				doc, _ = acs.Device(id)
				v, _ := genieacs.Value(doc, c.obj+"DiagnosticsState")
				return v == "Complete"
			}, "GenieACS reads DiagnosticsState Complete")
			for name, want := range map[string]string{"DiagnosticsState": "Complete", "SuccessCount": "4", "FailureCount": "0"} {
				v, _ := genieacs.Value(doc, c.obj+name)
				assert.Equal(t, want, v, "GenieACS reads %s", name)
			}
			avg, _ := genieacs.Value(doc, c.obj+"AverageResponseTime")
			assert.NotEmpty(t, avg)
			noFaults(t, acs, id)

			// GenieACS writing DiagnosticsState None is refused (9007): TR-106
			// lets the ACS write Requested (and Canceled) only. (Complete
			// would not be sent: GenieACS already holds that value.)
			code, _, _ = acs.Task(id, map[string]any{"name": "setParameterValues", "parameterValues": []any{
				[]any{c.obj + "DiagnosticsState", "None", "xsd:string"}}}, true, 15*time.Second)
			assert.NotEqual(t, http.StatusOK, code, "the task faults")
			eventually(t, 15*time.Second, func() bool {
				fs, _ := acs.Faults(id)
				for _, f := range fs {
					if strings.Contains(fmt.Sprint(f), "9007") {
						return true
					}
				}
				return false
			}, "GenieACS holds the 9007 fault")
		})
	}
}
