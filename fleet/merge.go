package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"
)

// Histogram is a latency histogram in a report: the fleet's logarithmic
// buckets (each BaseMS * Factor^i wide at its top), only the non-empty ones.
// Shards' histograms add up bucket by bucket, so a merged report's
// percentiles are those of every session, not an average of percentiles.
type Histogram struct {
	BaseMS  float64     `json:"base_ms"`
	Factor  float64     `json:"factor"`
	Count   uint64      `json:"count"`
	MaxMS   float64     `json:"max_ms"`
	Buckets [][2]uint64 `json:"buckets"` // [bucket index, sessions], ascending
}

func (h *histogram) export() *Histogram {
	out := &Histogram{BaseMS: ms(histBase), Factor: histFactor, Count: h.n, MaxMS: ms(h.max), Buckets: [][2]uint64{}}
	for i, c := range h.counts {
		if c > 0 {
			out.Buckets = append(out.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return out
}

// load adds a report's histogram into h, checking it is one of ours.
func (h *histogram) load(x *Histogram) error {
	if x == nil {
		return nil
	}
	if math.Abs(x.BaseMS-ms(histBase)) > 1e-9 || math.Abs(x.Factor-histFactor) > 1e-9 {
		return fmt.Errorf("latency histogram with other buckets (base %g ms, factor %g): made by another version", x.BaseMS, x.Factor)
	}
	var n uint64
	for _, b := range x.Buckets {
		if b[0] >= uint64(len(h.counts)) {
			return fmt.Errorf("latency histogram: bucket %d out of range", b[0])
		}
		if n+b[1] < n {
			return errors.New("latency histogram: counts overflow")
		}
		n += b[1]
	}
	if n != x.Count {
		return fmt.Errorf("latency histogram: buckets hold %d sessions, count says %d", n, x.Count)
	}
	if h.n+n < h.n {
		return errors.New("latency histogram: counts overflow")
	}
	for _, b := range x.Buckets {
		h.counts[b[0]] += b[1]
	}
	h.n += n
	if d := time.Duration(x.MaxMS * float64(time.Millisecond)); d > h.max {
		h.max = d
	}
	return nil
}

// Limits on a report read by ReadReport: it comes from a file.
const (
	maxReportBytes = 64 << 20
	maxMergeInputs = 4096
)

// ReadReport decodes one JSON report (a fleet's --report file), refusing
// unknown fields and anything past maxReportBytes.
func ReadReport(r io.Reader) (*Report, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxReportBytes+1))
	dec.DisallowUnknownFields()
	var rep Report
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("fleet report: %w", err)
	}
	if dec.InputOffset() > maxReportBytes {
		return nil, fmt.Errorf("fleet report: larger than %d MiB", maxReportBytes>>20)
	}
	if rep.Count < 0 || rep.Up < 0 || rep.Up > rep.Count {
		return nil, fmt.Errorf("fleet report: %d CPEs up of %d", rep.Up, rep.Count)
	}
	if len(rep.Series) > 4*maxSamples {
		return nil, fmt.Errorf("fleet report: %d samples (at most %d)", len(rep.Series), 4*maxSamples)
	}
	var h histogram
	if err := h.load(rep.LatencyHistogram); err != nil {
		return nil, fmt.Errorf("fleet report: %w", err)
	}
	if rep.Steady != nil {
		if err := h.load(rep.Steady.LatencyHistogram); err != nil {
			return nil, fmt.Errorf("fleet report: steady: %w", err)
		}
	}
	return &rep, nil
}

