// Package notify turns parameter changes into CWMP notifications (TR-069
// A.3.2.4): a change of a parameter whose Notification attribute is 1
// (passive) is reported in the next Inform, whatever starts it; a change of
// one with 2 (active) also starts a session with "4 VALUE CHANGE". Changes
// the ACS made itself are not reported back.
//
// Active Notification of a parameter whose definition names a
// NotificationLimit parameter (TR-111: ManageableDeviceNumberOfEntries and
// UDPConnectionRequestAddress) is throttled: when it changes sooner than
// the limit after its last Active Notification, the notification is
// delayed until the limit has passed, never dropped, and reports the value
// current when the Inform is sent (TR-111 1.2.1, 2.2.1.3).
//
// Stored parameters are watched through the tree's change events; computed
// ones (a getter) are polled. Pending notifications persist in the state
// directory and survive failed sessions and restarts.
package notify

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
)

// Tree is what the engine needs of the parameter tree.
type Tree interface {
	Watch(fn func(datamodel.Event)) (cancel func())
	Notification(path string) (int, error)
	Get(path string) (string, error)
	Watched() []datamodel.Attributes
	Handle(path string) (datamodel.Handle, error)
	ReadAll(hs []datamodel.Handle, fn func(i int, v string, ok bool))
	// Mounted reports a parameter served by a backend: its value changes
	// outside the tree, so it is polled like a computed one.
	Mounted(path string) bool
}

// Config configures an Engine.
type Config struct {
	Tree Tree
	// OnActive is called when an Active Notification is due: the agent
	// queues "4 VALUE CHANGE" and starts a session (cwmp.Agent.Trigger).
	OnActive func()
	// StateDir holds notify.json; "" keeps pending notifications in memory.
	StateDir string
	// PollInterval is how often computed parameters with a Notification
	// attribute are read; 0 means 10 s.
	PollInterval time.Duration
	// Debounce gathers changes close together into one session; 0 means 5 ms.
	Debounce time.Duration
	Clock    clock.Clock
	Logger   *slog.Logger
}

type pending struct {
	Active bool   `json:"active"`
	Gen    uint64 `json:"-"`
	// Due is when a throttled Active Notification may go out; zero means now.
	Due time.Time `json:"due,omitempty"`
}

type watch struct {
	name string
	h    datamodel.Handle
	last string
	ok   bool
}

// Engine tracks pending notifications. It implements cwmp.Notifier.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	cancel func()

	mu       sync.Mutex // guards the following
	pend     map[string]*pending
	last     map[string]time.Time // last Active Notification per parameter
	gen      uint64
	tokens   map[uint64]map[string]uint64
	nextTok  uint64
	polled   []watch
	rebuild  bool
	wakeAt   time.Time // earliest throttled due time
	debounce bool      // an OnActive call is scheduled
	kick     chan struct{}
	acsSet   map[string]string // values the ACS set on polled parameters

	// loop is the goroutine that polls, throttles and debounces. It exists
	// only while there is something to time (computed parameters to poll,
	// a throttled change, a debounce): an engine with nothing to watch,
	// as in most virtual CPEs of a fleet, holds no goroutine until poked.
	loop struct {
		mu      sync.Mutex // guards ctx and running; taken after e.mu
		ctx     context.Context
		running bool
		wg      sync.WaitGroup
		// Owned by the loop's goroutine.
		nextPoll, debounceAt time.Time
		polling              bool // the last poll read something
	}
}

type stateFile struct {
	Pending map[string]*pending  `json:"pending"`
	Last    map[string]time.Time `json:"last"`
}

// New creates an engine and subscribes it to the tree's changes. Run must
// be called for polling, throttling and debouncing to happen.
func New(cfg Config) *Engine {
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Second
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 5 * time.Millisecond
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: cfg.Logger.With("component", "notify"), pend: map[string]*pending{},
		last: map[string]time.Time{}, tokens: map[uint64]map[string]uint64{}, rebuild: true, kick: make(chan struct{}, 1)}
	e.load()
	e.cancel = cfg.Tree.Watch(e.onEvent)
	return e
}

// Close stops watching the tree.
func (e *Engine) Close() { e.cancel() }

