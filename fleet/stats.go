package fleet

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
)

// histogram counts durations in logarithmic buckets 2% wide from 100 µs
// to about 15 minutes: percentiles within 2% at a fixed, small cost.
type histogram struct {
	counts [800]uint64
	n      uint64
	max    time.Duration
}

const (
	histBase   = 100 * time.Microsecond
	histFactor = 1.02
)

func bucketOf(d time.Duration) int {
	if d <= histBase {
		return 0
	}
	i := int(math.Log(float64(d)/float64(histBase))/math.Log(histFactor)) + 1
	if i >= 800 {
		i = 799
	}
	return i
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			up := time.Duration(float64(histBase) * math.Pow(histFactor, float64(i)))
			return min(up, h.max)
		}
	}
	return h.max
}

// percentiles are the report's latency figures (ms).
func (h *histogram) percentiles() map[string]float64 {
	return map[string]float64{"p50": ms(h.quantile(0.5)), "p90": ms(h.quantile(0.9)), "p99": ms(h.quantile(0.99)), "max": ms(h.max)}
}

// Stats are the fleet's session statistics.
type Stats struct {
	mu       sync.Mutex
	begun    time.Time
	all      histogram
	window   histogram // since the last Snapshot
	sessions uint64
	errors   uint64
	winStart time.Time
	winSess  uint64
	winErrs  map[string]uint64 // failed sessions in the window, by kind
	events   map[string]uint64

	// The steady state starts once every CPE is up after the ramp-up.
	steadyAt time.Time
	steady   histogram
	stSess   uint64
	stErrors uint64

	// errKinds counts failed sessions by cause ("http 503", "timeout"...).
	errKinds map[string]uint64
	// busy counts the ACS's 503 and 429 answers, busyEarly the sessions
	// that started before their Retry-After had passed (none should).
	busy, retryAfterMax uint64
	busyEarly           atomic.Uint64

	// running holds what the CPEs held while they ran, read just before
	// they stop (a report made after their goroutines and buffers are
	// gone would say less than a running fleet holds).
	running struct {
		rss, heap  uint64
		goroutines int
		// The process's CPU time and the steady sessions at the end.
		user, sys float64
		sessions  uint64
	}
	// steadyUser and steadySys are the CPU time when the steady state began.
	steadyUser, steadySys float64

	started     atomic.Int64
	udpAccepted atomic.Int64
	udpDropped  atomic.Int64
}

func newStats() *Stats {
	return &Stats{events: map[string]uint64{}, errKinds: map[string]uint64{}, winErrs: map[string]uint64{}}
}

func (s *Stats) begin(t time.Time) {
	s.mu.Lock()
	s.begun, s.winStart = t, t
	s.mu.Unlock()
}

func (s *Stats) record(r cwmp.SessionResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions++
	s.winSess++
	steady := !s.steadyAt.IsZero()
	if steady {
		s.stSess++
	}
	if r.Err != nil {
		s.errors++
		if steady {
			s.stErrors++
		}
		kind := cwmp.ErrorKind(r.Err)
		s.errKinds[kind]++
		s.winErrs[kind]++
		var he *cwmp.HTTPError
		if errors.As(r.Err, &he) && (he.Status == 503 || he.Status == 429) {
			s.busy++
			s.retryAfterMax = max(s.retryAfterMax, uint64(he.RetryAfter/time.Second))
		}
		return
	}
	s.all.add(r.Duration)
	s.window.add(r.Duration)
	if steady {
		s.steady.add(r.Duration)
	}
	for _, e := range r.Events {
		s.events[e]++
	}
}

// markSteady starts the steady-state figures.
// memory is the process's resident memory, heap in use and goroutines.
func memory() (rss, heap uint64, goroutines int) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return RSS(), m.HeapInuse, runtime.NumGoroutine()
}

// markRunning records the memory and CPU time of the running fleet.
func (s *Stats) markRunning() {
	rss, heap, g := memory()
	user, sys := cpuTime()
	s.mu.Lock()
	s.running.rss, s.running.heap, s.running.goroutines = rss, heap, g
	s.running.user, s.running.sys, s.running.sessions = user, sys, s.stSess
	s.mu.Unlock()
}

