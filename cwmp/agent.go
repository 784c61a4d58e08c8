package cwmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/internal/redact"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// DataModel is what the agent needs of the parameter tree; *datamodel.Tree
// implements it.
type DataModel interface {
	Schema() *datamodel.Schema
	Get(path string) (string, error)
	Set(path, value string) error
	GetValues(names []string) ([]datamodel.Value, error)
	GetNames(path string, nextLevel bool) ([]datamodel.Info, error)
	SetValues(changes []datamodel.Change, opt datamodel.SetOptions) error
	GetAttributes(names []string) ([]datamodel.Attributes, error)
	SetAttributes(changes []datamodel.AttrChange, origin datamodel.Origin) error
	AddObject(path string, opt datamodel.SetOptions) (uint32, error)
	AddInstance(path string, values map[string]string, opt datamodel.SetOptions) (uint32, error)
	DeleteObject(path string, opt datamodel.SetOptions) error
	// ForcedValues reads the forcedInform parameters (the Inform's
	// ParameterList) in one pass.
	ForcedValues() ([]datamodel.Value, error)
	FactoryReset() error
	ResetNotification() error
	OnChange(schemaPath string, fn func(datamodel.Event)) error
}

// Notifier supplies the changed parameters of Passive and Active
// Notification (notify.Engine implements it). nil means none.
type Notifier interface {
	// Collect returns the names the Inform being built must report, and a
	// token for Delivered.
	Collect() (names []string, token uint64)
	// Delivered is called once the ACS accepted the Inform built with the
	// token. A token of a failed session is never delivered.
	Delivered(token uint64)
}

// URLRefresher keeps ManagementServer.ConnectionRequestURL current before
// each session (*ConnReqServer implements it).
type URLRefresher interface {
	Refresh(acsURL string)
}

// Hooks are commands that apply what the ACS asks for on a real device.
// Each empty hook means the virtual behaviour: the agent restarts its own
// process state (Reboot), returns the tree to factory values (FactoryReset)
// and keeps downloaded files in the state directory.
type Hooks struct {
	Reboot       string        // run with the CommandKey
	FactoryReset string        // run with no argument
	Firmware     string        // run with the file path and the CommandKey
	ConfigFile   string        // run with the file path and the CommandKey
	Timeout      time.Duration // per hook; 0 means 5 minutes
}

// TLSConfig configures HTTPS to the ACS and to file servers.
type TLSConfig struct {
	CAFile             string // PEM roots added to the system pool
	ClientCert         string // PEM client certificate, with ClientKey
	ClientKey          string
	InsecureSkipVerify bool // never in production: disables hostname checks
}

// Virtual holds what only virtual CPEs need: a fleet runs many agents in
// one process, and tests drive one. A real device leaves it zero.
type Virtual struct {
	// ClientTLS, when set, is used instead of building TLS settings from
	// Config.TLS (a fleet shares one).
	ClientTLS *tls.Config
	// Transport overrides the HTTP transport of file transfers (Download,
	// Upload); nil is one of NewHTTPTransport. Sessions always use their
	// own connection (sessionConn).
	Transport http.RoundTripper
	// LocalAddr, when set, is the source address of the session's
	// connection (a fleet gives each virtual CPE its own).
	LocalAddr net.IP
	// PeriodicPhase shifts the periodic schedule when PeriodicInformTime is
	// the Unknown Time, so that a fleet does not inform in lockstep.
	PeriodicPhase time.Duration
	// Rand returns a uniform number in [0,1) for the retry back-off; nil
	// uses math/rand/v2.
	Rand func() float64
}

