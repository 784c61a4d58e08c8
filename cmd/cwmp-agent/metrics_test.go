package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
)

// logLines reads a program's log as it comes.
type logLines chan string

func readLog(r io.Reader) logLines {
	l := make(logLines, 256)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case l <- sc.Text():
			default:
			}
		}
	}()
	return l
}

// wait returns the first submatch of the next line matching re.
func (l logLines) wait(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case line := <-l:
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-deadline:
			t.Fatalf("no log line matching %s", re)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var metricsAddr = regexp.MustCompile(`msg="metrics listening" address=(\S+)`)

// TestDaemonMetrics: the agent binary with --metrics-listen serves its
// metrics, ready once its session with the ACS succeeded.
func TestDaemonMetrics(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	cmd := exec.Command(binary, "run", "--acs-url", acs.URL, "--oui", "00D09E", "--serial", "MET1", "--state-dir", filepath.Join(dir, "state"),
		"--cr-listen", "127.0.0.1:0", "--socket", filepath.Join(dir, "s.sock"), "--metrics-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "CWMP_AGENT_UDP_CONNECTION_REQUEST_LISTEN=127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	addr := readLog(stderr).wait(t, metricsAddr)
	base := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, "00D09E-MET1", 1))
	require.Eventually(t, func() bool { c, _ := httpGet(t, base+"/readyz"); return c == 200 }, 5*time.Second, 20*time.Millisecond)
	code, body := httpGet(t, base+"/metrics")
	assert.Equal(t, 200, code)
	for _, want := range []string{`cwmp_sessions_total{outcome="ok"} 1`, `cwmp_session_events_total{event="0 BOOTSTRAP"} 1`,
		"cwmp_pending_events 0", "cwmp_session_retries 0", "process_resident_memory_bytes"} {
		assert.Contains(t, body, want)
	}
	code, _ = httpGet(t, base+"/healthz")
	assert.Equal(t, 200, code)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, cmd.Wait())
}

// TestStunServerMetrics: cwmp-stun-server with --metrics-listen counts
// what arrives at its STUN port.
func TestStunServerMetrics(t *testing.T) {
	cmd := exec.Command(stunBinary, "--listen", "127.0.0.1:0", "--api", "", "--state-dir", t.TempDir(), "--metrics-listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	log := readLog(stderr)
	addr := log.wait(t, metricsAddr)
	stunAddr := log.wait(t, regexp.MustCompile(`msg="STUN server" listen=(\S+)`))
	u, err := net.Dial("udp", stunAddr)
	require.NoError(t, err)
	u.Write([]byte("not a binding request"))
	u.Close()
	require.Eventually(t, func() bool {
		_, body := httpGet(t, "http://"+addr+"/metrics")
		return strings.Contains(body, "cwmp_stun_server_dropped_total 1")
	}, 5*time.Second, 20*time.Millisecond)
	_, body := httpGet(t, "http://"+addr+"/metrics")
	assert.Contains(t, body, "cwmp_stun_server_bindings 0")
	code, _ := httpGet(t, "http://"+addr+"/readyz")
	assert.Equal(t, 200, code)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, cmd.Wait())
}

// TestNoMetricsBuild: a device built with -tags nometrics links no
// Prometheus code and says so when asked for metrics.
func TestNoMetricsBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent once more (-short)")
	}
	deps, err := exec.Command("go", "list", "-deps", "-tags", testbin.Tags+",nometrics", ".").Output()
	require.NoError(t, err)
	assert.NotContains(t, string(deps), "prometheus")
	bin := filepath.Join(t.TempDir(), "cwmp-agent")
	out, err := exec.Command("go", "build", "-tags", testbin.Tags+",nometrics", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(bin, "run", "--acs-url", "http://127.0.0.1:9/", "--oui", "00D09E", "--serial", "NM1", "--state-dir", t.TempDir(),
		"--socket", filepath.Join(t.TempDir(), "s.sock"), "--metrics-listen", "127.0.0.1:0").CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "built without metrics")
}
