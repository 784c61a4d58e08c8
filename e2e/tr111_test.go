package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/genieacs"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/soap"
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
	for _, model := range []string{"Device:1.1", "Device:2.19"} {
		t.Run(model, func(t *testing.T) { part2(t, model) })
	}
}

func part2(t *testing.T, model string) {
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
device: {data_model: "%s", oui: 00D09E, product_class: NATBox, serial_number: GA-NAT-1}
state_dir: {dir}/state
connection_request: {listen: ":7547"}
udp_connection_request: {listen: ":7547"}
control: {socket: {dir}/agent.sock}
log: {level: debug}
`, acs.CWMP, model))
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

// part1Provision is the GenieACS provision of TR-111 Part 1 on a gateway:
// Active Notification on ManageableDeviceNumberOfEntries (TR-111 1.2.3),
// and the table read in every session, so that the session a notification
// opens brings the entries' identities.
func part1Provision(root string) string {
	return `const ms = "` + root + `.ManagementServer.";
declare(ms + "ManageableDeviceNumberOfEntries", {value: 1, notification: 1}, {notification: 2});
declare(ms + "ManageableDevice.*.*", {path: Date.now(), value: Date.now()});
`
}

// TestGenieACSTR111Part1: a gateway agent (InternetGatewayDevice, DHCP
// server) and a device agent (Device, DHCP client) on one LAN segment,
// GenieACS on the gateway. The device's option 125 reaches the gateway's
// ManageableDevice table and the gateway's reaches the device's
// GatewayInfo; GenieACS learns both through Active Notifications.
func TestGenieACSTR111Part1(t *testing.T) {
	genieacs.Require(t)
	// The gateway: InternetGatewayDevice:1.2, or Device:2.19 (whose one
	// root has both sides); the device: Device:1.1 or Device:2.19.
	for _, m := range []struct{ gw, dev string }{{"InternetGatewayDevice:1.2", "Device:1.1"}, {"Device:2.19", "Device:2.19"}} {
		t.Run(m.gw+"+"+m.dev, func(t *testing.T) { part1(t, m.gw, m.dev) })
	}
}

func part1(t *testing.T, gwModel, devModel string) {
	p := netlab.NewPair(t, netlab.PairOptions{GWAddr: "192.168.93.1/24"})
	gwSchema, err := schemas.Model(gwModel)
	require.NoError(t, err)
	gwRoot := gwSchema.RootName()
	acs := genieacs.Start(t, genieacs.Options{Netns: p.GW, Dial: netlab.Dial(p.GW), Bind: "192.168.93.1"})
	require.NoError(t, acs.InstallDefaults())
	require.NoError(t, acs.PutProvision("tr111-gateway", part1Provision(gwRoot)))
	require.NoError(t, acs.PutPreset("tr111-gateway", "tr111", "tr111-gateway", 10))
	debug := acs.LogFile("debug.yaml")
	dir := t.TempDir()

	gwID := genieacs.DeviceID("001122", "IGD", "GA-GW-1")
	gw := netlab.StartAgent(t, p.GW, filepath.Join(dir, "gw"), fmt.Sprintf(`acs: {url: "%s", retry_minimum_wait: 1s}
device: {data_model: "%s", oui: "001122", product_class: IGD, serial_number: GA-GW-1}
state_dir: {dir}/state
control: {socket: {dir}/agent.sock}
connection_request: {listen: ":7548"}
udp_connection_request: {listen: ""}
log: {level: debug}
dhcp:
  server: {interface: %s, pool_start: 192.168.93.100, pool_end: 192.168.93.120, lease_time: 1h}
`, acs.CWMP, gwModel, p.GWIf))
	gms := gwRoot + ".ManagementServer."
	// The gateway is known, with Active Notification on the table size,
	// before any device appears.
	eventually(t, 30*time.Second, func() bool {
		doc, _ := acs.Device(gwID)
		n, _ := genieacs.Value(doc, gms+"ManageableDeviceNumberOfEntries")
		return n == "0" && sentSPA(t, debug, gwID, gms+"ManageableDeviceNumberOfEntries")
	}, "GenieACS knows the gateway and asked for Active Notification on its table")

	devID := genieacs.DeviceID("00D09E", "STB", "GA-DEV-9")
	dev := netlab.StartAgent(t, p.Dev, filepath.Join(dir, "dev"), fmt.Sprintf(`acs: {url: "%s", retry_minimum_wait: 1s}
device: {data_model: "%s", oui: "00D09E", product_class: STB, serial_number: GA-DEV-9}
state_dir: {dir}/state
control: {socket: {dir}/agent.sock}
connection_request: {listen: ":7547"}
udp_connection_request: {listen: ""}
log: {level: debug}
dhcp:
  client: {mode: lease, interface: %s, release_on_exit: true}
`, acs.CWMP, devModel, p.DevIf))

	// The gateway: its table entry holds the device's identity, learned by
	// GenieACS in the session the Active Notification opened.
	entry := gms + "ManageableDevice.1."
	eventually(t, 60*time.Second, func() bool {
		doc, _ := acs.Device(gwID)
		s, _ := genieacs.Value(doc, entry+"SerialNumber")
		return s == "GA-DEV-9"
	}, "GenieACS reads the device in the gateway's ManageableDevice table")
	doc, err := acs.Device(gwID)
	require.NoError(t, err)
	for name, want := range map[string]string{"ManufacturerOUI": "00D09E", "ProductClass": "STB", "SerialNumber": "GA-DEV-9"} {
		got, _ := genieacs.Value(doc, entry+name)
		assert.Equal(t, want, got, "ManageableDevice.1.%s", name)
		assert.Equal(t, want, gw.Get(entry+name), "the gateway's own ManageableDevice.1.%s", name)
	}
	assert.True(t, notified(t, debug, gwID, gms+"ManageableDeviceNumberOfEntries", "1"),
		"the gateway's 4 VALUE CHANGE Inform carries ManageableDeviceNumberOfEntries 1")

	// The device: GatewayInfo holds the gateway's identity, carried by a
	// 4 VALUE CHANGE Inform (TR-111 1.2.1: Active Notification by default).
	eventually(t, 60*time.Second, func() bool {
		doc, _ := acs.Device(devID)
		s, _ := genieacs.Value(doc, "Device.GatewayInfo.SerialNumber")
		return s == "GA-GW-1"
	}, "GenieACS learns the device's GatewayInfo")
	doc, err = acs.Device(devID)
	require.NoError(t, err)
	for name, want := range map[string]string{"ManufacturerOUI": "001122", "ProductClass": "IGD", "SerialNumber": "GA-GW-1"} {
		got, _ := genieacs.Value(doc, "Device.GatewayInfo."+name)
		assert.Equal(t, want, got, "GatewayInfo.%s", name)
		assert.Equal(t, want, dev.Get("Device.GatewayInfo."+name), "the device's own GatewayInfo.%s", name)
		assert.True(t, notified(t, debug, devID, "Device.GatewayInfo."+name, want), "GatewayInfo.%s in a 4 VALUE CHANGE Inform", name)
	}

	// The device leaves (DHCPRELEASE): the entry goes, and GenieACS is
	// told and drops it.
	dev.Stop(syscall.SIGTERM)
	eventually(t, 30*time.Second, func() bool {
		doc, _ := acs.Device(gwID)
		n, _ := genieacs.Value(doc, gms+"ManageableDeviceNumberOfEntries")
		_, still := genieacs.Param(doc, entry+"SerialNumber")
		return n == "0" && !still
	}, "GenieACS learns that the device left the gateway's table")
	assert.True(t, notified(t, debug, gwID, gms+"ManageableDeviceNumberOfEntries", "0"))
	assert.Equal(t, "0", gw.Get(gms+"ManageableDeviceNumberOfEntries"))
	noFaults(t, acs, gwID)
	noFaults(t, acs, devID)
}

// sentSPA reports whether GenieACS asked the device for Active
// Notification on the parameter.
func sentSPA(t *testing.T, debugFile, device, param string) bool {
	for _, m := range outgoing(t, debugFile, device) {
		if spa, ok := m.(*soap.SetParameterAttributes); ok {
			for _, p := range spa.ParameterList {
				if p.Name == param && p.NotificationChange && p.Notification == 2 {
					return true
				}
			}
		}
	}
	return false
}

// notified reports whether an Inform with 4 VALUE CHANGE carried the
// parameter with that value.
func notified(t *testing.T, debugFile, device, param, value string) bool {
	for _, inf := range informs(t, debugFile, device) {
		if !hasEvent(inf, "4 VALUE CHANGE") {
			continue
		}
		for _, p := range inf.ParameterList {
			if p.Name == param && p.Value == value {
				return true
			}
		}
	}
	return false
}
