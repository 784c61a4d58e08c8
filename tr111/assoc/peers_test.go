package assoc_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/tr111"
	"github.com/cwmp-agent/cwmp-agent/tr111/assoc"
)

// Tests against real DHCP peers: dnsmasq (dnsmasq-base), busybox udhcpc and
// ISC dhclient (isc-dhcp-client).

var (
	labDevice  = tr111.Identity{ManufacturerOUI: "00D09E", SerialNumber: "DEV-LAB", ProductClass: "STB"}
	labGateway = tr111.Identity{ManufacturerOUI: "001122", SerialNumber: "GW-LAB", ProductClass: "IGD"}
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	netlab.Require(t)
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install dnsmasq-base busybox isc-dhcp-client)", tool)
		}
	}
}

// running is a program started by proc.
type running struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// proc runs a program in a namespace for the test's duration.
func proc(t *testing.T, ns string, env []string, name string, args ...string) *running {
	t.Helper()
	cmd := netlab.Command(ns, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := filepath.Join(t.TempDir(), filepath.Base(name)+".out")
	f, err := os.Create(out)
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(out)
			t.Logf("output of %s:\n%s", name, b)
		}
	})
	return &running{cmd: cmd, done: done}
}

// signalWait signals a process started by proc and waits for its exit.
func signalWait(t *testing.T, r *running, sig syscall.Signal) {
	t.Helper()
	r.cmd.Process.Signal(sig)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit on %v", r.cmd.Path, sig)
	}
}

// script writes an executable shell script.
func script(t *testing.T, path, body string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755))
	return path
}

// recorder is a DHCP client script that appends its event and environment
// to a file, and configures the address as the usual scripts do.
func recorder(t *testing.T, dir string) (path, out string) {
	out = filepath.Join(dir, "events")
	path = script(t, filepath.Join(dir, "record.sh"), fmt.Sprintf(`out=%s
echo "EVENT ${1:-$reason} opt125=$opt125 new_tr111_vi=$new_tr111_vi ip=$ip new_ip=$new_ip_address" >> $out
case "$1" in bound|renew) ip addr replace "$ip/${mask:-24}" dev "$interface" ;; esac
exit 0
`, out))
	return path, out
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// gatewayFromEvents finds the last recorded Gateway Identity option.
func gatewayFromEvents(t *testing.T, events string) *tr111.Identity {
	t.Helper()
	var last *tr111.Identity
	sc := bufio.NewScanner(strings.NewReader(events))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(f, "=")
			if (k != "opt125" && k != "new_tr111_vi") || v == "" {
				continue
			}
			raw, err := assoc.DecodeHookOption(v)
			require.NoError(t, err)
			o, err := tr111.ParseOption125(raw)
			require.NoError(t, err)
			id, ok, err := o.GatewayIdentity()
			require.NoError(t, err)
			if ok {
				last = &id
			}
		}
	}
	return last
}

func udhcpcArgs(ifname, hex, scriptPath string) []string {
	return []string{"udhcpc", "-i", ifname, "-f", "-R", "-t", "5", "-T", "1", "-x", "0x7d:" + hex, "-O", "125", "-s", scriptPath}
}

func dhclientConf(t *testing.T, dir string, id tr111.Identity) string {
	p := filepath.Join(dir, "dhclient.conf")
	require.NoError(t, os.WriteFile(p, []byte(assoc.DeviceOptionForms(id).DHClient+"request subnet-mask, routers, tr111-vi;\n"), 0o644))
	return p
}

