// Package control is the agent's local control socket: a Unix socket over
// which the device's own scripts (DHCP hooks, dnsmasq, init scripts) and
// the cwmp-agent get/set/dump commands read and write parameters. Writes
// are the device's own (datamodel.OriginDevice): they may set parameters
// that are read-only to the ACS, and they reach the notify engine like any
// change the ACS did not make.
//
// The protocol is one JSON object per line each way. Only root and the
// socket's owner may connect (the socket is mode 0600 and the peer's
// credentials are checked).
package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
)

// MaxLine caps one request line.
const MaxLine = 1 << 20

// Request is one command.
type Request struct {
	Op     string            `json:"op"` // get, set, dump, names, add, delete, inform, call, ping, watch
	Path   string            `json:"path,omitempty"`
	Paths  []string          `json:"paths,omitempty"`
	Value  string            `json:"value,omitempty"`
	Values map[string]string `json:"values,omitempty"` // set several at once, all or nothing
	Event  string            `json:"event,omitempty"`  // inform: an event code to queue
	Name   string            `json:"name,omitempty"`   // call: the action
	Args   map[string]string `json:"args,omitempty"`
	// NextLevel: names lists only the next level below Path.
	NextLevel bool `json:"next_level,omitempty"`
}

// Name is one entry of a names response: a parameter, or an object (its
// name ends in "."), and whether the ACS may write it (TR-069
// GetParameterNames).
type Name struct {
	Name     string `json:"name"`
	Writable bool   `json:"writable"`
}

// Value is one parameter in a response.
type Value struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Response answers a Request.
type Response struct {
	OK       bool              `json:"ok"`
	Error    string            `json:"error,omitempty"`
	Values   []Value           `json:"values,omitempty"`
	Names    []Name            `json:"names,omitempty"`
	Instance uint32            `json:"instance,omitempty"`
	Result   map[string]string `json:"result,omitempty"`
}

// Tree is what the control socket needs of the parameter tree.
type Tree interface {
	GetValues(names []string) ([]datamodel.Value, error)
	SetValues(changes []datamodel.Change, opt datamodel.SetOptions) error
	AddObject(path string, opt datamodel.SetOptions) (uint32, error)
	DeleteObject(path string, opt datamodel.SetOptions) error
	GetNames(path string, nextLevel bool) ([]datamodel.Info, error)
}

// Action is a named operation a component registers (e.g. "dhcp.lease").
type Action func(args map[string]string) (map[string]string, error)

// Server answers control requests.
type Server struct {
	Tree Tree
	// Inform queues an event and wakes the agent ("" means the agent's
	// choice); nil refuses the inform op.
	Inform func(event string) error
	// Logger; nil discards.
	Logger *slog.Logger

	mu       sync.RWMutex // guards actions and watchers
	actions  map[string]Action
	watchers map[*watcher]struct{}
	ln       *netguard.Listener
	path     string
}

// MaxConns is how many control connections may be open at once (watchers
// included); more are closed at once. Only root and the owner may connect,
// but a runaway script must not take the agent's descriptors.
const MaxConns = 64

// Register adds a named action for the call op.
func (s *Server) Register(name string, a Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.actions == nil {
		s.actions = map[string]Action{}
	}
	s.actions[name] = a
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// ErrBadRequest wraps decoding problems.
var ErrBadRequest = errors.New("control: bad request")

// Decode reads one request line strictly: unknown fields and trailing data
// are errors.
func Decode(line []byte) (Request, error) {
	var r Request
	if len(line) > MaxLine {
		return r, fmt.Errorf("%w: line longer than %d bytes", ErrBadRequest, MaxLine)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: trailing data", ErrBadRequest)
	}
	return r, nil
}

func fail(err error) Response { return Response{Error: err.Error()} }

func toValues(vs []datamodel.Value) []Value {
	out := make([]Value, len(vs))
	for i, v := range vs {
		out[i] = Value{Name: v.Name, Type: v.Type.XSD(), Value: v.Value}
	}
	return out
}

// Handle answers one request. It never panics on any input.
func (s *Server) Handle(r Request) Response {
	dev := datamodel.SetOptions{Origin: datamodel.OriginDevice}
	switch r.Op {
	case "ping":
		return Response{OK: true}
	case "get":
		names := r.Paths
		if r.Path != "" || len(names) == 0 {
			names = append([]string{r.Path}, names...)
		}
		vs, err := s.Tree.GetValues(names)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Values: toValues(vs)}
	case "dump":
		vs, err := s.Tree.GetValues([]string{r.Path})
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Values: toValues(vs)}
	case "names":
		infos, err := s.Tree.GetNames(r.Path, r.NextLevel)
		if err != nil {
			return fail(err)
		}
		out := make([]Name, len(infos))
		for i, in := range infos {
			out[i] = Name{Name: in.Name, Writable: in.Writable}
		}
		return Response{OK: true, Names: out}
	case "set":
		var ch []datamodel.Change
		if r.Path != "" {
			ch = append(ch, datamodel.Change{Path: r.Path, Value: r.Value})
		}
		keys := make([]string, 0, len(r.Values))
		for k := range r.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ch = append(ch, datamodel.Change{Path: k, Value: r.Values[k]})
		}
		if len(ch) == 0 {
			return fail(errors.New("set: no path given"))
		}
		if err := s.Tree.SetValues(ch, dev); err != nil {
			return fail(err)
		}
		return Response{OK: true}
	case "add":
		n, err := s.Tree.AddObject(r.Path, dev)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Instance: n}
	case "delete":
		if err := s.Tree.DeleteObject(r.Path, dev); err != nil {
			return fail(err)
		}
		return Response{OK: true}
	case "inform":
		if s.Inform == nil {
			return fail(errors.New("inform: not available"))
		}
		if err := s.Inform(r.Event); err != nil {
			return fail(err)
		}
		return Response{OK: true}
	case "call":
		s.mu.RLock()
		a := s.actions[r.Name]
		s.mu.RUnlock()
		if a == nil {
			return fail(fmt.Errorf("call: no action %q", r.Name))
		}
		res, err := a(r.Args)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Result: res}
	}
	return fail(fmt.Errorf("unknown op %q", r.Op))
}