// Config configures an Agent. Zero values give the defaults noted.
type Config struct {
	Tree     DataModel
	Notifier Notifier
	// ConnReq keeps ManagementServer.ConnectionRequestURL current; nil
	// leaves it to someone else.
	ConnReq URLRefresher
	// StateDir holds agent.json (events, transfers, bootstrap marker) and
	// downloaded files; "" keeps everything in memory.
	StateDir string
	// Version is the highest CWMP version spoken; 0 means 1.4 (announced
	// with SupportedCWMPVersions in the cwmp-1-2 namespace).
	Version soap.Version
	TLS     TLSConfig
	// ResponseTimeout is how long to wait for each ACS response; 0 means 30 s.
	ResponseTimeout time.Duration
	// SessionTimeout bounds a whole session; 0 means 10 minutes.
	SessionTimeout time.Duration
	// RetryMinimumWait (CWMPRetryMinimumWaitInterval) 0 means 5 s;
	// RetryIntervalMultiplier (CWMPRetryIntervalMultiplier, 1/1000) 0 means 2000.
	RetryMinimumWait        time.Duration
	RetryIntervalMultiplier int
	Hooks                   Hooks
	// MaxTransferSize caps a download; 0 means 64 MiB.
	MaxTransferSize int64
	// OnSession is told the outcome of every session (a fleet's
	// statistics, the device's memory trimming). It runs on the agent's
	// goroutine and must not block.
	OnSession func(SessionResult)
	// OnRPC is told of every ACS request answered: its method (soap's
	// name for it; "" for a request that could not be decoded) and the
	// CWMP fault code sent, 0 for none. Metrics; it runs on the agent's
	// goroutine and must not block.
	OnRPC func(method string, fault int)
	// UploadSource returns the content of an Upload FileType ("1 Vendor
	// Configuration File", "2 Vendor Log File"); nil supports none.
	UploadSource func(fileType string) ([]byte, error)
	// OnReboot and OnFactoryReset run after the virtual reboot or reset.
	OnReboot       func()
	OnFactoryReset func()
	// AppliedAfterSession names the parameters whose new value takes
	// effect only when the session ends: a SetParameterValues that sets
	// one answers Status 1 ("committed, not yet applied", TR-069 A.3.2.1).
	AppliedAfterSession func(path string) bool
	// AfterSession runs on the agent's goroutine when a session has ended,
	// whatever its outcome, to apply what AppliedAfterSession deferred. It
	// must not block.
	AfterSession func()
	// SoftwareModules carries out ChangeDUState; nil: the method is not
	// offered (9000, and GetRPCMethods leaves it out).
	SoftwareModules SoftwareModules
	Clock           clock.Clock
	// UserAgent is sent on every HTTP request; "" is DefaultUserAgent.
	UserAgent string
	// Virtual is for fleets and tests.
	Virtual Virtual
	Logger  *slog.Logger
}

// SessionResult describes one finished session.
type SessionResult struct {
	Start    time.Time
	Duration time.Duration
	Events   []string
	Err      error
}

// Agent is one CWMP CPE: it owns the sessions with the ACS.
//
// One goroutine, Run's, owns the agent's state: the event queue, the
// transfers, the schedule, the retry back-off. Sessions and the RPC
// handlers run on it and use the state directly. Other goroutines post
// messages to it (Trigger, ConnectionRequest, tree hooks, the transfer
// runner's outcomes), which it handles between sessions; nothing of the
// state is behind a lock.
type Agent struct {
	cfg      Config
	dm       DataModel
	root     string
	log      *slog.Logger
	clock    clock.Clock
	rand     func() float64
	tls      *tls.Config // for sessions and file servers
	fileOnce sync.Once
	fileHTTP *http.Client // built on first transfer
	tasks    *tasks

	// Published for other goroutines (DeviceInfo.UpTime, statistics).
	boot                atomic.Int64 // unix nanoseconds of the last (re)start
	rebooted            atomic.Bool  // a virtual reboot happened in this process
	sessions, failures  atomic.Uint64
	retryCountPublished atomic.Int64
	pendingPublished    atomic.Int64
	transferWake        chan struct{}

	// Owned by Run's goroutine.
	// transfers is the transfer runner: a goroutine that exists only while
	// a transfer waits or runs (kickTransfers starts it).
	transfers struct {
		ctx     context.Context
		wg      sync.WaitGroup
		running bool
	}
	st           agentState
	retryCount   int
	retryAt      time.Time
	nextPeriodic time.Time
	// nextHeartbeat is the next 14 HEARTBEAT instant (HeartbeatPolicy),
	// heartbeat that one is due.
	nextHeartbeat time.Time
	heartbeat     bool
	heartbeatOnly bool // the session running is a heartbeat
	reschedule    bool
	bootTime      time.Time
	curInflight   map[uint64]bool // sequence numbers of the Inform in flight, during a session
	sessionDU     map[uint64]bool // DU state change reports queued before this session's Inform
	sessionOwn    map[uint64]bool // the device's own requests queued before it
	// noCompression holds the ACS URLs that refused a compressed request.
	noCompression map[string]bool
	urlChanged    bool
	urlSet        bool
	askRPC        bool
	rebootReq     *rebootRequest
}

