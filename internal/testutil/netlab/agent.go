package netlab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cpe/control"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
)

// AgentBinary builds cmd/cwmp-agent once per test binary (testbin);
// RemoveAgentBinary (from TestMain) deletes it.
func AgentBinary(t testing.TB) string {
	t.Helper()
	bin, err := testbin.Build("cwmp-agent")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// RemoveAgentBinary deletes the binaries testbin built.
func RemoveAgentBinary() { testbin.Cleanup() }

// Agent is a cwmp-agent process run by a test inside a namespace.
type Agent struct {
	t      testing.TB
	Cmd    *exec.Cmd
	Dir    string // holds c.yaml, agent.log, the state directory and the control socket
	Socket string
	done   chan struct{}
	ns     string
	config string
}

// Restart stops the agent (SIGTERM) and starts it again on the same
// directory and configuration, as a reboot of the device would.
func (a *Agent) Restart() *Agent {
	a.t.Helper()
	a.Stop(syscall.SIGTERM)
	return StartAgent(a.t, a.ns, a.Dir, a.config)
}

// Do sends one request to the agent's control socket.
func (a *Agent) Do(r control.Request) (control.Response, error) { return control.Do(a.Socket, r) }

// StartAgent writes config (YAML; "{dir}" in it stands for the agent's
// directory) and runs `cwmp-agent run` in the namespace. The process is
// killed when the test ends, and its log shown if the test failed.
func StartAgent(t testing.TB, ns, dir, config string) *Agent {
	t.Helper()
	bin := AgentBinary(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	a := &Agent{t: t, Dir: dir, Socket: filepath.Join(dir, "agent.sock"), done: make(chan struct{}), ns: ns, config: config}
	cfg := strings.ReplaceAll(config, "{dir}", dir)
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a.Cmd = Command(ns, bin, "run", "--config", filepath.Join(dir, "c.yaml"))
	a.Cmd.Stderr = logf
	if err := a.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.Cmd.Wait(); logf.Close(); close(a.done) }()
	t.Cleanup(func() {
		a.Stop(syscall.SIGKILL)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("log of the agent in %s:\n%s", dir, b)
		}
	})
	// Ready when the control socket answers.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := control.Do(a.Socket, control.Request{Op: "ping"}); err == nil {
			return a
		}
		select {
		case <-a.done:
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Fatalf("the agent exited at start:\n%s", b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("the agent's control socket never answered")
	return nil
}

// Stop signals the agent and waits for it to exit (at most 10 s, then it is
// killed).
func (a *Agent) Stop(sig syscall.Signal) {
	select {
	case <-a.done:
		return
	default:
	}
	// ip netns exec runs the agent as its child, with the same pid: exec.
	a.Cmd.Process.Signal(sig)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.Cmd.Process.Kill()
		<-a.done
	}
}

// Get reads one parameter through the control socket ("" on error).
func (a *Agent) Get(path string) string {
	r, err := control.Do(a.Socket, control.Request{Op: "get", Path: path})
	if err != nil || len(r.Values) != 1 {
		return ""
	}
	return r.Values[0].Value
}

// Call runs a control action; nil on error.
func (a *Agent) Call(name string, args map[string]string) map[string]string {
	r, err := control.Do(a.Socket, control.Request{Op: "call", Name: name, Args: args})
	if err != nil {
		return nil
	}
	return r.Result
}
