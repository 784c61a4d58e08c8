// Package diag runs the diagnostics an ACS asks for through the data model
// (TR-143 and the diagnostics objects of TR-106, TR-098 and TR-181): the
// ACS writes a test's parameters and DiagnosticsState "Requested", the test
// runs once the session is over, its results are written to the object and
// the CPE opens a session with "8 DIAGNOSTICS COMPLETE".
//
// The engine owns the tests' life cycle on one goroutine (Run's); tree
// hooks and the agent post messages to it. The probes themselves are a
// Prober: Real on a Linux device, Simulated in a fleet.
package diag

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/internal/serial"
)

// Tree is what the engine needs of the parameter tree (*datamodel.Tree).
type Tree interface {
	Schema() *datamodel.Schema
	Get(path string) (string, error)
	SetValues(changes []datamodel.Change, opt datamodel.SetOptions) error
	ReplaceTable(path string, rows []map[string]string) error
	OnCommit(fn func([]datamodel.Event))
	AddValidator(schemaPath string, v datamodel.Validator) error
	Bind(schemaPath string, g datamodel.Getter) error
}

// Config configures an Engine.
type Config struct {
	Tree   Tree
	Prober Prober
	// Complete is told that a test the ACS asked for has finished
	// (successfully or not, never when canceled): the agent queues
	// "8 DIAGNOSTICS COMPLETE" (TR-106 DiagnosticsState). It must not block.
	Complete func()
	// Interface maps an Interface parameter's value (a path such as
	// Device.IP.Interface.1) to the Linux interface and its address; ok
	// false: no such interface (the test fails). "" never reaches it.
	Interface func(ref string) (name string, addr net.IP, ok bool)
	// EchoServer runs UDPEchoConfig's UDP echo server (a real device);
	// false leaves it configured but not listening (a fleet).
	EchoServer bool
	Clock      clock.Clock
	Logger     *slog.Logger
}

// echoConfig is the UDP echo server's object (TR-143, Device:2).
const echoConfig = "Device.IP.Diagnostics.UDPEchoConfig."

type kind int

const (
	kindPing kind = iota
	kindTrace
	kindDownload
	kindUpload
	kindEcho
	kindSelect
	kindLookup
)

// objects are the diagnostics the engine runs, by the object's path in
// each model that has it.
var objects = map[string]kind{
	"Device.IP.Diagnostics.IPPing.":                     kindPing,
	"Device.IP.Diagnostics.TraceRoute.":                 kindTrace,
	"Device.IP.Diagnostics.DownloadDiagnostics.":        kindDownload,
	"Device.IP.Diagnostics.UploadDiagnostics.":          kindUpload,
	"Device.IP.Diagnostics.UDPEchoDiagnostics.":         kindEcho,
	"Device.IP.Diagnostics.ServerSelectionDiagnostics.": kindSelect,
	"Device.DNS.Diagnostics.NSLookupDiagnostics.":       kindLookup,
	"Device.LAN.IPPingDiagnostics.":                     kindPing,
	"Device.LAN.TraceRouteDiagnostics.":                 kindTrace,
	"InternetGatewayDevice.IPPingDiagnostics.":          kindPing,
	"InternetGatewayDevice.TraceRouteDiagnostics.":      kindTrace,
	"InternetGatewayDevice.DownloadDiagnostics.":        kindDownload,
	"InternetGatewayDevice.UploadDiagnostics.":          kindUpload,
	"InternetGatewayDevice.UDPEchoDiagnostics.":         kindEcho,
}

// Supported lists the diagnostics objects of a schema the engine runs.
func Supported(s *datamodel.Schema) []string {
	var out []string
	for path := range objects {
		if s.Object(path) != nil && s.Param(path+"DiagnosticsState") != nil {
			out = append(out, path)
		}
	}
	sort.Strings(out)
	return out
}

type object struct {
	path  string
	kind  kind
	state *datamodel.ParamDef
	enum  []string

	// Owned by the engine's queue.
	pending bool // requested by the ACS; starts when the session ends
	resume  bool // Requested when the agent started: runs at once
	byACS   bool
	cancel  context.CancelFunc
	gen     uint64
}

// Engine runs the diagnostics of one tree.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	objs map[string]*object // by object path; the map is never written after New

	echo *EchoServer // nil without UDPEchoConfig or Config.EchoServer

	sessionEnd time.Time // of the last session; owned by the queue

	// queue runs every function that reads or writes the objects, one at
	// a time; an idle engine holds no goroutine (a fleet has one engine
	// per CPE).
	queue serial.Queue
	wg    sync.WaitGroup // running tests
}