func (e *Engine) statePath() string {
	if e.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(e.cfg.StateDir, "notify.json")
}

func (e *Engine) load() {
	p := e.statePath()
	if p == "" {
		return
	}
	var st stateFile
	err := atomicfile.ReadJSON(p, &st)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		e.log.Error("pending notifications lost: the state file is corrupt", "err", err)
		return
	}
	for k, v := range st.Pending {
		if v != nil {
			e.gen++
			v.Gen = e.gen
			e.pend[k] = v
		}
	}
	for k, v := range st.Last {
		e.last[k] = v
	}
}

// saveLocked persists the pending set; e.mu is held.
func (e *Engine) saveLocked() {
	p := e.statePath()
	if p == "" {
		return
	}
	if err := atomicfile.WriteJSON(p, stateFile{Pending: e.pend, Last: e.last}); err != nil {
		e.log.Error("cannot save pending notifications", "err", err)
	}
}

func (e *Engine) onEvent(ev datamodel.Event) {
	switch ev.Kind {
	case datamodel.Reset:
		e.mu.Lock()
		e.pend = map[string]*pending{}
		e.last = map[string]time.Time{}
		e.rebuild = true
		e.saveLocked()
		e.mu.Unlock()
		e.poke()
		return
	case datamodel.AttributesSet:
		defer e.poke() // the poll list is rebuilt at once
		e.mu.Lock()
		e.rebuild = true
		if n, err := e.cfg.Tree.Notification(ev.Path); err == nil && n == 0 {
			if _, ok := e.pend[ev.Path]; ok {
				delete(e.pend, ev.Path)
				e.saveLocked()
			}
		}
		e.mu.Unlock()
		return
	case datamodel.ObjectAdded, datamodel.ObjectDeleted:
		e.mu.Lock()
		e.rebuild = true
		e.mu.Unlock()
		e.poke()
		return
	case datamodel.ValueSet:
	default:
		return
	}
	if ev.Origin == datamodel.OriginACS {
		// A polled (mounted) parameter will be seen to change at the next
		// poll: that change is the ACS's own and is not reported back.
		e.mu.Lock()
		if e.acsSet == nil {
			e.acsSet = map[string]string{}
		}
		e.acsSet[ev.Path] = ev.Value
		e.mu.Unlock()
		return
	}
	if ev.Value == ev.Old {
		return
	}
	n, err := e.cfg.Tree.Notification(ev.Path)
	if err != nil || n == 0 {
		return
	}
	e.changed(ev.Path, ev.Def, n == 2)
}

// changed records a change of a watched parameter.
func (e *Engine) changed(name string, def *datamodel.ParamDef, active bool) {
	now := e.cfg.Clock.Now()
	e.mu.Lock()
	e.gen++
	p, existed := e.pend[name]
	if !existed {
		p = &pending{}
		e.pend[name] = p
	}
	p.Gen = e.gen
	if active {
		p.Active = true
		p.Due = e.dueLocked(name, def, now)
	}
	if !existed {
		e.saveLocked()
	}
	fire := active && !p.Due.After(now)
	if p.Active && p.Due.After(now) && (e.wakeAt.IsZero() || p.Due.Before(e.wakeAt)) {
		e.wakeAt = p.Due
	}
	e.mu.Unlock()
	if fire {
		e.signal()
	} else {
		e.poke()
	}
}

// dueLocked applies the NotificationLimit of a parameter: the earliest time
// its Active Notification may be sent.
func (e *Engine) dueLocked(name string, def *datamodel.ParamDef, now time.Time) time.Time {
	if def == nil || def.Limit == "" {
		return time.Time{}
	}
	v, err := e.cfg.Tree.Get(def.Limit)
	if err != nil {
		return time.Time{}
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}
	}
	last, ok := e.last[name]
	if !ok {
		return time.Time{}
	}
	due := last.Add(time.Duration(sec) * time.Second)
	if due.After(now) {
		return due
	}
	return time.Time{}
}

// signal asks for OnActive after the debounce.
func (e *Engine) signal() {
	e.mu.Lock()
	e.debounce = true
	e.mu.Unlock()
	e.poke()
}