func (s *Stats) markSteady(t time.Time) {
	user, sys := cpuTime()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.steadyAt.IsZero() {
		s.steadyAt = t
		s.steadyUser, s.steadySys = user, sys
	}
}

// cpuTime is the process's user and system CPU time in seconds.
func cpuTime() (user, sys float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return tv(ru.Utime), tv(ru.Stime)
}

// Snapshot is what the summary line shows: the window since the previous
// snapshot.
type Snapshot struct {
	Started       int64
	Sessions      uint64
	Errors        uint64
	Rate          float64 // sessions per second in the window
	P50, P90, P99 time.Duration
	UDPAccepted   int64
	Busy          uint64 // 503 and 429 answers so far
	// Window is the length of the window, WindowSessions the sessions
	// that ended in it and WindowErrors its failed ones by kind.
	Window         time.Duration
	WindowSessions uint64
	WindowErrors   map[string]uint64
}

// Window returns the figures since the previous call.
func (s *Stats) Window(now time.Time) Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Started: s.started.Load(), Sessions: s.sessions, Errors: s.errors, UDPAccepted: s.udpAccepted.Load(), Busy: s.busy,
		P50: s.window.quantile(0.5), P90: s.window.quantile(0.9), P99: s.window.quantile(0.99)}
	snap.Window, snap.WindowSessions = now.Sub(s.winStart), s.winSess
	if el := snap.Window.Seconds(); el > 0 {
		snap.Rate = float64(s.winSess) / el
	}
	if len(s.winErrs) > 0 {
		snap.WindowErrors = s.winErrs
		s.winErrs = map[string]uint64{}
	}
	s.window = histogram{}
	s.winStart, s.winSess = now, 0
	return snap
}

// Report is the final JSON report of a run.
type Report struct {
	// Started is when the run began; Shard says which part of a sharded
	// fleet this report covers (absent: the whole), Shards how many
	// reports a merged one was made of.
	Started        time.Time          `json:"started"`
	Shard          *ShardInfo         `json:"shard,omitempty"`
	Shards         int                `json:"shards,omitempty"`
	Count          int                `json:"count"`
	Up             int                `json:"up"`
	Seconds        float64            `json:"seconds"`
	Sessions       uint64             `json:"sessions"`
	Errors         uint64             `json:"errors"`
	SessionsPerSec float64            `json:"sessions_per_second"`
	LatencyMS      map[string]float64 `json:"latency_ms"`
	Events         map[string]uint64  `json:"events"`
	UDPAccepted    int64              `json:"udp_connection_requests_accepted"`
	UDPDropped     int64              `json:"udp_connection_requests_dropped"`
	// ErrorKinds counts failed sessions by cause.
	ErrorKinds map[string]uint64 `json:"error_kinds,omitempty"`
	// ACSBusy is the ACS's 503/429 answers and how they were honoured.
	ACSBusy       BusyReport `json:"acs_busy"`
	RSSBytes      uint64     `json:"rss_bytes"`
	RSSPerCPE     uint64     `json:"rss_per_cpe_bytes"`
	HeapBytes     uint64     `json:"go_heap_bytes"`
	Goroutines    int        `json:"goroutines"`
	CPUUserSec    float64    `json:"cpu_user_seconds"`
	CPUSysSec     float64    `json:"cpu_system_seconds"`
	CPUPerSession float64    `json:"cpu_microseconds_per_session"`
	// Steady covers the time after the ramp-up, once every CPE was up.
	Steady *SteadyReport `json:"steady,omitempty"`
	// LatencyHistogram holds every successful session's duration: the
	// percentiles of merged reports are computed from it.
	LatencyHistogram *Histogram `json:"latency_histogram,omitempty"`
	// Series is the run over time (the HTML report's plots).
	Series []Sample `json:"series,omitempty"`
}

// ShardInfo places a fleet in a larger one.
type ShardInfo struct {
	Index int `json:"index"`
	Count int `json:"count"`
	// First is the index of its first CPE (the serial pattern's number).
	First int `json:"first"`
}