type rebootRequest struct {
	factory bool
	cause   string
}

// agentState is what agent.json holds.
type agentState struct {
	Version      int         `json:"version"`
	Bootstrapped bool        `json:"bootstrapped"`
	BootstrapURL string      `json:"bootstrap_url"`
	Events       []Event     `json:"events"`
	NextSeq      uint64      `json:"next_seq"`
	Scheduled    []Scheduled `json:"scheduled,omitempty"`
	Transfers    []*Transfer `json:"transfers,omitempty"`
	NextTransfer uint64      `json:"next_transfer"`
	RPCMethods   []string    `json:"acs_rpc_methods,omitempty"`
	// DUCompletions are DU state change reports not yet answered.
	DUCompletions []*DUCompletion `json:"du_completions,omitempty"`
	NextDU        uint64          `json:"next_du,omitempty"`
	// OwnRequests are the device's RequestDownload and
	// AutonomousTransferComplete not yet answered.
	OwnRequests []*OwnRequest `json:"own_requests,omitempty"`
	NextOwn     uint64        `json:"next_own,omitempty"`
	// FactoryReset is a FactoryReset the ACS was told would happen and
	// that has not yet: kept so that a restart before it still does it.
	FactoryReset bool `json:"factory_reset,omitempty"`
}

// Scheduled is a pending ScheduleInform.
type Scheduled struct {
	At         time.Time `json:"at"`
	CommandKey string    `json:"key"`
}

// StateFileName is the agent's file in its state directory.
const StateFileName = "agent.json"