func (e *Engine) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
	e.ensureLoop()
}

// ensureLoop starts the loop's goroutine when it is not running. The kick
// is sent before: a loop deciding to end sees it and goes on instead.
func (e *Engine) ensureLoop() {
	e.loop.mu.Lock()
	defer e.loop.mu.Unlock()
	if e.loop.running || e.loop.ctx == nil || e.loop.ctx.Err() != nil {
		return
	}
	e.loop.running = true
	e.loop.wg.Add(1)
	ctx := e.loop.ctx
	go func() {
		defer e.loop.wg.Done()
		e.runLoop(ctx)
	}()
}

// idleExit ends the loop's goroutine unless a kick came meanwhile, and
// leaves its schedule to the next one.
func (e *Engine) idleExit(nextPoll, debounceAt time.Time) bool {
	e.loop.mu.Lock()
	defer e.loop.mu.Unlock()
	select {
	case <-e.kick:
		return false
	default:
	}
	e.loop.running = false
	e.loop.nextPoll, e.loop.debounceAt = nextPoll, debounceAt
	return true
}

// Collect returns the parameters the next Inform must carry: every passive
// change, and every active one whose limit has passed.
func (e *Engine) Collect() ([]string, uint64) {
	now := e.cfg.Clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	gens := map[string]uint64{}
	for name, p := range e.pend {
		if p.Active && p.Due.After(now) {
			continue // throttled: its own session comes at Due
		}
		names = append(names, name)
		gens[name] = p.Gen
	}
	sort.Strings(names)
	e.nextTok++
	tok := e.nextTok
	e.tokens[tok] = gens
	for t := range e.tokens {
		if t+8 < tok {
			delete(e.tokens, t) // sessions that failed
		}
	}
	return names, tok
}

// Delivered forgets what an accepted Inform reported, unless it changed
// again since, and starts the NotificationLimit clock of active ones.
func (e *Engine) Delivered(tok uint64) {
	now := e.cfg.Clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	gens, ok := e.tokens[tok]
	if !ok {
		return
	}
	delete(e.tokens, tok)
	for name, g := range gens {
		p := e.pend[name]
		if p == nil {
			continue
		}
		if p.Active {
			e.last[name] = now
		}
		if p.Gen == g {
			delete(e.pend, name)
			continue
		}
		// It changed again while the Inform was on its way: that change is
		// reported next, after the limit counted from this notification.
		if p.Active {
			if h, err := e.cfg.Tree.Handle(name); err == nil {
				p.Due = e.dueLocked(name, h.Def(), now)
				if !p.Due.IsZero() && (e.wakeAt.IsZero() || p.Due.Before(e.wakeAt)) {
					e.wakeAt = p.Due
				}
			}
		}
	}
	e.saveLocked()
	e.poke()
}

// Pending returns the names with an undelivered change (for tests and the
// control socket).
func (e *Engine) Pending() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.pend))
	for n := range e.pend {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Run polls computed parameters, releases throttled notifications when
// their limit passes, and calls OnActive (debounced) until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	e.Start(ctx)
	<-ctx.Done()
	e.Stop()
	return ctx.Err()
}

// Start is Run without the waiting: the engine works on a goroutine of
// its own while it has something to time, until ctx ends.
func (e *Engine) Start(ctx context.Context) {
	e.loop.mu.Lock()
	e.loop.ctx = ctx
	e.loop.nextPoll = e.cfg.Clock.Now() // the first poll records the starting values
	e.loop.mu.Unlock()
	e.ensureLoop()
}

// Stop waits for the loop to end after the context given to Start ended.
func (e *Engine) Stop() {
	e.loop.mu.Lock()
	e.loop.ctx = nil
	e.loop.mu.Unlock()
	e.loop.wg.Wait()
}

