package assoc_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cpe/control"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// The lab tests run real DHCP peers in network namespaces the test builds
// (netlab.NewPair): the agent binary on both sides, dnsmasq, busybox
// udhcpc and ISC dhclient. They need root; CI runs them.

func TestMain(m *testing.M) {
	code := m.Run()
	netlab.RemoveAgentBinary()
	os.Exit(code)
}

const (
	gwID  = "001122-IGD-GW-LAB"
	devID = "00D09E-STB-DEV-LAB"
)

// labModels are the data models the lab tests run the gateway and the
// device agents with: TR-098 and TR-106, and TR-181's Device:2, whose one
// root has both sides.
type labModels struct{ gw, dev string }

var labModelSets = []labModels{{"InternetGatewayDevice:1.2", "Device:1.1"}, {"Device:2.19", "Device:2.19"}}

func (m labModels) name() string { return m.gw + "+" + m.dev }

// gwRoot is the root of the gateway's model.
func (m labModels) gwRoot() string { return strings.SplitN(m.gw, ":", 2)[0] }

// entries is the gateway's ManageableDeviceNumberOfEntries.
func (m labModels) entries() string {
	return m.gwRoot() + ".ManagementServer.ManageableDeviceNumberOfEntries"
}

func gatewayConfig(acsURL, dhcp string) string { return labModelSets[0].gatewayConfig(acsURL, dhcp) }

func (m labModels) gatewayConfig(acsURL, dhcp string) string {
	return fmt.Sprintf(`acs: {url: "%s", retry_minimum_wait: 1s}
state_dir: "{dir}/state"
control: {socket: "{dir}/agent.sock"}
connection_request: {listen: ":7547"}
udp_connection_request: {listen: ""}
periodic_inform: {enable: false}
device: {data_model: "%s", oui: "001122", serial_number: GW-LAB, product_class: IGD, system_values: false}
log: {level: debug}
%s
`, acsURL, m.gw, dhcp)
}

func deviceConfig(acsURL, dhcp string) string { return labModelSets[0].deviceConfig(acsURL, dhcp) }

func (m labModels) deviceConfig(acsURL, dhcp string) string {
	return fmt.Sprintf(`acs: {url: "%s", retry_minimum_wait: 1s}
device: {data_model: "`+m.dev+`", oui: "00D09E", serial_number: DEV-LAB, product_class: STB, system_values: false}
state_dir: "{dir}/state"
control: {socket: "{dir}/agent.sock"}
connection_request: {listen: ":7547"}
udp_connection_request: {listen: ""}
periodic_inform: {enable: false}
log: {level: debug}
%s
`, acsURL, dhcp)
}

func param(acs *cwmptest.ACS, id, name string) string {
	var v string
	acs.WaitFor(context.Background(), func(a *cwmptest.ACS) bool {
		if d := a.Devs()[id]; d != nil {
			v = d.Params[name]
		}
		return true
	})
	return v
}

func waitParam(t *testing.T, acs *cwmptest.ACS, id, name, want string, within time.Duration, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	err := acs.WaitFor(ctx, func(a *cwmptest.ACS) bool {
		d := a.Devs()[id]
		return d != nil && d.Params[name] == want
	})
	require.NoError(t, err, "%s: %s is %q, want %q", msg, name, param(acs, id, name), want)
}