// Listen creates the socket at path, replacing a stale one, mode 0600.
func (s *Server) Listen(path string) error {
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return fmt.Errorf("control.socket %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("control.socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("control.socket %s: another agent is listening", path)
		}
		os.Remove(path)
	}
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("control.socket %s: %w", path, err)
	}
	os.Chmod(path, 0o600)
	s.ln, s.path = netguard.Limit(ln, netguard.Limits{Max: MaxConns}), path
	return nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}

// Serve accepts connections until ctx is done, then removes the socket.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("control: Serve before Listen")
	}
	go func() { <-ctx.Done(); s.ln.Close() }()
	var wg sync.WaitGroup
	defer func() { wg.Wait(); os.Remove(s.path) }()
	failures := 0
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if netguard.Temporary(err) {
				// Out of descriptors (EMFILE) and the like: wait and go on,
				// as net/http does; the agent must not stop for it.
				failures++
				d := netguard.Backoff(failures)
				s.logger().Warn("control socket: accept failed; retrying", "err", err, "retry_in", d)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(d):
				}
				continue
			}
			return err
		}
		failures = 0
		c, ok := nc.(interface{ Unwrap() net.Conn }).Unwrap().(*net.UnixConn)
		if !ok {
			nc.Close()
			continue
		}
		if !peerAllowed(c) {
			s.logger().Warn("control socket: connection from a user that is neither root nor the owner refused")
			nc.Close()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); defer nc.Close(); s.serveConn(ctx, c) }()
	}
}

// peerAllowed checks SO_PEERCRED: root or the agent's own user.
func peerAllowed(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var cerr error
	raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cerr != nil || cred == nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Geteuid()
}

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	go func() { <-ctx.Done(); c.SetDeadline(time.Now()) }()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), MaxLine+1)
	enc := json.NewEncoder(c)
	c.SetDeadline(time.Now().Add(time.Minute)) // a client that says nothing is dropped
	for sc.Scan() {
		c.SetDeadline(time.Now().Add(time.Minute))
		req, err := Decode(sc.Bytes())
		if err == nil && req.Op == "watch" {
			s.watch(c, enc, req.Path, sc)
			return
		}
		var resp Response
		if err != nil {
			resp = fail(err)
		} else {
			resp = s.Handle(req)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// Push is what a watching daemon receives: a value the ACS set on a
// parameter of a subtree mounted on the control socket.
type Push struct {
	Event string `json:"event"` // "set"
	Path  string `json:"path"`
	Value string `json:"value"`
}

type watcher struct {
	prefix string
	mu     sync.Mutex
	c      *net.UnixConn
	enc    *json.Encoder
}

// watch turns the connection into a watch: {"op":"watch","path":PREFIX}
// is answered {"ok":true}, then every ACS write under PREFIX arrives as a
// Push line, until the daemon closes the connection.
func (s *Server) watch(c *net.UnixConn, enc *json.Encoder, prefix string, sc *bufio.Scanner) {
	w := &watcher{prefix: prefix, c: c, enc: enc}
	c.SetDeadline(time.Time{})
	if err := enc.Encode(Response{OK: true}); err != nil {
		return
	}
	s.mu.Lock()
	if s.watchers == nil {
		s.watchers = map[*watcher]struct{}{}
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()
	for sc.Scan() { // the daemon may send nothing more; EOF ends the watch
	}
}

// Deliver hands an ACS write to the daemons watching its path; it fails
// when none is, so that the ACS is not told a value was applied that no
// one received.
func (s *Server) Deliver(path, value string) error {
	s.mu.RLock()
	var ws []*watcher
	for w := range s.watchers {
		if strings.HasPrefix(path, w.prefix) {
			ws = append(ws, w)
		}
	}
	s.mu.RUnlock()
	sent := 0
	for _, w := range ws {
		w.mu.Lock()
		w.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		err := w.enc.Encode(Push{Event: "set", Path: path, Value: value})
		w.mu.Unlock()
		if err == nil {
			sent++
		}
	}
	if sent == 0 {
		return fmt.Errorf("no device daemon is watching %s on the control socket", path)
	}
	return nil
}

// Do sends one request to the socket at path and returns the response.
func Do(path string, r Request) (Response, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return Response{}, fmt.Errorf("control: %w (is the agent running? see control.socket or --socket)", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b, err := json.Marshal(r)
	if err != nil {
		return Response{}, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return Response{}, fmt.Errorf("control: %w", err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	if !sc.Scan() {
		if sc.Err() != nil {
			return Response{}, fmt.Errorf("control: %w", sc.Err())
		}
		return Response{}, errors.New("control: the agent closed the connection")
	}
	var resp Response
	if err := json.Unmarshal(sc.Bytes(), &resp); err != nil {
		return Response{}, fmt.Errorf("control: bad response: %w", err)
	}
	if !resp.OK {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