// New builds an agent. It reads agent.json from StateDir: a corrupt file is
// logged, kept aside, and the agent starts as if from the factory.
func New(cfg Config) (*Agent, error) {
	if cfg.Tree == nil {
		return nil, errors.New("cwmp: Config.Tree is nil")
	}
	if cfg.Version == 0 {
		cfg.Version = soap.V14
	}
	if cfg.ResponseTimeout == 0 {
		cfg.ResponseTimeout = 30 * time.Second
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 10 * time.Minute
	}
	if cfg.RetryMinimumWait == 0 {
		cfg.RetryMinimumWait = 5 * time.Second
	}
	if cfg.RetryIntervalMultiplier == 0 {
		cfg.RetryIntervalMultiplier = 2000
	}
	if cfg.MaxTransferSize == 0 {
		cfg.MaxTransferSize = 64 << 20
	}
	if cfg.Hooks.Timeout == 0 {
		cfg.Hooks.Timeout = 5 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Virtual.Rand == nil {
		cfg.Virtual.Rand = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	a := &Agent{
		cfg:          cfg,
		dm:           cfg.Tree,
		root:         cfg.Tree.Schema().RootName(),
		log:          cfg.Logger.With("component", "cwmp"),
		clock:        cfg.Clock,
		rand:         cfg.Virtual.Rand,
		tasks:        newTasks(),
		transferWake: make(chan struct{}, 1),
	}
	a.tls = cfg.Virtual.ClientTLS
	if a.tls == nil {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		a.tls = tc
	}
	if err := a.loadState(); err != nil {
		a.log.Error("agent state is corrupt; starting with an empty event queue", "err", err)
	}
	// Downloads cut off by a kill leave their temporary file behind (in
	// the agent's own directory only: without one, downloads go to a
	// directory other agents share).
	if cfg.StateDir != "" {
		atomicfile.RemoveMatching(a.downloadDir(), ".download-*", 0)
	}
	a.setBootTime(a.clock.Now())
	ms := a.root + ".ManagementServer."
	for _, p := range []string{"PeriodicInformEnable", "PeriodicInformInterval", "PeriodicInformTime",
		"HeartbeatPolicy.Enable", "HeartbeatPolicy.ReportingInterval", "HeartbeatPolicy.InitiationTime"} {
		if cfg.Tree.Schema().Param(ms+p) == nil {
			continue // HeartbeatPolicy is Device:2's (TR-069 Annex O)
		}
		cfg.Tree.OnChange(ms+p, func(datamodel.Event) { a.tasks.post(func() { a.reschedule = true }) })
	}
	cfg.Tree.OnChange(ms+"URL", a.onURLChange)
	return a, nil
}

func (a *Agent) param(name string) string {
	v, _ := a.dm.Get(a.root + "." + name)
	return v
}

func (a *Agent) statePath() string {
	if a.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(a.cfg.StateDir, StateFileName)
}

func (a *Agent) loadState() error {
	a.st = agentState{Version: 1, NextSeq: 1, NextTransfer: 1}
	p := a.statePath()
	if p == "" {
		return nil
	}
	var st agentState
	err := atomicfile.ReadJSON(p, &st)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.NextSeq == 0 {
		st.NextSeq = 1
	}
	if st.NextTransfer == 0 {
		st.NextTransfer = 1
	}
	a.st = st
	return nil
}

// save persists agent.json. Its error is logged and returned: an RPC whose
// promise must survive a power loss (Reboot, ScheduleInform, a transfer,
// FactoryReset) faults with 9002 instead of answering success when it is
// not on disk.
func (a *Agent) save() error {
	// Every change of the queue that matters is saved: the count read by
	// PendingEvents is that of the last save.
	a.pendingPublished.Store(int64(len(a.st.Events)))
	p := a.statePath()
	if p == "" {
		return nil
	}
	if err := atomicfile.WriteJSON(p, &a.st); err != nil {
		a.log.Error("cannot save agent state", "err", err)
		return err
	}
	return nil
}

// addEvent queues an event unless an equal one is already queued and not
// part of the Inform in flight (inflight holds those sequence numbers).
func (a *Agent) addEvent(code EventCode, key string, inflight map[uint64]bool) {
	if !code.multiple() {
		key = ""
	}
	for _, e := range a.st.Events {
		if e.Code == code && e.CommandKey == key && !inflight[e.Seq] {
			return
		}
	}
	a.st.Events = append(a.st.Events, Event{Code: code, CommandKey: key, Seq: a.st.NextSeq})
	a.st.NextSeq++
}

var noInflight = map[uint64]bool{}

// Trigger queues an event and wakes the agent: a session starts as soon as
// no other is running (an event posted during a session is delivered in a
// session after it). A new event also cuts short a retry back-off. It is
// safe to call from any goroutine and never blocks.
func (a *Agent) Trigger(code EventCode, commandKey string) {
	a.tasks.post(func() {
		a.addEvent(code, commandKey, noInflight)
		a.retryAt = time.Time{}
		a.save()
	})
}

// ConnectionRequest queues "6 CONNECTION REQUEST"; requests that arrive
// during a session become one session after it.
func (a *Agent) ConnectionRequest() { a.Trigger(EventConnectionRequest, "") }

// RequestRPCMethods makes the next session call GetRPCMethods on the ACS.
// It starts no session itself: no event code stands for it.
func (a *Agent) RequestRPCMethods() { a.tasks.post(func() { a.askRPC = true }) }

// ACSMethods returns the ACS's answer to the last GetRPCMethods (it waits
// for a session in progress to end).
func (a *Agent) ACSMethods() []string {
	var out []string
	a.tasks.do(context.Background(), func() { out = append([]string(nil), a.st.RPCMethods...) })
	return out
}

func (a *Agent) setBootTime(t time.Time) {
	a.bootTime = t
	a.boot.Store(t.UnixNano())
}

// BootTime is when the agent last (re)started; DeviceInfo.UpTime counts from it.
func (a *Agent) BootTime() time.Time { return time.Unix(0, a.boot.Load()) }

// VirtuallyRebooted reports whether this process has performed a virtual
// reboot (a Reboot, FactoryReset or firmware Download whose hook did not
// restart the system): from then on the system's own uptime no longer
// counts from the boot the ACS was told of.
func (a *Agent) VirtuallyRebooted() bool { return a.rebooted.Load() }

// Pending returns a copy of the undelivered events (it waits for a session
// in progress to end).
func (a *Agent) Pending() []Event {
	var out []Event
	a.tasks.do(context.Background(), func() { out = append([]Event(nil), a.st.Events...) })
	return out
}

// PendingEvents is the number of events queued for the next Inform, as
// last saved: any goroutine may read it.
func (a *Agent) PendingEvents() int { return int(a.pendingPublished.Load()) }

// Stats returns the number of sessions run and of those that failed, and
// the current retry count.
func (a *Agent) Stats() (sessions, failures uint64, retryCount int) {
	return a.sessions.Load(), a.failures.Load(), int(a.retryCountPublished.Load())
}

func (a *Agent) onURLChange(ev datamodel.Event) {
	acs := ev.Origin == datamodel.OriginACS
	changed := ev.Value != ev.Old
	a.tasks.post(func() {
		if acs {
			// TR-111 1.2.2: the GatewayInfo Active Notification default is
			// applied again whenever the ACS URL is set or modified.
			a.urlSet = true
		}
		if changed {
			a.urlChanged = true
		}
	})
}

// start prepares the first session of this run: 1 BOOT, 0 BOOTSTRAP when the
// ACS URL was never informed, and the event queue cleaned by the restart
// rules.
func (a *Agent) start() {
	a.setBootTime(a.clock.Now())
	a.restartEvents()
	if a.st.FactoryReset {
		// Answered before the restart, not yet performed.
		a.rebootReq = &rebootRequest{factory: true, cause: "FactoryReset RPC (before the restart)"}
	}
	// Transfers cut off when the process stopped failed.
	for _, t := range a.st.Transfers {
		if t.State == TransferInProgress {
			t.finish(a.clock.Now(), faultStructFor(t.Version, faultDownload, "interrupted by a restart"))
			a.addTransferEvents(t)
		}
	}
	a.nextPeriodic = time.Time{}
	a.reschedule = true
	a.save()
}

func (a *Agent) restartEvents() {
	kept := a.st.Events[:0]
	for _, e := range a.st.Events {
		if !ruleOf(e.Code).dropOnRestart {
			kept = append(kept, e)
		}
	}
	a.st.Events = kept
	a.addEvent(EventBoot, "", noInflight)
	a.setRetry(0, time.Time{})
}

func (a *Agent) setRetry(n int, at time.Time) {
	a.retryCount, a.retryAt = n, at
	a.retryCountPublished.Store(int64(n))
}

// ensureBootstrap adds 0 BOOTSTRAP when the current ACS URL has not yet
// received one (first contact, after a factory reset, after a change of
// ManagementServer.URL).
func (a *Agent) ensureBootstrap(url string) {
	if a.st.Bootstrapped && a.st.BootstrapURL == url {
		return
	}
	for _, e := range a.st.Events {
		if e.Code == EventBootstrap {
			return
		}
	}
	a.st.Events = append([]Event{{Code: EventBootstrap, Seq: a.st.NextSeq}}, a.st.Events...)
	a.st.NextSeq++
}

// Run runs sessions until ctx is done. It returns ctx.Err() at the end.
// The calling goroutine owns the agent's state until then.
func (a *Agent) Run(ctx context.Context) error {
	a.tasks.start()
	defer a.tasks.stop()
	// What others posted before Run (a Connection Request, a Trigger)
	// happened in this run: the loop applies it after the restart rules.
	a.start()
	tctx, cancel := context.WithCancel(ctx)
	a.transfers.ctx = tctx
	defer func() { cancel(); a.transfers.wg.Wait() }()
	a.kickTransfers()
	for {
		if stopping(ctx) {
			// Past its deadline the context is about to be marked done:
			// wait for it rather than start sessions that cannot run.
			<-ctx.Done()
			return ctx.Err()
		}
		a.tasks.run()
		a.handleReboot(ctx)
		a.handleURLChange()
		// The time is read after a reboot reset the boot time, the phase of
		// the periodic schedule: read before it, the new boot time was in
		// the schedule's future and became the next periodic instant.
		now := a.clock.Now()
		a.schedule(now)
		if a.heartbeat && a.rebootReq == nil {
			// A heartbeat session carries 14 HEARTBEAT alone (TR-069
			// Annex O); the events queued meanwhile go in the next one.
			a.heartbeat = false
			onSessionWorker(func() { a.heartbeatSession(ctx) })
			continue
		}
		if a.ready(now) {
			onSessionWorker(func() { a.session(ctx) })
			continue
		}
		wait := a.nextWake(now)
		t := a.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-a.tasks.wake:
		case <-t.C():
		}
		t.Stop()
	}
}

// onSessionWorker runs f on a session worker and waits for it: Run's
// goroutine stays the owner in effect (it does nothing meanwhile, and the
// channels order every access). A session grows its goroutine's stack to
// tens of kilobytes (XML, HTTP, TLS); on Run's goroutine that stack would
// stay with the idle agent until several collections have halved it back,
// and a fleet of idle CPEs held 4 KB each of mostly empty stacks. Workers
// keep their grown stacks between sessions instead (a new goroutine per
// session spent 5% of a fleet's CPU growing its stack again), and end
// after a minute without work.
func onSessionWorker(f func()) { sessionWorkers.run(f) }

var sessionWorkers = &workers{linger: time.Minute}

// workers is a pool of goroutines that run functions for callers who
// wait for them.
type workers struct {
	linger time.Duration
	mu     sync.Mutex
	free   []chan job
	live   atomic.Int32 // workers that exist
}

type job struct {
	f    func()
	done chan struct{}
}

func (w *workers) run(f func()) {
	j := job{f: f, done: make(chan struct{})}
	w.mu.Lock()
	var ch chan job
	if n := len(w.free); n > 0 {
		ch = w.free[n-1]
		w.free = w.free[:n-1]
	}
	w.mu.Unlock()
	if ch == nil {
		go w.work(make(chan job), j)
	} else {
		ch <- j
	}
	<-j.done
}

// work runs jobs; it is back in the pool before its caller is told that
// the job is done, so that a caller's next job finds it.
func (w *workers) work(ch chan job, j job) {
	w.live.Add(1)
	defer w.live.Add(-1)
	t := time.NewTimer(w.linger)
	defer t.Stop()
	for {
		j.f()
		w.mu.Lock()
		w.free = append(w.free, ch)
		w.mu.Unlock()
		close(j.done)
		t.Reset(w.linger)
		select {
		case j = <-ch:
			continue
		case <-t.C:
		}
		w.mu.Lock()
		i := slices.Index(w.free, ch)
		if i >= 0 {
			w.free = slices.Delete(w.free, i, i+1)
		}
		w.mu.Unlock()
		if i >= 0 {
			return
		}
		j = <-ch // taken from the pool as the time ran out: its job comes
	}
}

// ready: there is something to deliver and no back-off in force.
func (a *Agent) ready(now time.Time) bool {
	if a.rebootReq != nil || len(a.st.Events) == 0 {
		return false
	}
	return a.retryAt.IsZero() || !now.Before(a.retryAt)
}

func (a *Agent) nextWake(now time.Time) time.Duration {
	next := now.Add(24 * time.Hour)
	consider := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	consider(a.nextPeriodic)
	consider(a.nextHeartbeat)
	if len(a.st.Events) > 0 {
		consider(a.retryAt)
	}
	for _, s := range a.st.Scheduled {
		consider(s.At)
	}
	d := next.Sub(now)
	if d < 0 {
		d = 0
	}
	return d
}

// schedule turns due periodic and scheduled instants into events.
func (a *Agent) schedule(now time.Time) {
	changed := false
	if a.reschedule {
		a.reschedule = false
		a.nextPeriodic = a.periodicAfter(now)
		a.nextHeartbeat = a.heartbeatAfter(now)
	}
	if !a.nextHeartbeat.IsZero() && !now.Before(a.nextHeartbeat) {
		a.heartbeat = true
		a.nextHeartbeat = a.heartbeatAfter(now)
	}
	if !a.nextPeriodic.IsZero() && !now.Before(a.nextPeriodic) {
		a.addEvent(EventPeriodic, "", noInflight)
		a.nextPeriodic = a.periodicAfter(now)
		changed = true
	}
	kept := a.st.Scheduled[:0]
	for _, s := range a.st.Scheduled {
		if now.Before(s.At) {
			kept = append(kept, s)
			continue
		}
		a.addEvent(EventScheduled, "", noInflight)
		a.addEvent(EventMScheduleInform, s.CommandKey, noInflight)
		changed = true
	}
	a.st.Scheduled = kept
	if changed {
		a.save()
	}
}

// periodicAfter is the first periodic instant after now: Informs happen
// at PeriodicInformTime + n*PeriodicInformInterval; with the Unknown Time the
// phase is the boot time (shifted by Virtual.PeriodicPhase).
func (a *Agent) periodicAfter(now time.Time) time.Time {
	if a.param("ManagementServer.PeriodicInformEnable") != "true" {
		return time.Time{}
	}
	return a.instantAfter(now, "ManagementServer.PeriodicInformInterval", "ManagementServer.PeriodicInformTime")
}

// heartbeatAfter is the next heartbeat instant: HeartbeatPolicy's
// InitiationTime + n*ReportingInterval, the same rule as the periodic
// Informs' (the Unknown Time: a phase of the CPE's choosing).
func (a *Agent) heartbeatAfter(now time.Time) time.Time {
	if a.param("ManagementServer.HeartbeatPolicy.Enable") != "true" {
		return time.Time{}
	}
	return a.instantAfter(now, "ManagementServer.HeartbeatPolicy.ReportingInterval", "ManagementServer.HeartbeatPolicy.InitiationTime")
}

func (a *Agent) instantAfter(now time.Time, intervalParam, timeParam string) time.Time {
	sec, err := strconv.ParseUint(a.param(intervalParam), 10, 32)
	if err != nil || sec == 0 {
		return time.Time{}
	}
	interval := time.Duration(sec) * time.Second
	ref := a.bootTime.Add(a.cfg.Virtual.PeriodicPhase)
	if t, err := soap.ParseTime(a.param(timeParam)); err == nil && !t.IsZero() {
		ref = t
	}
	if ref.After(now) {
		// A reference in the future: the next instant is the first one after now.
		n := ref.Sub(now) / interval
		return ref.Add(-n * interval)
	}
	n := now.Sub(ref)/interval + 1
	return ref.Add(n * interval)
}

// retryWait is the TR-069 3.2.1.1 back-off for the n-th consecutive retry: a
// uniformly random wait in [m*k^(n-1), m*k^n] with k the multiplier/1000,
// the exponent capped at 10.
func retryWait(n int, m time.Duration, multiplier int, r float64) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 10 {
		n = 10
	}
	k := float64(multiplier) / 1000
	lo := float64(m) * math.Pow(k, float64(n-1))
	hi := float64(m) * math.Pow(k, float64(n))
	return time.Duration(lo + r*(hi-lo))
}