func (e *Engine) runLoop(ctx context.Context) {
	e.loop.mu.Lock()
	nextPoll, debounceAt := e.loop.nextPoll, e.loop.debounceAt
	e.loop.mu.Unlock()
	for {
		now := e.cfg.Clock.Now()
		e.mu.Lock()
		rebuild := e.rebuild
		e.mu.Unlock()
		if rebuild || !now.Before(nextPoll) {
			// With nothing computed to watch there is nothing to poll: the
			// engine sleeps until the attributes change (a fleet of
			// thousands of CPEs would otherwise wake constantly).
			e.loop.polling = e.poll()
			if e.loop.polling {
				nextPoll = now.Add(e.cfg.PollInterval)
			} else {
				nextPoll = now.Add(24 * time.Hour)
			}
		}
		e.mu.Lock()
		if !e.wakeAt.IsZero() && !now.Before(e.wakeAt) {
			e.wakeAt = time.Time{}
			for _, p := range e.pend {
				if !p.Active || p.Due.IsZero() {
					continue
				}
				if !p.Due.After(now) {
					p.Due = time.Time{}
					e.debounce = true
				} else if e.wakeAt.IsZero() || p.Due.Before(e.wakeAt) {
					e.wakeAt = p.Due
				}
			}
		}
		if e.debounce && debounceAt.IsZero() {
			debounceAt = now.Add(e.cfg.Debounce)
		}
		fire := !debounceAt.IsZero() && !now.Before(debounceAt)
		if fire {
			e.debounce = false
			debounceAt = time.Time{}
		}
		next := nextPoll
		if !e.wakeAt.IsZero() && e.wakeAt.Before(next) {
			next = e.wakeAt
		}
		if !debounceAt.IsZero() && debounceAt.Before(next) {
			next = debounceAt
		}
		idle := !e.loop.polling && e.wakeAt.IsZero() && debounceAt.IsZero() && !e.debounce && !e.rebuild
		e.mu.Unlock()
		if fire && e.cfg.OnActive != nil {
			e.cfg.OnActive()
			continue
		}
		if idle {
			if e.idleExit(nextPoll, debounceAt) {
				return
			}
			continue // a kick came: look again
		}
		// The wait is measured from the clock as it is now, not from the
		// start of the loop.
		t := e.cfg.Clock.NewTimer(next.Sub(e.cfg.Clock.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			e.loop.mu.Lock()
			e.loop.running = false
			e.loop.mu.Unlock()
			return
		case <-e.kick:
		case <-t.C():
		}
		t.Stop()
	}
}

// poll reads the computed parameters that have a Notification attribute and
// treats a new value like a device change.
// poll reports whether anything is polled.
func (e *Engine) poll() bool {
	e.mu.Lock()
	if e.rebuild {
		e.rebuild = false
		old := map[string]watch{}
		for _, w := range e.polled {
			old[w.name] = w
		}
		e.polled = e.polled[:0]
		for _, a := range e.cfg.Tree.Watched() {
			h, err := e.cfg.Tree.Handle(a.Name)
			if err != nil || !(h.Def().Computed || e.cfg.Tree.Mounted(a.Name)) || h.Def().CountOf != nil {
				continue
			}
			w := watch{name: a.Name, h: h}
			if o, ok := old[a.Name]; ok {
				w.last, w.ok = o.last, o.ok
			}
			e.polled = append(e.polled, w)
		}
	}
	ws := e.polled
	e.mu.Unlock()
	if len(ws) == 0 {
		return false
	}
	hs := make([]datamodel.Handle, len(ws))
	for i := range ws {
		hs[i] = ws[i].h
	}
	type change struct {
		name, value string
		def         *datamodel.ParamDef
	}
	var changes []change
	e.cfg.Tree.ReadAll(hs, func(i int, v string, ok bool) {
		w := &ws[i]
		if ok && w.ok && v != w.last {
			changes = append(changes, change{w.name, v, w.h.Def()})
		}
		w.last, w.ok = v, ok
	})
	e.mu.Lock()
	kept := changes[:0]
	for _, c := range changes {
		if v, ok := e.acsSet[c.name]; ok && v == c.value {
			delete(e.acsSet, c.name)
			continue
		}
		kept = append(kept, c)
	}
	changes = kept
	e.mu.Unlock()
	for _, c := range changes {
		n, err := e.cfg.Tree.Notification(c.name)
		if err == nil && n != 0 {
			e.changed(c.name, c.def, n == 2)
		}
	}
	return true
}
