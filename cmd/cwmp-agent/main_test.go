package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cwmp-agent-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "cwmp-agent")
	// Built as `make build` does, so that measurements are of the real thing.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	if err != nil {
		panic("building the agent: " + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func loadYAML(t *testing.T, yaml string, args ...string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
	cf := newCommonFlags("run", "")
	require.NoError(t, cf.fs.Parse(append([]string{"--config", p}, args...)))
	cfg, _, err := cf.load()
	return cfg, err
}

const goodYAML = `
acs:
  url: http://127.0.0.1:7547/acs
device:
  oui: 00D09E
  serial_number: SN1
state_dir: /tmp/x
parameters:
  Device.ManagementServer.PeriodicInformInterval: 120
  Device.DeviceInfo.ProvisioningCode: "ABCD.EFGH"
`

func TestConfigLoads(t *testing.T) {
	cfg, err := loadYAML(t, goodYAML, "--serial", "SN-FLAG")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:7547/acs", cfg.ACS.URL)
	assert.Equal(t, "SN-FLAG", cfg.Device.SerialNumber, "flags win over the file")
	assert.Equal(t, "Device", cfg.Device.Root)
	assert.Equal(t, map[string]string{"Device.ManagementServer.PeriodicInformInterval": "120", "Device.DeviceInfo.ProvisioningCode": "ABCD.EFGH"}, cfg.Parameters,
		"parameter paths are not split on their dots")
	f := cfg.Factory()
	assert.Equal(t, "120", f["Device.ManagementServer.PeriodicInformInterval"], "parameters win over the mapped keys")
	assert.Equal(t, "SN-FLAG", f["Device.DeviceInfo.SerialNumber"])

	t.Setenv("CWMP_AGENT_ACS_URL", "https://acs.example:7548/")
	t.Setenv("CWMP_AGENT_DEVICE_PRODUCT_CLASS", "Box")
	cfg, err = loadYAML(t, goodYAML)
	require.NoError(t, err)
	assert.Equal(t, "https://acs.example:7548/", cfg.ACS.URL, "environment variables win over the file")
	assert.Equal(t, "Box", cfg.Device.ProductClass)
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"missing url", "device: {oui: 00D09E, serial_number: S}\n", "acs.url"},
		{"bad url", "acs: {url: ftp://x}\ndevice: {oui: 00D09E, serial_number: S}\n", "acs.url"},
		{"bad oui", "acs: {url: http://a/}\ndevice: {oui: 00d09e, serial_number: S}\n", "device.oui"},
		{"bad root", "acs: {url: http://a/}\ndevice: {root: Router, oui: 00D09E, serial_number: S}\n", "device.root"},
		{"no serial", "acs: {url: http://a/}\ndevice: {oui: 00D09E}\n", "device.serial_number"},
		{"unknown key", "acs: {url: http://a/, passwd: x}\ndevice: {oui: 00D09E, serial_number: S}\n", "acs.passwd"},
		{"bad interval", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nperiodic_inform: {interval: 0}\n", "periodic_inform.interval"},
		{"bad boolean", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nperiodic_inform: {enable: maybe}\n", "periodic_inform.enable"},
		{"bad duration", "acs: {url: http://a/, response_timeout: soon}\ndevice: {oui: 00D09E, serial_number: S}\n", "acs.response_timeout"},
		{"bad level", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nlog: {level: loud}\n", "log.level"},
		{"unknown parameter", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nparameters: {Device.Nope: 1}\n", "parameters.Device.Nope"},
		{"bad parameter value", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nparameters: {Device.ManagementServer.STUNServerPort: 70000}\n", "parameters.Device.ManagementServer.STUNServerPort"},
		{"bad listen", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nconnection_request: {listen: nowhere}\n", "connection_request.listen"},
		{"https cr url", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nconnection_request: {url: https://x/}\n", "connection_request.url"},
		{"dhcp client on a gateway", "acs: {url: http://a/}\ndevice: {root: InternetGatewayDevice, oui: 00D09E, serial_number: S}\ndhcp: {client: {mode: lease, interface: eth0}}\n", "dhcp.client.mode"},
		{"dhcp client mode", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\ndhcp: {client: {mode: always, interface: eth0}}\n", "dhcp.client.mode"},
		{"dhcp client interface", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\ndhcp: {client: {mode: inform}}\n", "dhcp.client.interface"},
		{"dhcp server on a device", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\ndhcp: {server: {interface: br-lan, pool_start: 10.0.0.10, pool_end: 10.0.0.20}}\n", "dhcp.server.interface"},
		{"dhcp pool", "acs: {url: http://a/}\ndevice: {root: InternetGatewayDevice, oui: 00D09E, serial_number: S}\ndhcp: {server: {interface: br-lan, pool_start: 10.0.0.300, pool_end: 10.0.0.20}}\n", "dhcp.server.pool_start"},
		{"dhcp lease", "acs: {url: http://a/}\ndevice: {root: InternetGatewayDevice, oui: 00D09E, serial_number: S}\ndhcp: {server: {lease_time: 1s}}\n", "dhcp.server.lease_time"},
		{"dhcp dns", "acs: {url: http://a/}\ndevice: {root: InternetGatewayDevice, oui: 00D09E, serial_number: S}\ndhcp: {server: {dns: \"10.0.0.1,fe80::1\"}}\n", "dhcp.server.dns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, tc.yaml)
			require.Error(t, err)
			// "config: FILE:LINE: key: problem" (the line of the key, or of
			// its nearest parent in the file).
			assert.Regexp(t, `config: (\S+\.yaml:\d+: )?`+regexp.QuoteMeta(tc.key)+`:`, err.Error())
		})
	}
	cf := newCommonFlags("run", "")
	require.NoError(t, cf.fs.Parse([]string{"--config", "/nonexistent.yaml"}))
	_, _, err := cf.load()
	assert.ErrorContains(t, err, "/nonexistent.yaml")
}

func TestDemo(t *testing.T) {
	var buf bytes.Buffer
	demoOut = &buf
	defer func() { demoOut = os.Stdout }()
	require.NoError(t, cmdDemo(nil))
	out := buf.String()
	for _, want := range []string{"Inform [0 BOOTSTRAP, 1 BOOT]", "Inform [6 CONNECTION REQUEST]", "GetParameterValuesResponse",
		"SetParameterValuesResponse Status 0", "AddObjectResponse InstanceNumber 1", "204 No Content"} {
		assert.Contains(t, out, want)
	}
}

// TestDaemon runs the built binary like a user would: it reaches the ACS,
// answers get/set/dump over its control socket, reports a device-side
// change of an Active Notification parameter, and exits 0 on SIGTERM.
func TestDaemon(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	cfgPath := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
acs:
  url: `+acs.URL+`
device:
  oui: 00D09E
  product_class: Box
  serial_number: D1
  software_version: 1.2.3
state_dir: `+filepath.Join(dir, "state")+`
connection_request:
  listen: 127.0.0.1:0
udp_connection_request:
  listen: 127.0.0.1:0
control:
  socket: `+sock+`
log:
  level: debug
`), 0o600))
	cmd := exec.Command(binary, "run", "--config", cfgPath)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-Box-D1"
	require.NoError(t, acs.WaitSessions(ctx, id, 1), stderr.String())
	inf := acs.Device(id).LastInform()
	assert.Equal(t, "1.2.3", params(inf)["Device.DeviceInfo.SoftwareVersion"])

	ctl := func(args ...string) string {
		out, err := exec.Command(binary, append(args[:1], append([]string{"--socket", sock}, args[1:]...)...)...).CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	assert.Equal(t, "D1\n", ctl("get", "Device.DeviceInfo.SerialNumber"))
	ctl("set", "Device.GatewayInfo.SerialNumber", "GW-42", "Device.GatewayInfo.ManufacturerOUI", "00A0C5")
	assert.Contains(t, ctl("get", "Device.GatewayInfo."), "Device.GatewayInfo.SerialNumber = GW-42")
	dump := ctl("dump")
	assert.Contains(t, dump, `{"name":"Device.DeviceInfo.SerialNumber","type":"xsd:string","value":"D1"}`)
	assert.Contains(t, dump, `"name":"Device.ManagementServer.Password","type":"xsd:string","value":""`)

	// GatewayInfo has Active Notification by default (TR-111 1.2.2): the
	// device's change reaches the ACS in a 4 VALUE CHANGE Inform.
	vc, err := acs.WaitEvent(ctx, id, "4 VALUE CHANGE")
	require.NoError(t, err, stderr.String())
	assert.Equal(t, "GW-42", params(vc)["Device.GatewayInfo.SerialNumber"])
	assert.Equal(t, "00A0C5", params(vc)["Device.GatewayInfo.ManufacturerOUI"])

	out, err := exec.Command(binary, "set", "--socket", sock, "Device.ManagementServer.PeriodicInformInterval", "0").CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "invalid parameter value")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		assert.NoError(t, err, "SIGTERM ends the agent with status 0\n%s", stderr.String())
	case <-time.After(5 * time.Second):
		t.Fatal("the agent did not stop within 5 s of SIGTERM")
	}
	assert.NotContains(t, stderr.String(), "demo-secret")
}

func TestBadConfigStopsTheAgent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte("acs: {url: http://a/}\ndevice: {oui: XYZ, serial_number: S}\n"), 0o600))
	out, err := exec.Command(binary, "run", "--config", p).CombinedOutput()
	require.Error(t, err)
	assert.Regexp(t, `config: \S+c\.yaml:2: device\.oui:`, string(out), "the key and its line")
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func params(inf *soap.Inform) map[string]string {
	out := map[string]string{}
	for _, p := range inf.ParameterList {
		out[p.Name] = p.Value
	}
	return out
}

// TestREADMEListsEveryKey keeps the README's configuration table true.
func TestREADMEListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, s := range append(append([]setting(nil), settings...), stunSettings...) {
		assert.True(t, strings.Contains(string(b), "`"+s.key+"`"), "README lacks the configuration key %s", s.key)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	mapping := filepath.Join(dir, "map.yaml")
	require.NoError(t, os.WriteFile(mapping, []byte("mounts:\n  - path: Device.DeviceInfo.ModelName\n    file: /etc/hostname\n  - path: Device.Nope.\n    control: true\n"), 0o600))
	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("acs: {url: \"http://acs/\"}\ndevice:\n  oui: 00d09e\n  serial_number: S1\nmapping: "+mapping+"\n"), 0o600))
	var errb strings.Builder
	old := stderr
	stderr = &errb
	defer func() { stderr = old }()
	err := run([]string{"check-config", "--config", cfg})
	require.Error(t, err)
	assert.Contains(t, errb.String(), mapping+":4: mapping: Device.Nope.: no such object")
	assert.Contains(t, errb.String(), cfg+":3: device.oui:")

	require.NoError(t, os.WriteFile(mapping, []byte("mounts:\n  - path: Device.DeviceInfo.ModelName\n    file: /etc/hostname\n"), 0o600))
	require.NoError(t, os.WriteFile(cfg, []byte("acs: {url: \"http://acs/\"}\ndevice: {oui: 00D09E, serial_number: S1}\nmapping: "+mapping+"\n"), 0o600))
	var out strings.Builder
	oldOut := ctlOut
	ctlOut = &out
	defer func() { ctlOut = oldOut }()
	require.NoError(t, run([]string{"check-config", "--config", cfg}))
	assert.Contains(t, out.String(), "OK (root Device, serial S1, 1 mounts")
}

// TestPackagingExamples: the configuration and mapping shipped in
// packaging/ are valid (check-config), so the README's instructions work.
func TestPackagingExamples(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("../../packaging/etc/config.yaml")
	require.NoError(t, err)
	mapping, err := filepath.Abs("../../packaging/etc/mapping.yaml")
	require.NoError(t, err)
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(strings.ReplaceAll(string(b), "/etc/cwmp-agent/mapping.yaml", mapping)), 0o600))
	var out strings.Builder
	old := ctlOut
	ctlOut = &out
	defer func() { ctlOut = old }()
	require.NoError(t, run([]string{"check-config", "--config", cfg}))
	assert.Contains(t, out.String(), "3 mounts")
}

func TestStunServerConfig(t *testing.T) {
	c, err := loadStunConfig(nil)
	require.NoError(t, err)
	assert.False(t, c.SharePort, "the port is not shared unless asked")
	assert.Equal(t, ":3478", c.Listen)

	c, err = loadStunConfig([]string{"--share-port", "--listen", "127.0.0.1:3478"})
	require.NoError(t, err)
	assert.True(t, c.SharePort)
	assert.Equal(t, "127.0.0.1:3478", c.Listen)

	f := filepath.Join(t.TempDir(), "s.yaml")
	require.NoError(t, os.WriteFile(f, []byte("stun_server:\n  share_port: true\n  copies: 0\n"), 0o600))
	c, err = loadStunConfig([]string{"--config", f})
	assert.True(t, c.SharePort)
	assert.ErrorContains(t, err, "stun_server.copies")
}