// Merge combines the reports of a fleet's shards, which ran at the same
// time, into one report of the same shape: counts add up, rates add up
// (the shards ran side by side), percentiles come from the merged
// histograms, memory adds up and per-CPE memory is over all CPEs. The
// steady state is the whole fleet's only when every shard reached it.
func Merge(reps []*Report) (*Report, error) {
	if len(reps) == 0 {
		return nil, errors.New("fleet report merge: no reports")
	}
	if len(reps) > maxMergeInputs {
		return nil, fmt.Errorf("fleet report merge: %d reports (at most %d)", len(reps), maxMergeInputs)
	}
	seen := map[int]bool{}
	for i, r := range reps {
		if r.Shard == nil {
			continue
		}
		if seen[r.Shard.Index] {
			return nil, fmt.Errorf("fleet report merge: report %d is shard %d again", i+1, r.Shard.Index)
		}
		seen[r.Shard.Index] = true
	}
	out := &Report{Events: map[string]uint64{}, Shards: len(reps)}
	var all, steady histogram
	steadyAll := true
	var st SteadyReport
	var stCPU float64
	for i, r := range reps {
		if err := all.load(r.LatencyHistogram); err != nil {
			return nil, fmt.Errorf("report %d: %w", i+1, err)
		}
		if out.Started.IsZero() || (!r.Started.IsZero() && r.Started.Before(out.Started)) {
			out.Started = r.Started
		}
		out.Count += r.Count
		out.Up += r.Up
		out.Seconds = math.Max(out.Seconds, r.Seconds)
		out.Sessions += r.Sessions
		out.Errors += r.Errors
		out.SessionsPerSec += r.SessionsPerSec
		out.Events = addCounts(out.Events, r.Events)
		out.ErrorKinds = addCounts(out.ErrorKinds, r.ErrorKinds)
		out.UDPAccepted += r.UDPAccepted
		out.UDPDropped += r.UDPDropped
		out.ACSBusy.Answers += r.ACSBusy.Answers
		out.ACSBusy.RetryAfterMaxSec = max(out.ACSBusy.RetryAfterMaxSec, r.ACSBusy.RetryAfterMaxSec)
		out.ACSBusy.RetriedEarly += r.ACSBusy.RetriedEarly
		out.RSSBytes += r.RSSBytes
		out.HeapBytes += r.HeapBytes
		out.Goroutines += r.Goroutines
		out.CPUUserSec += r.CPUUserSec
		out.CPUSysSec += r.CPUSysSec
		if r.Steady == nil {
			steadyAll = false
			continue
		}
		if err := steady.load(r.Steady.LatencyHistogram); err != nil {
			return nil, fmt.Errorf("report %d: steady: %w", i+1, err)
		}
		// The whole fleet is steady once its last shard is.
		if st.Seconds == 0 || r.Steady.Seconds < st.Seconds {
			st.Seconds = r.Steady.Seconds
		}
		st.Sessions += r.Steady.Sessions
		st.Errors += r.Steady.Errors
		st.SessionsPerSec += r.Steady.SessionsPerSec
		stCPU += r.Steady.CPUPerSession * float64(r.Steady.Sessions)
		st.CPUUserPerSession += r.Steady.CPUUserPerSession * float64(r.Steady.Sessions)
		st.CPUSysPerSession += r.Steady.CPUSysPerSession * float64(r.Steady.Sessions)
	}
	out.LatencyMS = all.percentiles()
	out.LatencyHistogram = all.export()
	if out.Count > 0 {
		out.RSSPerCPE = out.RSSBytes / uint64(out.Count)
	}
	if out.Sessions > 0 {
		out.CPUPerSession = (out.CPUUserSec + out.CPUSysSec) * 1e6 / float64(out.Sessions)
	}
	if steadyAll {
		if st.Sessions > 0 {
			n := float64(st.Sessions)
			st.CPUPerSession, st.CPUUserPerSession, st.CPUSysPerSession = stCPU/n, st.CPUUserPerSession/n, st.CPUSysPerSession/n
		}
		st.LatencyMS = steady.percentiles()
		st.LatencyHistogram = steady.export()
		out.Steady = &st
	}
	out.Series = mergeSeries(reps)
	return out, nil
}

// mergeSeries lays the shards' samples on one time axis, in intervals as
// long as the coarsest shard's: CPEs, sessions, rates, errors and memory
// add up; each latency percentile is the highest of the shards' (an upper
// bound: a percentile of the whole needs the whole's histogram).
func mergeSeries(reps []*Report) []Sample {
	step := time.Second
	for _, r := range reps {
		if n := len(r.Series); n > 0 {
			d := time.Duration(r.Series[n/2].Seconds * float64(time.Second)).Round(time.Second)
			step = max(step, d)
		}
	}
	type slot struct {
		at time.Time
		s  Sample
	}
	merged := map[int64]*Sample{}
	for _, r := range reps {
		// One shard's samples within a slot form one sample first.
		own := map[int64]*slot{}
		for _, x := range r.Series {
			k := x.At.Truncate(step).UnixNano()
			if o := own[k]; o != nil {
				o.s = combine(o.s, x)
			} else {
				own[k] = &slot{at: x.At, s: x}
			}
		}
		for k, o := range own {
			m := merged[k]
			if m == nil {
				c := o.s
				c.At = time.Unix(0, k).UTC().Add(step)
				c.Errors = addCounts(nil, o.s.Errors)
				merged[k] = &c
				continue
			}
			m.Started += o.s.Started
			m.Up += o.s.Up
			m.Sessions += o.s.Sessions
			m.Rate = round3(m.Rate + o.s.Rate)
			m.RSSBytes += o.s.RSSBytes
			m.Seconds = math.Max(m.Seconds, o.s.Seconds)
			m.P50MS, m.P90MS, m.P99MS = math.Max(m.P50MS, o.s.P50MS), math.Max(m.P90MS, o.s.P90MS), math.Max(m.P99MS, o.s.P99MS)
			m.Errors = addCounts(m.Errors, o.s.Errors)
		}
	}
	keys := make([]int64, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	out := make([]Sample, 0, len(keys))
	for _, k := range keys {
		out = append(out, *merged[k])
	}
	for len(out) > maxSamples {
		half := out[:0]
		for i := 0; i+1 < len(out); i += 2 {
			half = append(half, combine(out[i], out[i+1]))
		}
		if len(out)%2 == 1 {
			half = append(half, out[len(out)-1])
		}
		out = half
	}
	return out
}
