package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
)

// startLimited runs the agent binary with at most nofile descriptors (soft
// and hard, so that Go cannot raise them) and returns it with its log.
func startLimited(t *testing.T, nofile int, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command("bash", "-c", fmt.Sprintf("ulimit -n %d && exec %q %s", nofile, binary, strings.Join(args, " ")))
	log := &syncBuffer{}
	cmd.Stderr = log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, log
}

func openFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestSlowClientFlood: 1,000 reconnecting slow clients (headers one byte a
// second) on the Connection Request port of an agent limited to 256
// descriptors. They once took every descriptor; the control socket's
// accept then failed with EMFILE and the whole agent exited. Now the
// listener holds a few of them and drops the rest at once, a Connection
// Request from another address goes through, the control socket answers,
// and the agent keeps running.
func TestSlowClientFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("the flood runs for seconds; skipped with -short")
	}
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
acs: {url: "`+acs.URL+`"}
device: {oui: 00D09E, product_class: Box, serial_number: FLOOD}
state_dir: `+filepath.Join(dir, "state")+`
connection_request: {listen: "127.0.0.1:0", username: acs, password: cr-secret}
udp_connection_request: {listen: ""}
control: {socket: `+sock+`}
periodic_inform: {enable: false}
`), 0o600))
	agent, log := startLimited(t, 256, "run", "--config", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := "00D09E-Box-FLOOD"
	require.NoError(t, acs.WaitSessions(ctx, id, 1), log.String())
	out, err := runCLI(t, nil, "get", "Device.ManagementServer.ConnectionRequestURL", "--socket", sock)
	require.NoError(t, err, out)
	crURL := strings.TrimSpace(out)
	host := regexp.MustCompile(`^http://([^/]+)`).FindStringSubmatch(crURL)[1]

	flood, stopFlood := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var dials atomic.Int64
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for flood.Err() == nil {
				c, err := net.DialTimeout("tcp", host, time.Second)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				dials.Add(1)
				for _, b := range []byte("GET / HTTP/1.1\r\nHost: x\r\n") {
					if flood.Err() != nil {
						break
					}
					if _, err := c.Write([]byte{b}); err != nil {
						break
					}
					select {
					case <-flood.Done():
					case <-time.After(time.Second):
					}
				}
				c.Close()
			}
		}()
	}
	defer func() { stopFlood(); wg.Wait() }()
	time.Sleep(3 * time.Second)
	fds := openFDs(agent.Process.Pid)
	t.Logf("under the flood: %d dials, %d descriptors open in the agent", dials.Load(), fds)
	assert.Less(t, fds, 128, "the listener holds a bounded number of connections")

	// A Connection Request from another address gets through.
	before := len(acs.Device(id).Informs)
	code, err := cwmptest.ConnectionRequestFrom(ctx, net.IPv4(127, 0, 0, 2), crURL, "acs", "cr-secret")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	_, err = acs.WaitEventAfter(ctx, id, "6 CONNECTION REQUEST", before)
	require.NoError(t, err)
	// The control socket answers.
	out, err = runCLI(t, nil, "get", "Device.DeviceInfo.SerialNumber", "--socket", sock)
	require.NoError(t, err, out)
	assert.Equal(t, "FLOOD\n", out)
	stopFlood()
	wg.Wait()
	// And the agent is still running.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", agent.Process.Pid))
	require.NoError(t, err)
	assert.NotContains(t, string(stat), ") Z ", "the agent exited:\n%s", log.String())
}

// TestPasswordGuessing: failed Connection Request authentications from one
// address are limited (429 after ten) and logged, without the credentials;
// another address is not affected. 15,000 guesses a second once got 401
// for ever, unlogged.
func TestPasswordGuessing(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
acs: {url: "`+acs.URL+`"}
device: {oui: 00D09E, product_class: Box, serial_number: GUESS}
state_dir: `+filepath.Join(dir, "state")+`
connection_request: {listen: "127.0.0.1:0", username: acs, password: the-real-one}
udp_connection_request: {listen: ""}
control: {socket: `+sock+`}
periodic_inform: {enable: false}
`), 0o600))
	agent := exec.Command(binary, "run", "--config", cfg)
	var log syncBuffer
	agent.Stderr = &log
	require.NoError(t, agent.Start())
	defer func() { agent.Process.Kill(); agent.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, "00D09E-Box-GUESS", 1), log.String())
	out, err := runCLI(t, nil, "get", "Device.ManagementServer.ConnectionRequestURL", "--socket", sock)
	require.NoError(t, err)
	crURL := strings.TrimSpace(out)

	codes := map[int]int{}
	for i := 0; i < 200; i++ {
		code, err := cwmptest.ConnectionRequest(ctx, crURL, "acs", fmt.Sprint("guess-", i))
		require.NoError(t, err)
		codes[code]++
	}
	assert.LessOrEqual(t, codes[http.StatusUnauthorized], 12, "a guesser is cut off: %v", codes)
	assert.GreaterOrEqual(t, codes[http.StatusTooManyRequests], 180, "%v", codes)
	// The right password from the same address is refused while blocked...
	code, err := cwmptest.ConnectionRequest(ctx, crURL, "acs", "the-real-one")
	require.NoError(t, err)
	assert.Equal(t, http.StatusTooManyRequests, code)
	// ...and accepted from another address.
	code, err = cwmptest.ConnectionRequestFrom(ctx, net.IPv4(127, 0, 0, 3), crURL, "acs", "the-real-one")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	lines := strings.Count(log.String(), "connection request authentication failed")
	assert.GreaterOrEqual(t, lines, 1, "failures are logged")
	assert.LessOrEqual(t, lines, 3, "rate-limited:\n%s", log.String())
	for i := 0; i < 200; i++ {
		assert.NotContains(t, log.String(), fmt.Sprint("guess-", i))
	}
	assert.NotContains(t, log.String(), "the-real-one")
}