// dhclientRelease runs `dhclient -r`, which stops the running dhclient and
// releases the lease it finds in the lease file; it waits for that file
// first (under load dhclient writes it a little after its BOUND script).
func dhclientRelease(t *testing.T, ns, dir, conf, scriptPath, ifname string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(readFile(filepath.Join(dir, "dhclient.leases")), "lease {") },
		10*time.Second, 50*time.Millisecond, "dhclient wrote its lease")
	out, err := netlab.Command(ns, "dhclient", dhclientArgs(dir, conf, scriptPath, ifname, true)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func dhclientArgs(dir, conf, scriptPath, ifname string, release bool) []string {
	a := []string{"-4", "-v", "-cf", conf, "-lf", filepath.Join(dir, "dhclient.leases"), "-pf", filepath.Join(dir, "dhclient.pid"), "-sf", scriptPath}
	if release {
		return append(append(a, "-r"), ifname)
	}
	return append(append(a, "-d"), ifname)
}

func tableSerials(a *netlab.Agent) []string {
	var out []string
	for k, v := range a.Call("dhcp.leases", nil) {
		if strings.Count(k, ":") == 5 {
			for _, f := range strings.Fields(v) {
				if s, ok := strings.CutPrefix(f, "serial="); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// TestLabGatewayWithRealClients: the built-in server against busybox
// udhcpc and ISC dhclient sending the Device Identity: they get the
// Gateway Identity and enter the table; their release takes them out; a
// malformed option 125 never enters it.
func TestLabGatewayWithRealClients(t *testing.T) {
	for _, m := range labModelSets {
		t.Run(m.name(), func(t *testing.T) { t.Parallel(); labGatewayWithRealClients(t, m) })
	}
}

func labGatewayWithRealClients(t *testing.T, m labModels) {
	need(t, "busybox", "dhclient")
	entries := m.entries()
	p := netlab.NewPair(t, netlab.PairOptions{GWAddr: "192.168.96.1/24"})
	dir := t.TempDir()
	gw := netlab.StartAgent(t, p.GW, filepath.Join(dir, "gw"), m.gatewayConfig("http://192.168.96.1:9/", fmt.Sprintf(`dhcp:
  server: {interface: %s, pool_start: 192.168.96.100, pool_end: 192.168.96.120, lease_time: 1h}`, p.GWIf)))
	rec, events := recorder(t, dir)

	// udhcpc: -x 0x7d:<hex> sends the identity, -O 125 asks for the answer.
	hex := assoc.DeviceOptionForms(labDevice).Hex
	u := proc(t, p.Dev, nil, "busybox", udhcpcArgs(p.DevIf, hex, rec)...)
	require.Eventually(t, func() bool { return gw.Get(entries) == "1" }, 20*time.Second, 100*time.Millisecond, "udhcpc enters the table")
	assert.Equal(t, []string{"DEV-LAB"}, tableSerials(gw))
	assert.Equal(t, "STB", gw.Get(m.gwRoot()+".ManagementServer.ManageableDevice.1.ProductClass"))
	require.Eventually(t, func() bool { return strings.Contains(readFile(events), "EVENT bound") }, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, &labGateway, gatewayFromEvents(t, readFile(events)), "udhcpc received the Gateway Identity")
	signalWait(t, u, syscall.SIGTERM) // -R: release on exit
	require.Eventually(t, func() bool { return gw.Get(entries) == "0" }, 10*time.Second, 100*time.Millisecond, "udhcpc's release")

	// dhclient, configured with the lines `cwmp-agent dhcp option125` prints.
	other := tr111.Identity{ManufacturerOUI: "ABCDEF", SerialNumber: "DHC-LAB"}
	conf := dhclientConf(t, dir, other)
	os.WriteFile(events, nil, 0o644)
	proc(t, p.Dev, nil, "dhclient", dhclientArgs(dir, conf, rec, p.DevIf, false)...)
	require.Eventually(t, func() bool { return gw.Get(entries) == "1" }, 30*time.Second, 100*time.Millisecond, "dhclient enters the table")
	assert.Equal(t, []string{"DHC-LAB"}, tableSerials(gw))
	assert.Equal(t, "", gw.Get(m.gwRoot()+".ManagementServer.ManageableDevice.2.ProductClass"), "no product class sent: empty")
	require.Eventually(t, func() bool { return strings.Contains(readFile(events), "EVENT BOUND") }, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, &labGateway, gatewayFromEvents(t, readFile(events)), "dhclient received the Gateway Identity")
	dhclientRelease(t, p.Dev, dir, conf, rec, p.DevIf)
	require.Eventually(t, func() bool { return gw.Get(entries) == "0" }, 10*time.Second, 100*time.Millisecond, "dhclient's release")

	// A malformed option 125: served, counted, never in the table.
	os.WriteFile(events, nil, 0o644)
	bad := proc(t, p.Dev, nil, "busybox", udhcpcArgs(p.DevIf, "00000de9ff0106303044", rec)...)
	require.Eventually(t, func() bool { return strings.Contains(readFile(events), "EVENT bound") }, 20*time.Second, 50*time.Millisecond,
		"a client with a malformed option still gets its lease")
	st := gw.Call("dhcp.leases", nil)
	assert.NotEqual(t, "0", st["server.bad_option125"])
	assert.Equal(t, "0", gw.Get(entries))
	assert.Nil(t, gatewayFromEvents(t, readFile(events)), "no Gateway Identity without a valid Device Identity")
	signalWait(t, bad, syscall.SIGTERM)
}

// dnsmasqConf is a dnsmasq configuration for the gateway namespace, with
// the TR-111 lines the agent prints (`cwmp-agent dnsmasq-config`).
func dnsmasqConf(t *testing.T, dir, ifname, subnet, tr111Lines string) string {
	p := filepath.Join(dir, "dnsmasq.conf")
	conf := fmt.Sprintf(`port=0
interface=%s
bind-interfaces
dhcp-range=%s.100,%s.120,2m
dhcp-leasefile=%s/dnsmasq.leases
dhcp-authoritative
log-dhcp
%s`, ifname, subnet, subnet, dir, tr111Lines)
	require.NoError(t, os.WriteFile(p, []byte(conf), 0o644))
	return p
}

func agentOutput(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(netlab.AgentBinary(t), args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// gatewayIdentityConfig is a configuration file that only gives identity.
func identityConfig(t *testing.T, dir, model string, id tr111.Identity) string {
	p := filepath.Join(dir, "identity.yaml")
	require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`acs: {url: "http://127.0.0.1:9/"}
device: {data_model: "%s", oui: "%s", serial_number: "%s", product_class: "%s"}
`, model, id.ManufacturerOUI, id.SerialNumber, id.ProductClass)), 0o600))
	return p
}

// TestLabDeviceAgainstDnsmasq: our device side, lease and inform modes,
// against a real dnsmasq that answers the Device Identity with the Gateway
// Identity (the lines of `cwmp-agent dnsmasq-config`).
func TestLabDeviceAgainstDnsmasq(t *testing.T) {
	for _, m := range labModelSets {
		t.Run(m.name(), func(t *testing.T) { t.Parallel(); labDeviceAgainstDnsmasq(t, m) })
	}
}

func labDeviceAgainstDnsmasq(t *testing.T, m labModels) {
	need(t, "dnsmasq")
	p := netlab.NewPair(t, netlab.PairOptions{GWAddr: "192.168.97.1/24"})
	dir := t.TempDir()
	lines := agentOutput(t, "dnsmasq-config", "--config", identityConfig(t, dir, "InternetGatewayDevice:1.2", labGateway), "--script", "")
	assert.NotContains(t, lines, "dhcp-script")
	proc(t, p.GW, nil, "dnsmasq", "-k", "-C", dnsmasqConf(t, dir, p.GWIf, "192.168.97", lines), "--pid-file="+filepath.Join(dir, "dnsmasq.pid"))

	dev := netlab.StartAgent(t, p.Dev, filepath.Join(dir, "dev"), m.deviceConfig("http://192.168.97.1:9/", fmt.Sprintf(`dhcp:
  client: {mode: lease, interface: %s, release_on_exit: true}`, p.DevIf)))
	var st map[string]string
	require.Eventually(t, func() bool { st = dev.Call("dhcp.state", nil); return st["state"] == "bound" }, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, "GW-LAB", dev.Get("Device.GatewayInfo.SerialNumber"))
	assert.Equal(t, "001122", dev.Get("Device.GatewayInfo.ManufacturerOUI"))
	assert.Equal(t, "IGD", dev.Get("Device.GatewayInfo.ProductClass"))
	assert.True(t, strings.HasPrefix(st["ip"], "192.168.97."), st["ip"])
	assert.Contains(t, readFile(filepath.Join(dir, "dnsmasq.leases")), st["ip"])
	dev.Stop(syscall.SIGTERM)
	require.Eventually(t, func() bool { return !strings.Contains(readFile(filepath.Join(dir, "dnsmasq.leases")), st["ip"]) }, 10*time.Second,
		100*time.Millisecond, "dnsmasq took the DHCPRELEASE")

	// Inform mode with a static address, unicast to dnsmasq.
	netlab.Command(p.Dev, "ip", "addr", "add", "192.168.97.60/24", "dev", p.DevIf).Run()
	inf := netlab.StartAgent(t, p.Dev, filepath.Join(dir, "inform"), m.deviceConfig("http://192.168.97.1:9/", fmt.Sprintf(`dhcp:
  client: {mode: inform, interface: %s, inform_server: 192.168.97.1}`, p.DevIf)))
	require.Eventually(t, func() bool { return inf.Get("Device.GatewayInfo.SerialNumber") == "GW-LAB" }, 30*time.Second, 100*time.Millisecond,
		"dnsmasq answers DHCPINFORM with the Gateway Identity")
}

// TestLabGatewayDnsmasqMode: a gateway running dnsmasq; dnsmasq's
// dhcp-script (`cwmp-agent dnsmasq-script`) keeps the agent's
// ManageableDevice table, for udhcpc and dhclient clients.
func TestLabGatewayDnsmasqMode(t *testing.T) {
	for _, m := range labModelSets {
		t.Run(m.name(), func(t *testing.T) { t.Parallel(); labGatewayDnsmasqMode(t, m) })
	}
}

func labGatewayDnsmasqMode(t *testing.T, m labModels) {
	need(t, "dnsmasq", "busybox", "dhclient")
	entries := m.entries()
	p := netlab.NewPair(t, netlab.PairOptions{GWAddr: "192.168.98.1/24"})
	dir := t.TempDir()
	gw := netlab.StartAgent(t, p.GW, filepath.Join(dir, "gw"), m.gatewayConfig("http://192.168.98.1:9/", ""))
	wrapper := script(t, filepath.Join(dir, "dnsmasq-script"), fmt.Sprintf("exec %s dnsmasq-script \"$@\"\n", netlab.AgentBinary(t)))
	lines := agentOutput(t, "dnsmasq-config", "--config", identityConfig(t, dir, m.gw, labGateway), "--script", wrapper)
	// dnsmasq passes its environment to the script: that is how the script
	// finds the agent's control socket.
	proc(t, p.GW, []string{"CWMP_AGENT_CONTROL_SOCKET=" + gw.Socket}, "dnsmasq", "-k", "-C", dnsmasqConf(t, dir, p.GWIf, "192.168.98", lines))
	rec, events := recorder(t, dir)

	u := proc(t, p.Dev, nil, "busybox", udhcpcArgs(p.DevIf, assoc.DeviceOptionForms(labDevice).Hex, rec)...)
	require.Eventually(t, func() bool { return gw.Get(entries) == "1" }, 20*time.Second, 100*time.Millisecond, "udhcpc enters the table through dnsmasq")
	assert.Equal(t, "DEV-LAB", gw.Get(m.gwRoot()+".ManagementServer.ManageableDevice.1.SerialNumber"))
	assert.Equal(t, "STB", gw.Get(m.gwRoot()+".ManagementServer.ManageableDevice.1.ProductClass"))
	assert.Contains(t, gw.Call("dhcp.leases", nil)[strings.ToLower(netIfMAC(t, p.Dev, p.DevIf))], "source=dnsmasq")
	require.Eventually(t, func() bool { return gatewayFromEvents(t, readFile(events)) != nil }, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, &labGateway, gatewayFromEvents(t, readFile(events)))
	signalWait(t, u, syscall.SIGTERM)
	require.Eventually(t, func() bool { return gw.Get(entries) == "0" }, 10*time.Second, 100*time.Millisecond, "the release reaches the table")

	conf := dhclientConf(t, dir, labDevice)
	proc(t, p.Dev, nil, "dhclient", dhclientArgs(dir, conf, rec, p.DevIf, false)...)
	require.Eventually(t, func() bool { return gw.Get(entries) == "1" }, 30*time.Second, 100*time.Millisecond, "dhclient enters the table through dnsmasq")
	dhclientRelease(t, p.Dev, dir, conf, rec, p.DevIf)
	require.Eventually(t, func() bool { return gw.Get(entries) == "0" }, 10*time.Second, 100*time.Millisecond)

	// A device that joins while the agent is down: the script keeps the
	// event next to the control socket and the agent applies it at start.
	gw.Stop(syscall.SIGTERM)
	os.WriteFile(events, nil, 0o644)
	u = proc(t, p.Dev, nil, "busybox", udhcpcArgs(p.DevIf, assoc.DeviceOptionForms(labDevice).Hex, rec)...)
	require.Eventually(t, func() bool { return strings.Contains(readFile(events), "EVENT bound") }, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		m, _ := filepath.Glob(filepath.Join(cpe.DnsmasqSpool(gw.Socket), "*.json"))
		return len(m) == 1
	}, 5*time.Second, 50*time.Millisecond, "the script keeps the event")
	gw = netlab.StartAgent(t, p.GW, filepath.Join(dir, "gw"), m.gatewayConfig("http://192.168.98.1:9/", ""))
	assert.Equal(t, "1", gw.Get(entries), "the device that joined while the agent was down is listed at start")
	assert.Contains(t, gw.Call("dhcp.leases", nil)[strings.ToLower(netIfMAC(t, p.Dev, p.DevIf))], "serial=DEV-LAB")
	signalWait(t, u, syscall.SIGTERM)
	require.Eventually(t, func() bool { return gw.Get(entries) == "0" }, 10*time.Second, 100*time.Millisecond)
}

func netIfMAC(t *testing.T, ns, ifname string) string {
	out := sh(t, ns, "cat", "/sys/class/net/"+ifname+"/address")
	return strings.TrimSpace(out)
}

// TestLabHookMode: a device that keeps its own DHCP client (udhcpc, then
// dhclient) and runs `cwmp-agent dhcp hook` as its script: GatewayInfo in
// the running agent follows bound and release, and the --chain script still
// runs.
func TestLabHookMode(t *testing.T) {
	for _, m := range labModelSets {
		t.Run(m.name(), func(t *testing.T) { t.Parallel(); labHookMode(t, m) })
	}
}

func labHookMode(t *testing.T, m labModels) {
	need(t, "busybox", "dhclient")
	p := netlab.NewPair(t, netlab.PairOptions{GWAddr: "192.168.99.1/24"})
	dir := t.TempDir()
	netlab.StartAgent(t, p.GW, filepath.Join(dir, "gw"), m.gatewayConfig("http://192.168.99.1:9/", fmt.Sprintf(`dhcp:
  server: {interface: %s, pool_start: 192.168.99.100, pool_end: 192.168.99.120, lease_time: 1h}`, p.GWIf)))
	dev := netlab.StartAgent(t, p.Dev, filepath.Join(dir, "dev"), m.deviceConfig("http://192.168.99.1:9/", ""))
	rec, events := recorder(t, dir)
	hook := script(t, filepath.Join(dir, "hook"), fmt.Sprintf("exec %s dhcp hook --socket %s --chain %s \"$@\"\n", netlab.AgentBinary(t), dev.Socket, rec))

	// The udhcpc form, as `cwmp-agent dhcp option125` prints it.
	printed := agentOutput(t, "dhcp", "option125", "--config", identityConfig(t, dir, m.dev, labDevice))
	var hex string
	for _, l := range strings.Split(printed, "\n") {
		if h, ok := strings.CutPrefix(l, "hex: "); ok {
			hex = h
		}
	}
	require.Equal(t, assoc.DeviceOptionForms(labDevice).Hex, hex)
	u := proc(t, p.Dev, nil, "busybox", udhcpcArgs(p.DevIf, hex, hook)...)
	require.Eventually(t, func() bool { return dev.Get("Device.GatewayInfo.SerialNumber") == "GW-LAB" }, 20*time.Second, 100*time.Millisecond,
		"udhcpc's bound event records the Gateway Identity")
	assert.Equal(t, "001122", dev.Get("Device.GatewayInfo.ManufacturerOUI"))
	assert.Eventually(t, func() bool { return strings.Contains(readFile(events), "EVENT bound") }, 5*time.Second, 20*time.Millisecond,
		"the chained script ran (after the hook)")
	signalWait(t, u, syscall.SIGTERM) // release, then deconfig
	require.Eventually(t, func() bool { return dev.Get("Device.GatewayInfo.SerialNumber") == "" }, 10*time.Second, 100*time.Millisecond,
		"deconfig discards GatewayInfo")

	conf := dhclientConf(t, dir, labDevice)
	proc(t, p.Dev, nil, "dhclient", dhclientArgs(dir, conf, hook, p.DevIf, false)...)
	require.Eventually(t, func() bool { return dev.Get("Device.GatewayInfo.SerialNumber") == "GW-LAB" }, 30*time.Second, 100*time.Millisecond,
		"dhclient's BOUND records the Gateway Identity")
	dhclientRelease(t, p.Dev, dir, conf, hook, p.DevIf)
	require.Eventually(t, func() bool { return dev.Get("Device.GatewayInfo.ProductClass") == "" }, 10*time.Second, 100*time.Millisecond,
		"dhclient's RELEASE discards GatewayInfo")
}