func sh(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := netlab.Command(ns, args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
	return string(out)
}

// TestLabDeviceAndGateway: our device side against our gateway side over a
// veth pair, each the agent binary in its namespace, with the test ACS.
// DISCOVER/OFFER/REQUEST/ACK, renewal, release, INFORM, the presence check,
// and expiry on the device side; the ACS is told through Active
// Notifications and reads the table with GetParameterValues.
func TestLabDeviceAndGateway(t *testing.T) {
	for _, m := range labModelSets {
		t.Run(m.name(), func(t *testing.T) { t.Parallel(); labDeviceAndGateway(t, m) })
	}
}

func labDeviceAndGateway(t *testing.T, m labModels) {
	p := netlab.NewPair(t, netlab.PairOptions{GWAddr: "192.168.94.1/24"})
	// Fast neighbour verification, so that the presence check sees a
	// departed device within seconds.
	sh(t, p.GW, "sysctl", "-qw", "net.ipv4.neigh."+p.GWIf+".base_reachable_time_ms=1000", "net.ipv4.neigh."+p.GWIf+".delay_first_probe_time=1")

	ln, err := netlab.Listen(p.GW, "tcp", "192.168.94.1:0")
	require.NoError(t, err)
	acs := cwmptest.Serve(ln)
	t.Cleanup(func() { acs.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The ACS asks the gateway for Active Notification of the table size.
	spa := acs.Enqueue(gwID, &soap.SetParameterAttributes{ParameterList: []soap.SetParameterAttributesStruct{{
		Name: m.gwRoot() + ".ManagementServer.ManageableDeviceNumberOfEntries", NotificationChange: true, Notification: 2}}})
	dir := t.TempDir()
	gw := netlab.StartAgent(t, p.GW, filepath.Join(dir, "gw"), m.gatewayConfig(acs.URL, fmt.Sprintf(`dhcp:
  server: {interface: %s, pool_start: 192.168.94.100, pool_end: 192.168.94.120, lease_time: 6s}
  presence_check: 2s`, p.GWIf)))
	_, err = spa.Wait(ctx)
	require.NoError(t, err)

	// The device: DORA, address configured, identities exchanged.
	dev := netlab.StartAgent(t, p.Dev, filepath.Join(dir, "dev"), m.deviceConfig(acs.URL, fmt.Sprintf(`dhcp:
  client: {mode: lease, interface: %s, release_on_exit: true}`, p.DevIf)))
	require.Eventually(t, func() bool { return dev.Call("dhcp.state", nil)["state"] == "bound" }, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, "GW-LAB", dev.Get("Device.GatewayInfo.SerialNumber"))
	assert.Equal(t, "001122", dev.Get("Device.GatewayInfo.ManufacturerOUI"))
	assert.Equal(t, "IGD", dev.Get("Device.GatewayInfo.ProductClass"))
	assert.Contains(t, sh(t, p.Dev, "ip", "-4", "addr", "show", "dev", p.DevIf), "inet 192.168.94.100/24")
	assert.Contains(t, sh(t, p.Dev, "ip", "-4", "route", "show", "default"), "via 192.168.94.1")

	// The device reaches the ACS over its leased address and reports the
	// Gateway Identity; the gateway reports its new table entry.
	waitParam(t, acs, devID, "Device.GatewayInfo.SerialNumber", "GW-LAB", time.Minute, "the device's Inform")
	waitParam(t, acs, devID, "Device.GatewayInfo.ManufacturerOUI", "001122", time.Second, "the device's Inform")
	waitParam(t, acs, gwID, m.gwRoot()+".ManagementServer.ManageableDeviceNumberOfEntries", "1", 30*time.Second,
		"the gateway's Active Notification")

	// The ACS reads the table (TR-111 1.2.3: to validate the association).
	gpv := acs.Enqueue(gwID, &soap.GetParameterValues{ParameterNames: []string{m.gwRoot() + ".ManagementServer.ManageableDevice."}})
	_, err = control.Do(gw.Socket, control.Request{Op: "inform"})
	require.NoError(t, err)
	resp, err := gpv.Wait(ctx)
	require.NoError(t, err)
	got := map[string]string{}
	for _, pv := range resp.(*soap.GetParameterValuesResponse).ParameterList {
		got[pv.Name] = pv.Value
	}
	want := map[string]string{
		m.gwRoot() + ".ManagementServer.ManageableDevice.1.ManufacturerOUI": "00D09E",
		m.gwRoot() + ".ManagementServer.ManageableDevice.1.SerialNumber":    "DEV-LAB",
		m.gwRoot() + ".ManagementServer.ManageableDevice.1.ProductClass":    "STB",
	}
	if m.gwRoot() == "Device" {
		// TR-181 adds Host, the device's Hosts.Host entries: a gateway
		// without system values keeps no Hosts table, so none.
		want["Device.ManagementServer.ManageableDevice.1.Host"] = ""
	}
	assert.Equal(t, want, got)

	// Renewal at T1 (3 s) moves the end of the lease.
	first := dev.Call("dhcp.state", nil)["expires"]
	require.NotEmpty(t, first)
	require.Eventually(t, func() bool {
		st := dev.Call("dhcp.state", nil)
		return st["expires"] != first && st["state"] == "bound"
	}, 15*time.Second, 100*time.Millisecond, "the lease is renewed")

	// Release: stopping the device sends DHCPRELEASE; the entry goes and
	// the ACS is told.
	dev.Stop(syscall.SIGTERM)
	// Well before the 6 s lease could run out: the DHCPRELEASE did it.
	assert.Eventually(t, func() bool {
		return gw.Get(m.gwRoot()+".ManagementServer.ManageableDeviceNumberOfEntries") == "0"
	}, 2*time.Second, 20*time.Millisecond, "released at once")
	assert.NotContains(t, sh(t, p.Dev, "ip", "-4", "addr", "show", "dev", p.DevIf), "192.168.94.100", "the address goes with the lease")
	waitParam(t, acs, gwID, m.gwRoot()+".ManagementServer.ManageableDeviceNumberOfEntries", "0", 30*time.Second,
		"the gateway's Active Notification of the removal")

	// INFORM: a device with a static address (TR-111 1.2.4, Figure 2).
	sh(t, p.Dev, "ip", "addr", "add", "192.168.94.50/24", "dev", p.DevIf)
	inf := netlab.StartAgent(t, p.Dev, filepath.Join(dir, "inform"), m.deviceConfig(acs.URL, fmt.Sprintf(`dhcp:
  client: {mode: inform, interface: %s, inform_server: 192.168.94.1}`, p.DevIf)))
	require.Eventually(t, func() bool { return inf.Get("Device.GatewayInfo.SerialNumber") == "GW-LAB" }, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		return gw.Get(m.gwRoot()+".ManagementServer.ManageableDeviceNumberOfEntries") == "1"
	}, 10*time.Second, 100*time.Millisecond)
	leases := gw.Call("dhcp.leases", nil)
	assert.Equal(t, "1", leases["server.informs"])
	inf.Stop(syscall.SIGTERM)

	// The device leaves the LAN: no lease to expire, the presence check
	// (the kernel's neighbour table) removes it.
	sh(t, p.Dev, "ip", "addr", "flush", "dev", p.DevIf)
	require.Eventually(t, func() bool {
		return gw.Get(m.gwRoot()+".ManagementServer.ManageableDeviceNumberOfEntries") == "0"
	}, 45*time.Second, 200*time.Millisecond, "the presence check removes a departed device")

	// Expiry on the device side: the gateway disappears, the lease runs
	// out, GatewayInfo is discarded and the address removed.
	dev2 := netlab.StartAgent(t, p.Dev, filepath.Join(dir, "dev2"), m.deviceConfig(acs.URL, fmt.Sprintf(`dhcp:
  client: {mode: lease, interface: %s}`, p.DevIf)))
	require.Eventually(t, func() bool { return dev2.Call("dhcp.state", nil)["state"] == "bound" }, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, "GW-LAB", dev2.Get("Device.GatewayInfo.SerialNumber"))
	leased := "inet " + dev2.Call("dhcp.state", nil)["ip"] + "/"
	require.Contains(t, sh(t, p.Dev, "ip", "-4", "addr", "show", "dev", p.DevIf), leased)
	gw.Stop(syscall.SIGKILL)
	require.Eventually(t, func() bool {
		return dev2.Get("Device.GatewayInfo.SerialNumber") == "" && dev2.Get("Device.GatewayInfo.ManufacturerOUI") == ""
	}, 20*time.Second, 100*time.Millisecond, "GatewayInfo is emptied when the lease expires without renewal")
	assert.Eventually(t, func() bool {
		return !strings.Contains(sh(t, p.Dev, "ip", "-4", "addr", "show", "dev", p.DevIf), leased)
	}, 5*time.Second, 100*time.Millisecond, "the expired address is removed")
}
