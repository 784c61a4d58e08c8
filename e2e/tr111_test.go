package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/genieacs"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
)

// stunProvision is the GenieACS provision an operator installs to use
// TR-111 Part 2 (the README shows it): STUN on, the STUN server's address,
// and Active Notification (2) on the two parameters GenieACS must learn
// from Informs: it sends UDP Connection Requests only to a stored
// UDPConnectionRequestAddress of a device whose stored STUNEnable is true.
func stunProvision(root, server string, port int) string {
	return fmt.Sprintf(`const ms = %q;
declare(ms + "STUNEnable", {value: 1}, {value: true});
declare(ms + "STUNServerAddress", {value: 1}, {value: %q});
declare(ms + "STUNServerPort", {value: 1}, {value: %d});
declare(ms + "UDPConnectionRequestAddress", {value: 1, notification: 1}, {notification: 2});
declare(ms + "NATDetected", {value: 1, notification: 1}, {notification: 2});
`, root+".ManagementServer.", server, port)
}

// TestGenieACSTR111Part2: the agent behind the lab's masquerading NAT,
// GenieACS and cwmp-stun-server --share-port on the WAN side, GenieACS's
// UDP Connection Requests leaving from the STUN port. GenieACS learns the
// public binding through Active Notifications; its HTTP Connection Request
// cannot cross the NAT, its UDP one does and the task completes.
func TestGenieACSTR111Part2(t *testing.T) {
	genieacs.Require(t)
	lab := netlab.New(t, netlab.Options{})
	const stunPort = 3478

	// The STUN server first: GenieACS's NBI binds the same port only for
	// the moment of a UDP Connection Request, with SO_REUSEADDR.
	sdir := t.TempDir()
	stun := lab.Command(lab.WAN, testbin.MustBuild("cwmp-stun-server"), "--listen", fmt.Sprintf("%s:%d", netlab.WANAddr, stunPort),
		"--share-port", "--api", "", "--state-dir", filepath.Join(sdir, "state"))
	slog, err := os.Create(filepath.Join(sdir, "stun.log"))
	require.NoError(t, err)
	stun.Stdout, stun.Stderr = slog, slog
	require.NoError(t, stun.Start())
	t.Cleanup(func() {
		stun.Process.Kill()
		stun.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(sdir, "stun.log"))
			t.Logf("cwmp-stun-server log:\n%s", tail(string(b), 3000))
		}
	})

	acs := genieacs.Start(t, genieacs.Options{Netns: lab.WAN, Dial: lab.Dial(lab.WAN), Bind: netlab.WANAddr, UDPCRPort: stunPort})
	require.NoError(t, acs.InstallDefaults())
	require.NoError(t, acs.PutProvision("tr111-stun", stunProvision("Device", netlab.WANAddr, stunPort)))
	require.NoError(t, acs.PutPreset("tr111-stun", "tr111", "tr111-stun", 10))

	dir := t.TempDir()
	agent := netlab.StartAgent(t, lab.LAN, dir, fmt.Sprintf(`acs: {url: "%s"}
device: {oui: 00D09E, product_class: NATBox, serial_number: GA-NAT-1}
state_dir: {dir}/state
connection_request: {listen: ":7547"}
udp_connection_request: {listen: ":7547"}
control: {socket: {dir}/agent.sock}
log: {level: debug}
`, acs.CWMP))
	id := genieacs.DeviceID("00D09E", "NATBox", "GA-NAT-1")
	ms := "Device.ManagementServer."

	// GenieACS learns NATDetected and the public binding from the
	// agent's Active Notifications, and holds what the agent holds.
	var public string
	eventually(t, 90*time.Second, func() bool {
		doc, _ := acs.Device(id)
		nat, _ := genieacs.Value(doc, ms+"NATDetected")
		public, _ = genieacs.Value(doc, ms+"UDPConnectionRequestAddress")
		return nat == "true" && strings.HasPrefix(public, netlab.GWWAN+":")
	}, "GenieACS learns NATDetected and the binding on the gateway's public address")
	assert.Equal(t, public, agent.Get(ms+"UDPConnectionRequestAddress"))
	assert.Equal(t, "true", agent.Get(ms+"NATDetected"))
	noFaults(t, acs, id)

	// The HTTP Connection Request URL is the agent's private address,
	// which the WAN side cannot reach.
	crURL := agent.Get(ms + "ConnectionRequestURL")
	u, err := url.Parse(crURL)
	require.NoError(t, err)
	require.Equal(t, netlab.LANAddr, u.Hostname())
	if c, err := lab.Dial(lab.WAN)("tcp", u.Host); err == nil {
		c.Close()
		t.Fatalf("the WAN side reached the private Connection Request URL %s", crURL)
	}

	// A task with a Connection Request: the UDP one crosses the NAT, from
	// the STUN port, and the task is done in that session.
	start := time.Now()
	code, _, err := acs.Task(id, map[string]any{"name": "getParameterValues", "parameterNames": []string{ms + "NATDetected"}}, true, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "the task completes through the UDP Connection Request")
	t.Logf("task through the UDP Connection Request done in %v", time.Since(start).Round(time.Millisecond))
	logb, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	assert.Contains(t, string(logb), `msg="UDP Connection Request accepted"`, "the agent took the UDP request")
	assert.NotContains(t, string(logb), `msg="connection request accepted"`, "no HTTP Connection Request crossed the NAT")
	sessions := 0
	for _, inf := range informs(t, acs.LogFile("debug.yaml"), id) {
		if hasEvent(inf, "6 CONNECTION REQUEST") {
			sessions++
		}
	}
	assert.Equal(t, 1, sessions, "one session for the three copies GenieACS sends")
	noFaults(t, acs, id)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