// New builds the engine and hooks it to the tree. Diagnostics objects of
// the model that the engine does not run refuse "Requested" with 9007, so
// that the ACS is told at once rather than waiting for a result that never
// comes.
func New(cfg Config) (*Engine, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Complete == nil {
		cfg.Complete = func() {}
	}
	e := &Engine{cfg: cfg, log: cfg.Logger.With("component", "diag"), objs: map[string]*object{}}
	s := cfg.Tree.Schema()
	for _, path := range Supported(s) {
		st := s.Param(path + "DiagnosticsState")
		o := &object{path: path, kind: objects[path], state: st, enum: st.Type.Enum}
		// Read now, before anyone writes: a request made after this is
		// the hooks', not a leftover of the last run.
		v, _ := cfg.Tree.Get(path + "DiagnosticsState")
		o.resume = v == "Requested"
		e.objs[path] = o
	}
	for _, p := range s.Params() {
		if !strings.HasSuffix(p.Name, "DiagnosticsState") || !p.Writable {
			continue
		}
		obj := strings.TrimSuffix(p.Path, p.Name)
		if e.objs[obj] != nil {
			continue
		}
		if err := cfg.Tree.AddValidator(p.Path, func(_, v string) error {
			if v == "Requested" {
				return errors.New("this diagnostic is not implemented by this agent")
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if cfg.EchoServer && s.Object(echoConfig) != nil {
		e.echo = &EchoServer{Logger: e.log}
		for _, name := range []string{"PacketsReceived", "PacketsResponded", "BytesReceived", "BytesResponded",
			"TimeFirstPacketReceived", "TimeLastPacketReceived"} {
			if p := s.Param(echoConfig + name); p != nil && p.Computed {
				if err := cfg.Tree.Bind(p.Path, func(string) (string, error) { return e.echo.Stat(name), nil }); err != nil {
					return nil, err
				}
			}
		}
	}
	cfg.Tree.OnCommit(e.onCommit)
	return e, nil
}

// EchoAddr is where the UDP echo server listens, nil when it does not.
func (e *Engine) EchoAddr() *net.UDPAddr {
	if e.echo == nil {
		return nil
	}
	return e.echo.LocalAddr()
}

// applyEcho (re)configures the UDP echo server from UDPEchoConfig.
func (e *Engine) applyEcho() {
	if e.echo == nil {
		return
	}
	get := func(n string) string { v, _ := e.cfg.Tree.Get(echoConfig + n); return v }
	cfg := EchoServerConfig{Enable: get("Enable") == "true", Port: atoi(get("UDPPort"), 0),
		Source: net.ParseIP(get("SourceIPAddress")), EchoPlus: get("EchoPlusEnabled") == "true"}
	if ref := get("Interface"); ref != "" && e.cfg.Interface != nil {
		if _, addr, ok := e.cfg.Interface(ref); ok && addr != nil {
			cfg.Addr = addr.String()
		}
	}
	if err := e.echo.Apply(cfg); err != nil {
		e.log.Error("UDP echo server cannot listen", "port", cfg.Port, "err", err)
	} else if cfg.Enable {
		e.log.Info("UDP echo server listening", "port", cfg.Port, "echo_plus", cfg.EchoPlus)
	}
}

// post queues f for the engine's queue; it never blocks.
func (e *Engine) post(f func()) { e.queue.Post(f) }

// SessionEnded starts the tests the ACS requested during the session
// (TR-106: "the CPE SHOULD wait until after completion of the
// communication session with the ACS before starting the diagnostic").
func (e *Engine) SessionEnded() {
	e.post(func() {
		e.sessionEnd = e.cfg.Clock.Now()
		for _, o := range e.sorted() {
			if o.pending {
				o.pending = false
				e.start(o)
			}
		}
	})
}

func (e *Engine) sorted() []*object {
	out := make([]*object, 0, len(e.objs))
	for _, o := range e.objs {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// Run runs the engine until ctx ends. A test that was requested or
// running when the agent last stopped runs again: its request was
// acknowledged, and the ACS waits for its "8 DIAGNOSTICS COMPLETE".
func (e *Engine) Run(ctx context.Context) error {
	e.Start()
	<-ctx.Done()
	e.Stop()
	return nil
}

// Start is Run without the waiting: the engine runs on the goroutines of
// the tests it starts until Stop.
func (e *Engine) Start() {
	e.post(func() {
		e.applyEcho()
		for _, o := range e.sorted() {
			if o.resume {
				o.resume = false
				o.byACS = true
				e.start(o)
			}
		}
	})
	e.queue.Open()
}

// Stop ends the running tests and the echo server; what is posted after
// it waits for the next Start.
func (e *Engine) Stop() {
	e.queue.Close()
	for _, o := range e.objs {
		if o.cancel != nil {
			o.cancel()
			o.cancel = nil // a result posted meanwhile is dropped
		}
	}
	e.wg.Wait()
	if e.echo != nil {
		e.echo.Close()
	}
}

// onCommit reads one committed operation (on the writer's goroutine; it
// only looks at the events) and posts what it means for the tests.
func (e *Engine) onCommit(evs []datamodel.Event) {
	type req struct {
		o     *object
		byACS bool
	}
	var requested []req
	var canceled, modified []*object
	reset, echo := false, false
	seen := map[*object]bool{}
	for _, ev := range evs {
		if ev.Kind == datamodel.Reset {
			reset = true
			continue
		}
		if ev.Kind == datamodel.ValueSet && strings.HasPrefix(ev.Path, echoConfig) && ev.Def != nil && ev.Def.Writable {
			echo = true
		}
		if ev.Kind != datamodel.ValueSet || ev.Def == nil {
			continue
		}
		o := e.objs[strings.TrimSuffix(ev.Path, ev.Def.Name)]
		if o == nil {
			continue
		}
		switch {
		case ev.Def == o.state && ev.Value == "Requested":
			requested = append(requested, req{o, ev.Origin == datamodel.OriginACS})
			seen[o] = true
		case ev.Def == o.state && ev.Value == "Canceled":
			canceled = append(canceled, o)
		case ev.Def != o.state && ev.Def.Writable:
			modified = append(modified, o)
		}
	}
	if !reset && !echo && len(requested) == 0 && len(canceled) == 0 && len(modified) == 0 {
		return
	}
	e.post(func() {
		if reset || echo {
			e.applyEcho()
		}
		if reset {
			for _, o := range e.objs {
				e.stop(o)
			}
			return
		}
		// TR-106 DiagnosticsState: "Modifying any of the writable
		// parameters in this object except for this one MUST result in
		// the value of this parameter being set to None" (and a running
		// test is terminated); setting Requested with them restarts it.
		for _, o := range modified {
			if !seen[o] {
				seen[o] = true
				e.stop(o)
				e.setNone(o)
			}
		}
		for _, o := range canceled {
			e.stop(o)
			e.setNone(o)
		}
		for _, r := range requested {
			e.stop(r.o)
			r.o.byACS = r.byACS
			if r.byACS {
				r.o.pending = true
			} else {
				e.start(r.o)
			}
		}
	})
}

func (e *Engine) stop(o *object) {
	o.pending = false
	if o.cancel != nil {
		o.cancel()
		o.cancel = nil
	}
	o.gen++
}

func (e *Engine) setNone(o *object) {
	if v, _ := e.cfg.Tree.Get(o.path + "DiagnosticsState"); v == "None" {
		return
	}
	e.write(o, []datamodel.Change{{Path: o.path + "DiagnosticsState", Value: "None"}})
}

func (e *Engine) write(o *object, ch []datamodel.Change) {
	if err := e.cfg.Tree.SetValues(ch, datamodel.SetOptions{Origin: datamodel.OriginDevice}); err != nil {
		e.log.Error("cannot write the diagnostic's results", "object", o.path, "err", err)
	}
}

// start runs the test with the object's current parameters.
func (e *Engine) start(o *object) {
	in := e.inputs(o)
	ctx, cancel := context.WithCancel(context.Background())
	o.gen++
	gen := o.gen
	o.cancel = cancel
	e.log.Info("diagnostic started", "object", o.path)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		res := e.run(ctx, o, in)
		e.post(func() {
			if o.gen != gen || o.cancel == nil {
				return // canceled or restarted meanwhile
			}
			o.cancel = nil
			cancel()
			e.finish(o, res)
		})
	}()
}

// result is what a test leaves: values of the object's parameters, rows
// of its tables, and the DiagnosticsState to end in.
type result struct {
	state  string
	values map[string]string
	tables map[string][]map[string]string
	err    error
}

func (e *Engine) finish(o *object, r result) {
	s := e.cfg.Tree.Schema()
	for name, rows := range r.tables {
		tab := o.path + name + ".{i}."
		def := s.Object(tab)
		if def == nil {
			continue
		}
		kept := make([]map[string]string, 0, len(rows))
		for _, row := range rows {
			k := map[string]string{}
			for n, v := range row {
				if s.Param(tab+n) != nil {
					k[n] = v
				}
			}
			kept = append(kept, k)
		}
		if err := e.cfg.Tree.ReplaceTable(o.path+name+".", kept); err != nil {
			e.log.Error("cannot write the diagnostic's results", "object", o.path, "err", err)
		}
	}
	names := make([]string, 0, len(r.values))
	for n := range r.values {
		if s.Param(o.path+n) != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	ch := make([]datamodel.Change, 0, len(names)+1)
	for _, n := range names {
		ch = append(ch, datamodel.Change{Path: o.path + n, Value: r.values[n]})
	}
	state := e.stateValue(o, r.state)
	ch = append(ch, datamodel.Change{Path: o.path + "DiagnosticsState", Value: state})
	e.write(o, ch)
	if r.err != nil {
		e.log.Info("diagnostic ended", "object", o.path, "state", state, "err", r.err)
	} else {
		e.log.Info("diagnostic ended", "object", o.path, "state", state)
	}
	if o.byACS {
		// A test that ends within moments of the session that asked for
		// it would start the next session at once, and GenieACS refuses a
		// session that comes while it still holds the last one's lock
		// ("CPE already in session", HTTP 400: a retry seconds later).
		// The event waits until a second has passed since that session.
		if wait := completeGap - e.cfg.Clock.Now().Sub(e.sessionEnd); wait > 0 {
			t := e.cfg.Clock.NewTimer(wait)
			go func() {
				<-t.C()
				e.cfg.Complete()
			}()
			return
		}
		e.cfg.Complete()
	}
}

// completeGap is how long after a session a test's completion may start
// the next one.
const completeGap = time.Second

// stateValue is the object's own name for an outcome: the error state
// itself when its enumeration has it, else its most general error.
func (e *Engine) stateValue(o *object, st string) string {
	if slices.Contains(o.enum, st) || len(o.enum) == 0 {
		return st
	}
	for _, alt := range []string{ErrOther, ErrInternal, "Error"} {
		if slices.Contains(o.enum, alt) {
			return alt
		}
	}
	return "Complete"
}

// inputs reads the object's parameters (the test uses the values it had
// when it started).
func (e *Engine) inputs(o *object) map[string]string {
	s := e.cfg.Tree.Schema()
	in := map[string]string{}
	for _, p := range s.Params() {
		if strings.HasPrefix(p.Path, o.path) && !strings.Contains(p.Path[len(o.path):], ".") {
			if v, err := e.cfg.Tree.Get(p.Path); err == nil {
				in[p.Name] = v
			}
		}
	}
	return in
}

// target is the common part of the inputs.
func (e *Engine) target(in map[string]string, host string) (Target, error) {
	t := Target{Host: host, Version: in["ProtocolVersion"], DSCP: atoi(in["DSCP"], 0)}
	if t.Version == "" {
		t.Version = "Any"
	}
	if ref := in["Interface"]; ref != "" {
		if e.cfg.Interface == nil {
			return t, fail(ErrOther, errors.New("Interface "+ref+": no such interface"))
		}
		name, addr, ok := e.cfg.Interface(ref)
		if !ok {
			return t, fail(ErrOther, errors.New("Interface "+ref+": no such interface"))
		}
		t.Interface, t.Source = name, addr
	}
	return t, nil
}

func atoi(s string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return def
	}
	return n
}

func ms(d time.Duration) string {
	return strconv.FormatInt(int64((d+500*time.Microsecond)/time.Millisecond), 10)
}
func us(d time.Duration) string {
	return strconv.FormatInt(int64((d+500*time.Nanosecond)/time.Microsecond), 10)
}

// stamp renders a TR-143 time: UTC to the microsecond.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

func stats(rtts []time.Duration) (min, avg, max time.Duration) {
	if len(rtts) == 0 {
		return 0, 0, 0
	}
	min, max = rtts[0], rtts[0]
	var sum time.Duration
	for _, r := range rtts {
		sum += r
		if r < min {
			min = r
		}
		if r > max {
			max = r
		}
	}
	return min, sum / time.Duration(len(rtts)), max
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}
