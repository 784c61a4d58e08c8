package fleet

import (
	"math"
	"sync"
	"time"
)

// Sample is the fleet over one interval of a run: the series of the
// report's plots.
type Sample struct {
	// At is the end of the interval, Seconds its length.
	At      time.Time `json:"at"`
	Seconds float64   `json:"seconds"`
	// Started and Up count CPEs at the end of the interval.
	Started int `json:"started"`
	Up      int `json:"up"`
	// Sessions ended in the interval, and their rate.
	Sessions uint64  `json:"sessions"`
	Rate     float64 `json:"sessions_per_second"`
	// Latency percentiles of the interval's successful sessions. In an
	// interval made of several (a long run's coarser samples, or shards
	// merged) each is the highest of theirs: an upper bound.
	P50MS float64 `json:"p50_ms"`
	P90MS float64 `json:"p90_ms"`
	P99MS float64 `json:"p99_ms"`
	// Errors are the interval's failed sessions by kind.
	Errors   map[string]uint64 `json:"errors,omitempty"`
	RSSBytes uint64            `json:"rss_bytes"`
}

// maxSamples bounds a run's series: past it, neighbouring samples are
// merged and each later one covers twice as long. A day at one sample a
// second ends with samples of about two minutes.
const maxSamples = 1200

// series records samples, one per tick.
type series struct {
	mu      sync.Mutex
	samples []Sample
	pending Sample // ticks not yet making a whole sample
	ticks   int    // in pending
	per     int    // ticks per sample
	last    Snapshot
}

func (s *series) add(x Sample, snap Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = snap
	if s.per == 0 {
		s.per = 1
	}
	if s.ticks == 0 {
		s.pending = x
	} else {
		s.pending = combine(s.pending, x)
	}
	s.ticks++
	if s.ticks < s.per {
		return
	}
	s.samples = append(s.samples, s.pending)
	s.ticks = 0
	if len(s.samples) >= maxSamples {
		half := s.samples[:0]
		for i := 0; i+1 < len(s.samples); i += 2 {
			half = append(half, combine(s.samples[i], s.samples[i+1]))
		}
		if len(s.samples)%2 == 1 {
			half = append(half, s.samples[len(s.samples)-1])
		}
		s.samples = half
		s.per *= 2
	}
}

func (s *series) snapshot() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]Sample(nil), s.samples...)
	if s.ticks > 0 {
		out = append(out, s.pending)
	}
	return out
}

// combine makes one sample of two consecutive ones (a earlier than b).
func combine(a, b Sample) Sample {
	out := b
	out.Seconds = a.Seconds + b.Seconds
	out.Sessions = a.Sessions + b.Sessions
	if out.Seconds > 0 {
		out.Rate = round3(float64(out.Sessions) / out.Seconds)
	}
	out.P50MS, out.P90MS, out.P99MS = math.Max(a.P50MS, b.P50MS), math.Max(a.P90MS, b.P90MS), math.Max(a.P99MS, b.P99MS)
	out.Errors = addCounts(nil, a.Errors)
	out.Errors = addCounts(out.Errors, b.Errors)
	return out
}

// addCounts adds b into a (allocating a when needed) and returns it.
func addCounts(a, b map[string]uint64) map[string]uint64 {
	for k, v := range b {
		if a == nil {
			a = map[string]uint64{}
		}
		a[k] += v
	}
	return a
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// SampleEvery is how often the fleet samples itself for the report's
// series and the live summary line.
const SampleEvery = time.Second

// sample records the window since the last one.
func (f *Fleet) sample(now time.Time) {
	snap := f.Stats.Window(now)
	f.series.add(Sample{At: now.UTC().Truncate(time.Millisecond), Seconds: round3(snap.Window.Seconds()), Started: int(snap.Started), Up: f.Up(),
		Sessions: snap.WindowSessions, Rate: round3(snap.Rate), P50MS: ms(snap.P50), P90MS: ms(snap.P90), P99MS: ms(snap.P99),
		Errors: snap.WindowErrors, RSSBytes: RSS()}, snap)
}

// Latest is the last sample's snapshot: what the live summary line shows.
func (f *Fleet) Latest() Snapshot {
	f.series.mu.Lock()
	defer f.series.mu.Unlock()
	return f.series.last
}

// Series is the run's samples so far.
func (f *Fleet) Series() []Sample { return f.series.snapshot() }
