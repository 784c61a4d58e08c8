package backend

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

// MaxOutput caps what a file or a command may give.
const MaxOutput = 1 << 20

// File serves one parameter from a file: its content without the final
// newline; a write replaces the content (value and a newline) in place, as
// files under /proc and /sys must be written.
type File struct{ Path string }

// Get implements datamodel.Backend.
func (f File) Get(string) (string, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxOutput+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxOutput {
		return "", fmt.Errorf("%s: larger than %d bytes", f.Path, MaxOutput)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// Set implements datamodel.Backend.
func (f File) Set(_ string, v string) error {
	fh, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(v + "\n")
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// Command serves a parameter or a subtree from a command. One run of the
// get command answers for the whole subtree and is cached briefly, so that
// a GetParameterValues over many parameters forks once.
type Command struct {
	Mount string // the mounted path (a parameter, or a subtree ending in ".")
	Spec  CommandSpec

	mu     sync.Mutex
	at     time.Time
	values map[string]string
	runs   int
}

// Runs is how many times the get command ran (tests, diagnostics).
func (c *Command) Runs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs
}

func run(ctx context.Context, timeout time.Duration, argv []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out, errb limitedBuffer
	out.max, errb.max = MaxOutput, 4096
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("%s: no answer within %s", argv[0], timeout)
	}
	if out.over {
		return nil, fmt.Errorf("%s: more than %d bytes of output", argv[0], MaxOutput)
	}
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg != "" {
			return nil, fmt.Errorf("%s: %v: %s", argv[0], err, msg)
		}
		return nil, fmt.Errorf("%s: %v", argv[0], err)
	}
	return out.Bytes(), nil
}

type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > l.max {
		l.over = true
		return len(p), nil
	}
	return l.Buffer.Write(p)
}

// Get implements datamodel.Backend.
func (c *Command) Get(path string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.values == nil || time.Since(c.at) > c.Spec.Cache {
		out, err := run(context.Background(), c.Spec.Timeout, append(append([]string(nil), c.Spec.Get...), c.Mount))
		if err != nil {
			return "", err
		}
		c.runs++
		vals, err := parseOutput(out, c.Mount)
		if err != nil {
			return "", fmt.Errorf("%s: %w", c.Spec.Get[0], err)
		}
		c.values, c.at = vals, time.Now()
	}
	v, ok := c.values[path]
	if !ok {
		return "", datamodel.ErrNotServed
	}
	return v, nil
}

// parseOutput reads a get command's output: JSON lines for a subtree, or
// the value itself for a single parameter.
func parseOutput(out []byte, mount string) (map[string]string, error) {
	trimmed := bytes.TrimSpace(out)
	if !strings.HasSuffix(mount, ".") && !bytes.HasPrefix(trimmed, []byte("{")) {
		return map[string]string{mount: strings.TrimSuffix(string(out), "\n")}, nil
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 4096), MaxOutput)
	line := 0
	for sc.Scan() {
		line++
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		var v struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal(l, &v); err != nil {
			return nil, fmt.Errorf("output line %d: %v", line, err)
		}
		if !strings.HasPrefix(v.Name, strings.TrimSuffix(mount, ".")) {
			return nil, fmt.Errorf("output line %d: %q is outside %s", line, v.Name, mount)
		}
		vals[v.Name] = v.Value
	}
	return vals, sc.Err()
}

// Set implements datamodel.Backend.
func (c *Command) Set(path, value string) error {
	if len(c.Spec.Set) == 0 {
		return errors.New("the mapping gives no set command")
	}
	_, err := run(context.Background(), c.Spec.Timeout, append(append([]string(nil), c.Spec.Set...), path, value))
	c.mu.Lock()
	c.values = nil // read again after any write
	c.mu.Unlock()
	return err
}

// Control serves a subtree owned by a device daemon on the control
// socket: the daemon writes the values (the tree stores them), and a
// SetParameterValues from the ACS is delivered to the daemon's watch
// connection; with no daemon listening the write fails (9002) rather than
// pretend it was applied.
type Control struct {
	Deliver func(path, value string) error
}

// Get implements datamodel.Backend: the tree's stored value.
func (Control) Get(string) (string, error) { return "", datamodel.ErrNotServed }

// Set implements datamodel.Backend.
func (c Control) Set(path, value string) error {
	if c.Deliver == nil {
		return errors.New("no device daemon is watching")
	}
	return c.Deliver(path, value)
}

// Pushed implements datamodel.Pusher: the daemon's own writes are stored.
func (Control) Pushed(string, string) {}

// Mount mounts the entries of a mapping on a tree; deliver carries ACS
// writes to the control socket's watchers (nil: none).
func Mount(t *datamodel.Tree, entries []Entry, deliver func(path, value string) error) (map[string]*Command, error) {
	cmds := map[string]*Command{}
	for _, e := range entries {
		var b datamodel.Backend
		switch {
		case e.File != "":
			b = File{Path: e.File}
		case e.Command != nil:
			c := &Command{Mount: e.Path, Spec: *e.Command}
			cmds[e.Path] = c
			b = c
		case e.Control:
			b = Control{Deliver: deliver}
		}
		if err := t.Mount(e.Path, b); err != nil {
			return nil, &LineError{Line: e.Line, Err: err}
		}
	}
	return cmds, nil
}
