package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// binary is the built cwmp-agent; stunBinary and fleetBinary the built
// cwmp-stun-server and cwmp-fleet.
var binary, stunBinary, fleetBinary string

func TestMain(m *testing.M) {
	// Built as `make build` does, so that measurements are of the real thing.
	binary = testbin.MustBuild("cwmp-agent")
	stunBinary = testbin.MustBuild("cwmp-stun-server")
	fleetBinary = testbin.MustBuild("cwmp-fleet")
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
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

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	mapping := filepath.Join(dir, "map.yaml")
	require.NoError(t, os.WriteFile(mapping, []byte("mounts:\n  - path: Device.DeviceInfo.ModelName\n    file: /etc/hostname\n  - path: Device.Nope.\n    control: true\n"), 0o600))
	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("acs: {url: \"http://acs/\"}\ndevice:\n  oui: 00d09e\n  serial_number: S1\nmapping: "+mapping+"\n"), 0o600))
	var errb strings.Builder
	old := cli.Stderr
	cli.Stderr = &errb
	defer func() { cli.Stderr = old }()
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
	assert.Contains(t, out.String(), "OK (Device:1.1, 118 parameters, serial S1, 1 mounts")
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
