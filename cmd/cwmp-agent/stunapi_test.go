package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
)

// readmeBlock returns the first fenced block after the line starting with
// marker in the README.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, marker)
	require.GreaterOrEqual(t, i, 0, "README lacks %q", marker)
	s = s[i:]
	start := strings.Index(s, "```\n")
	require.GreaterOrEqual(t, start, 0)
	s = s[start+4:]
	end := strings.Index(s, "```")
	require.GreaterOrEqual(t, end, 0)
	return s[:end]
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestREADMEStunServerAPIExample runs the README's curl lines, as a user
// would paste them, against `cwmp-agent stun-server` and a real agent that
// registered its binding with it (an authenticated BINDING-CHANGE). The
// example once answered 400: curl -d sends a form Content-Type.
func TestREADMEStunServerAPIExample(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	stunPort, apiPort, cpePort := freePort(t, "udp"), freePort(t, "tcp"), freePort(t, "udp")
	creds := filepath.Join(dir, "credentials")
	require.NoError(t, os.WriteFile(creds, []byte("cpe-00D09E-SN1 stun-secret acs cr-secret\n"), 0o600))
	srvDir := filepath.Join(dir, "stun-server")
	srv := exec.Command(stunBinary, "--listen", fmt.Sprintf("127.0.0.1:%d", stunPort), "--credentials", creds,
		"--api", fmt.Sprintf("127.0.0.1:%d", apiPort), "--state-dir", srvDir)
	var srvLog syncBuffer
	srv.Stderr = &srvLog
	require.NoError(t, srv.Start())
	defer func() { srv.Process.Kill(); srv.Wait() }()

	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
acs: {url: "%s"}
device: {oui: 00D09E, serial_number: SN1}
state_dir: %s
connection_request: {listen: "127.0.0.1:0", username: acs, password: cr-secret}
udp_connection_request: {listen: "127.0.0.1:%d"}
control: {socket: %s}
periodic_inform: {enable: false}
parameters:
  Device.ManagementServer.STUNEnable: true
  Device.ManagementServer.STUNServerAddress: 127.0.0.1
  Device.ManagementServer.STUNServerPort: %d
  Device.ManagementServer.STUNUsername: cpe-00D09E-SN1
  Device.ManagementServer.STUNPassword: stun-secret
`, acs.URL, filepath.Join(dir, "state"), cpePort, filepath.Join(dir, "agent.sock"), stunPort)), 0o600))
	agent := exec.Command(binary, "run", "--config", cfg)
	var agentLog syncBuffer
	agent.Stderr = &agentLog
	require.NoError(t, agent.Start())
	defer func() { agent.Process.Kill(); agent.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := "00D09E-SN1"
	require.NoError(t, acs.WaitSessions(ctx, id, 1), agentLog.String())
	require.Eventually(t, func() bool {
		out, _ := exec.Command("curl", "-s", "-H", "Authorization: Bearer "+readToken(t, srvDir),
			fmt.Sprintf("localhost:%d/bindings", apiPort)).Output()
		return strings.Contains(string(out), `"username":"cpe-00D09E-SN1"`)
	}, 20*time.Second, 50*time.Millisecond, "the agent's binding is recorded\n%s\n%s", agentLog.String(), srvLog.String())

	// The README's block, with this test's directory, ports and CPE.
	script := readmeBlock(t, "The API, for the ACS")
	script = strings.ReplaceAll(script, "/var/lib/cwmp-agent/stun-server", srvDir)
	script = strings.ReplaceAll(script, "localhost:7549", fmt.Sprintf("localhost:%d", apiPort))
	script = strings.ReplaceAll(script, "198.51.100.7:40000", fmt.Sprintf("127.0.0.1:%d", cpePort))
	before := len(acs.Device(id).Informs)
	out, err := exec.Command("bash", "-e", "-c", script).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Len(t, regexp.MustCompile(`"sent_to":"127\.0\.0\.1:\d+"`).FindAllString(string(out), -1), 2, "both Connection Requests sent:\n%s", out)
	assert.Contains(t, string(out), `"bindings":[{"username":"cpe-00D09E-SN1"`)
	assert.Contains(t, string(out), "ok\n")

	// They reached the agent: a 6 CONNECTION REQUEST session at the ACS.
	_, err = acs.WaitEventAfter(ctx, id, "6 CONNECTION REQUEST", before)
	require.NoError(t, err, agentLog.String())

	// Without the token the API refuses (401); /healthz needs none.
	out, err = exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
		fmt.Sprintf("localhost:%d/connection-request", apiPort), "-d", `{"username":"cpe-00D09E-SN1"}`).Output()
	require.NoError(t, err)
	assert.Equal(t, "401", string(out))
	assert.NotContains(t, srvLog.String(), readToken(t, srvDir), "the token is never logged")
}

func readToken(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