// inflight is the event sequence numbers of the Inform being delivered in
// the session now, or none between sessions.
func (a *Agent) inflight() map[uint64]bool {
	if a.curInflight != nil {
		return a.curInflight
	}
	return noInflight
}

func (a *Agent) handleURLChange() {
	set, changed := a.urlSet, a.urlChanged
	a.urlSet, a.urlChanged = false, false
	if changed {
		// The old ACS's undelivered events, transfers and schedules mean
		// nothing to the new one; 0 BOOTSTRAP goes to the new URL.
		a.st.Events = nil
		a.st.Scheduled = nil
		a.st.Transfers = nil
		a.st.DUCompletions = nil
		a.st.OwnRequests = nil
		a.st.RPCMethods = nil // another ACS's methods are to be asked
		a.setRetry(0, time.Time{})
		url := a.param("ManagementServer.URL")
		if url != "" {
			a.ensureBootstrap(url)
		}
		a.save()
		a.log.Info("ACS URL changed; next session bootstraps", "url", redact.URL(url))
	}
	if set || changed {
		if err := a.dm.ResetNotification(); err != nil {
			a.log.Error("cannot re-apply default notification attributes", "err", err)
		}
	}
}

// handleReboot performs a Reboot or FactoryReset asked for during the last
// session, or by a firmware download.
func (a *Agent) handleReboot(ctx context.Context) {
	req := a.rebootReq
	a.rebootReq = nil
	if req == nil {
		return
	}
	if req.factory {
		a.log.Info("factory reset")
		if a.cfg.Hooks.FactoryReset != "" {
			if err := a.runHook(ctx, a.cfg.Hooks.FactoryReset); err != nil {
				a.log.Error("factory reset hook failed", "err", err)
			}
		}
		if err := a.dm.FactoryReset(); err != nil {
			a.log.Error("factory reset of the tree failed", "err", err)
		}
		a.st = agentState{Version: 1, NextSeq: 1, NextTransfer: 1}
		if a.cfg.OnFactoryReset != nil {
			a.cfg.OnFactoryReset()
		}
	} else {
		a.log.Info("reboot", "cause", req.cause)
		if a.cfg.Hooks.Reboot != "" {
			key := ""
			for _, e := range a.st.Events {
				if e.Code == EventMReboot {
					key = e.CommandKey
				}
			}
			a.save()
			if err := a.runHook(ctx, a.cfg.Hooks.Reboot, key); err != nil {
				a.log.Error("reboot hook failed", "err", err)
			}
		}
	}
	// The virtual reboot: this process restarts its own state.
	a.setBootTime(a.clock.Now())
	a.rebooted.Store(true)
	a.restartEvents()
	a.reschedule = true
	a.save()
	if !req.factory && a.cfg.OnReboot != nil {
		a.cfg.OnReboot()
	}
}

// sortTransfers keeps transfers in creation order.
func (a *Agent) sortTransfers() {
	sort.Slice(a.st.Transfers, func(i, j int) bool { return a.st.Transfers[i].ID < a.st.Transfers[j].ID })
}

// errorf builds an error with the package prefix.
func errorf(format string, args ...any) error { return fmt.Errorf("cwmp: "+format, args...) }