// BusyReport counts the ACS's "come back later" answers (503 or 429).
type BusyReport struct {
	Answers uint64 `json:"answers"`
	// RetryAfterMaxSec is the longest Retry-After given.
	RetryAfterMaxSec uint64 `json:"retry_after_max_seconds"`
	// RetriedEarly counts sessions started before their Retry-After had
	// passed: 0 when the CPEs honour it.
	RetriedEarly uint64 `json:"retried_early"`
}

// SteadyReport is the steady state of a run.
type SteadyReport struct {
	Seconds        float64            `json:"seconds"`
	Sessions       uint64             `json:"sessions"`
	Errors         uint64             `json:"errors"`
	SessionsPerSec float64            `json:"sessions_per_second"`
	LatencyMS      map[string]float64 `json:"latency_ms"`
	// The fleet's CPU time per session in the steady state, user and
	// system (kernel: connect, close, loopback writes) apart.
	CPUPerSession     float64    `json:"cpu_microseconds_per_session,omitempty"`
	CPUUserPerSession float64    `json:"cpu_user_microseconds_per_session,omitempty"`
	CPUSysPerSession  float64    `json:"cpu_system_microseconds_per_session,omitempty"`
	LatencyHistogram  *Histogram `json:"latency_histogram,omitempty"`
}

// Report builds the final report.
func (f *Fleet) Report(now time.Time) Report {
	s := f.Stats
	s.mu.Lock()
	r := Report{Started: s.begun.UTC(), Count: len(f.devs), Up: f.Up(), Seconds: now.Sub(s.begun).Seconds(), Sessions: s.sessions, Errors: s.errors,
		LatencyMS: s.all.percentiles(), LatencyHistogram: s.all.export(), Events: addCounts(map[string]uint64{}, s.events),
		ErrorKinds: addCounts(nil, s.errKinds), UDPAccepted: s.udpAccepted.Load(), UDPDropped: s.udpDropped.Load()}
	r.ACSBusy = BusyReport{Answers: s.busy, RetryAfterMaxSec: s.retryAfterMax, RetriedEarly: s.busyEarly.Load()}
	if !s.steadyAt.IsZero() {
		st := &SteadyReport{Seconds: now.Sub(s.steadyAt).Seconds(), Sessions: s.stSess, Errors: s.stErrors,
			LatencyMS: s.steady.percentiles(), LatencyHistogram: s.steady.export()}
		if st.Seconds > 0 {
			st.SessionsPerSec = float64(st.Sessions) / st.Seconds
		}
		if n := s.running.sessions; n > 0 && s.running.user > 0 {
			st.CPUUserPerSession = (s.running.user - s.steadyUser) * 1e6 / float64(n)
			st.CPUSysPerSession = (s.running.sys - s.steadySys) * 1e6 / float64(n)
			st.CPUPerSession = st.CPUUserPerSession + st.CPUSysPerSession
		}
		r.Steady = st
	}
	s.mu.Unlock()
	if r.Seconds > 0 {
		r.SessionsPerSec = float64(r.Sessions) / r.Seconds
	}
	s.mu.Lock()
	run := s.running
	s.mu.Unlock()
	if run.rss == 0 {
		run.rss, run.heap, run.goroutines = memory()
	}
	r.RSSBytes, r.HeapBytes, r.Goroutines = run.rss, run.heap, run.goroutines
	if r.Count > 0 {
		r.RSSPerCPE = r.RSSBytes / uint64(r.Count)
	}
	r.CPUUserSec, r.CPUSysSec = cpuTime()
	if f.cfg.Shards > 0 {
		r.Shard = &ShardInfo{Index: f.cfg.Shard, Count: f.cfg.Shards, First: f.cfg.First}
	}
	r.Series = f.Series()
	if r.Sessions > 0 {
		r.CPUPerSession = (r.CPUUserSec + r.CPUSysSec) * 1e6 / float64(r.Sessions)
	}
	return r
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// Line is the live summary line.
func (f *Fleet) Line(s Snapshot) string {
	return fmt.Sprintf("devices %d/%d up | %7.1f sessions/s (total %d) | p50 %s p90 %s p99 %s | errors %d (busy %d) | rss %d MB",
		f.Up(), len(f.devs), s.Rate, s.Sessions, round(s.P50), round(s.P90), round(s.P99), s.Errors, s.Busy, RSS()>>20)
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}
