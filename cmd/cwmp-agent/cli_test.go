package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
)

// command is the binary and arguments of a command as users type it:
// "cwmp-agent stun-server" and "cwmp-agent fleet" reach the programs that
// have those commands now, built next to it.
func command(args ...string) (string, []string) {
	return binary, args
}

// cli runs the built binary and returns its combined output and error.
func runCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	bin, args := command(args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestFlagsAfterArguments types the commands the way users of GNU tools do:
// flags after the arguments, single-dash long flags, negative numbers as
// values. Each must reach the agent named by --config (it once dialled the
// default socket instead: Go's flag package stops at the first argument).
func TestFlagsAfterArguments(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
acs: {url: "`+acs.URL+`"}
device: {oui: 00D09E, product_class: Box, serial_number: F1}
state_dir: `+filepath.Join(dir, "state")+`
connection_request: {listen: "127.0.0.1:0", username: acs, password: cr-secret}
udp_connection_request: {listen: ""}
control: {socket: `+sock+`}
`), 0o600))
	agent := exec.Command(binary, "run", "--log-level", "debug", "--config", cfg)
	var stderr syncBuffer
	agent.Stderr = &stderr
	require.NoError(t, agent.Start())
	defer func() { agent.Process.Kill(); agent.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, "00D09E-Box-F1", 1), stderr.String())

	// The socket path comes only from --config, given last (without it
	// the default /run/cwmp-agent/agent.sock is dialled, where no agent is).
	var env []string
	ok := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, env, args...)
		require.NoError(t, err, "%v: %s", args, out)
		return out
	}
	ms := "Device.ManagementServer."
	assert.Equal(t, "F1\n", ok("get", "Device.DeviceInfo.SerialNumber", "--config", cfg))
	ok("set", ms+"PeriodicInformInterval", "600", ms+"STUNMaximumKeepAlivePeriod", "-1", "--config", cfg)
	assert.Equal(t, "600\n", ok("get", ms+"PeriodicInformInterval", "-config", cfg), "single-dash long flag")
	assert.Equal(t, "-1\n", ok("get", "--config="+cfg, ms+"STUNMaximumKeepAlivePeriod"), "a negative number is a value")
	assert.Contains(t, ok("dump", "Device.DeviceInfo.", "--format", "text", "--config", cfg), "Device.DeviceInfo.SerialNumber = F1")
	ok("set", "--config", cfg, "--", "Device.GatewayInfo.ProductClass", "-gw-")
	assert.Equal(t, "-gw-\n", ok("get", "Device.GatewayInfo.ProductClass", "--socket", sock))
	ok("inform", "6", "CONNECTION", "REQUEST", "--config", cfg)
	_, err = acs.WaitEvent(ctx, "00D09E-Box-F1", "6 CONNECTION REQUEST")
	require.NoError(t, err)

	// dhcp hook: the event first, the flags after it.
	ok("set", "Device.GatewayInfo.SerialNumber", "GW-1", "--config", cfg)
	ok("dhcp", "hook", "deconfig", "--socket", sock, "--chain", "/bin/true")
	assert.Equal(t, "\n", ok("get", "Device.GatewayInfo.SerialNumber", "--config", cfg), "deconfig empties GatewayInfo")
	assert.Contains(t, ok("dhcp", "option125", "--config", cfg), "udhcpc -i IFACE")
	assert.Contains(t, ok("dnsmasq-config", "--script", "/opt/x-script", "--config", cfg), "dhcp-script=/opt/x-script")
	assert.Contains(t, ok("check-config", "--config", cfg), "OK (Device:1.1, 118 parameters, serial F1")

	// dnsmasq-script with its socket after the lease's arguments: no agent
	// listens there, so the event is kept next to that socket.
	spoolSock := filepath.Join(dir, "gw", "agent.sock")
	require.NoError(t, os.MkdirAll(filepath.Dir(spoolSock), 0o700))
	out := ok("dnsmasq-script", "add", "02:00:00:00:00:01", "192.168.1.10", "--socket", spoolSock)
	assert.Contains(t, out, "is kept in "+filepath.Join(dir, "gw"))

	// An unknown flag, wherever it is, is an error naming it.
	for _, args := range [][]string{
		{"get", "Device.DeviceInfo.SerialNumber", "--bogus", "--config", cfg},
		{"set", "--bogus=1", "Device.X", "1"},
		{"run", "--config", cfg, "--bogus"},
		{"fleet", "--count", "1", "--bogus"},
		{"stun-server", "--bogus"},
		{"demo", "--bogus"},
		{"test-acs", "--bogus"},
		{"dhcp", "hook", "bound", "--bogus"},
		{"dnsmasq-script", "add", "--bogus"},
		{"check-config", "--bogus"},
	} {
		out, err := runCLI(t, env, args...)
		assert.Error(t, err, "%v", args)
		assert.Contains(t, out, "unknown flag: --bogus", "%v", args)
	}
}

// TestHelpExitsZero: --help and -h print the usage on standard output and
// exit 0, for the program and every subcommand.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"run", "--help"}, {"run", "-h"}, {"get", "-h"}, {"set", "--help"}, {"dump", "-h"}, {"inform", "-h"},
		{"demo", "-h"}, {"fleet", "--help"}, {"test-acs", "-h"}, {"stun-server", "--help"}, {"check-config", "-h"},
		{"dhcp", "option125", "-h"}, {"dhcp", "hook", "--help"}, {"dnsmasq-config", "-h"}, {"dnsmasq-script", "--help"},
	} {
		bin, args := command(args...)
		cmd := exec.Command(bin, args...)
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.Output()
		assert.NoError(t, err, "%v: %s", args, errb.String())
		assert.Contains(t, string(out), "Usage", "%v", args)
	}
}

// TestURLPasswordsStayOutOfLogs: an ACS URL with userinfo never shows its
// password in the log, nor in DeviceInfo.DeviceLog (the "ACS URL changed"
// line printed it whole).
func TestURLPasswordsStayOutOfLogs(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	withCreds := func(pw string) string { return strings.Replace(acs.URL, "http://", "http://acsuser:"+pw+"@", 1) }
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
acs: {url: "`+withCreds("first-s3cret")+`", password: acs-pass-1}
device: {oui: 00D09E, product_class: Box, serial_number: S1}
state_dir: `+filepath.Join(dir, "state")+`
connection_request: {listen: "127.0.0.1:0", username: acs, password: cr-pass-1}
udp_connection_request: {listen: ""}
control: {socket: `+sock+`}
log: {level: debug}
`), 0o600))
	agent := exec.Command(binary, "run", "--config", cfg)
	var stderr syncBuffer
	agent.Stderr = &stderr
	require.NoError(t, agent.Start())
	defer func() { agent.Process.Kill(); agent.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, "00D09E-Box-S1", 1), stderr.String())
	out, err := runCLI(t, nil, "set", "Device.ManagementServer.URL", withCreds("second-s3cret"), "--socket", sock)
	require.NoError(t, err, out)
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "ACS URL changed") }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	log, err := runCLI(t, nil, "get", "Device.DeviceInfo.DeviceLog", "--socket", sock)
	require.NoError(t, err)
	for _, secret := range []string{"first-s3cret", "second-s3cret", "acs-pass-1", "cr-pass-1"} {
		assert.NotContains(t, stderr.String(), secret)
		assert.NotContains(t, log, secret)
	}
	assert.Contains(t, stderr.String(), "acsuser:xxxxx@", "the URL is still recognisable")
}

// TestForwardWithoutSibling: a cwmp-agent installed alone says which
// program the forwarded command needs instead of failing obscurely.
func TestForwardWithoutSibling(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(binary)
	require.NoError(t, err)
	alone := filepath.Join(dir, "cwmp-agent")
	require.NoError(t, os.WriteFile(alone, data, 0o755))
	cmd := exec.Command(alone, "stun-server", "--help")
	cmd.Env = []string{"PATH=" + dir}
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "cwmp-stun-server is not installed")
}
