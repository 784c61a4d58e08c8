package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
)

// runReport runs a small fleet against the test ACS, which turns some
// Informs away, and returns its report.
func runReport(t *testing.T, count int) *Report {
	return runShards(t, count, 1)[0]
}

// runShards runs shards of count CPEs each side by side, as one fleet.
func runShards(t *testing.T, count, shards int) []*Report {
	t.Helper()
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	acs.Lean(true)
	acs.BusyInforms(3*shards, 1)
	var fs []*Fleet
	var cancels []context.CancelFunc
	for i := range shards {
		f, err := New(Config{Count: count, First: 1 + i*count, Base: base(acs.URL), Rate: 10, Shard: i, Shards: shards})
		require.NoError(t, err)
		fs = append(fs, f)
	}
	acs.FaultInforms(2*shards, 8002)
	for _, f := range fs {
		cancels = append(cancels, runFleet(t, f))
	}
	for _, f := range fs {
		require.Eventually(t, func() bool { return f.Up() == count }, 30*time.Second, 20*time.Millisecond)
	}
	time.Sleep(2 * SampleEvery) // samples of the steady state too
	var out []*Report
	for i, f := range fs {
		cancels[i]()
		r := f.Report(time.Now())
		out = append(out, &r)
	}
	return out
}

// roundTrip is a report as a file gives it back.
func roundTrip(t *testing.T, r *Report) *Report {
	t.Helper()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	back, err := ReadReport(bytes.NewReader(b))
	require.NoError(t, err)
	return back
}

// TestReportSeries: a run's report holds a sample a second, whose
// sessions add up to the report's, with the CPEs coming up and the ACS's
// refusals by kind.
func TestReportSeries(t *testing.T) {
	r := runReport(t, 20)
	require.GreaterOrEqual(t, len(r.Series), 3)
	var sessions uint64
	errs := map[string]uint64{}
	for i, s := range r.Series {
		sessions += s.Sessions
		for k, v := range s.Errors {
			errs[k] += v
		}
		if i > 0 {
			assert.False(t, s.At.Before(r.Series[i-1].At), "samples in time order")
			assert.GreaterOrEqual(t, s.Started, r.Series[i-1].Started, "the ramp only goes up")
		}
		assert.InDelta(t, s.Seconds, SampleEvery.Seconds(), 0.5)
		assert.Greater(t, s.RSSBytes, uint64(0))
	}
	assert.Equal(t, r.Sessions, sessions, "the samples' sessions are the run's")
	assert.Equal(t, r.ErrorKinds, errs, "the samples' failures are the run's, by kind")
	assert.Equal(t, uint64(3), errs["http 503"])
	assert.Len(t, errs, 2, "503s and Faults to the Inform: two kinds")
	assert.Equal(t, uint64(5), r.Errors)
	assert.Equal(t, 20, r.Series[len(r.Series)-1].Up)
	assert.Equal(t, &ShardInfo{Index: 0, Count: 1, First: 1}, r.Shard)
	require.NotNil(t, r.LatencyHistogram)
	assert.Equal(t, r.Sessions-r.Errors, r.LatencyHistogram.Count, "one histogram entry per successful session")
}

// TestSeriesBounded: a long run's series stays within maxSamples and keeps
// its totals as samples merge.
func TestSeriesBounded(t *testing.T) {
	var s series
	at := time.Unix(1e9, 0)
	for i := range 10 * maxSamples {
		at = at.Add(time.Second)
		s.add(Sample{At: at, Seconds: 1, Sessions: 3, Rate: 3, P99MS: float64(i % 7), Errors: map[string]uint64{"timeout": 1}}, Snapshot{})
	}
	got := s.snapshot()
	assert.LessOrEqual(t, len(got), maxSamples)
	var sessions, errs uint64
	var secs float64
	for _, x := range got {
		sessions += x.Sessions
		errs += x.Errors["timeout"]
		secs += x.Seconds
		assert.InDelta(t, 3, x.Rate, 1e-9, "the rate of merged samples is their sessions over their time")
		assert.LessOrEqual(t, x.P99MS, 6.0)
	}
	assert.Equal(t, uint64(30*maxSamples), sessions)
	assert.Equal(t, uint64(10*maxSamples), errs)
	assert.InDelta(t, 10*maxSamples, secs, 1e-6)
}

// TestMergeRecomputesPercentiles: shard A's sessions took 1 ms, shard B's
// 100 ms. The merged median is A's (half the sessions plus one are at
// most 1 ms... and the 99th percentile B's: an average of the shards'
// percentiles (50 ms) would describe no session at all.
func TestMergeRecomputesPercentiles(t *testing.T) {
	mk := func(d time.Duration, n int, idx int) *Report {
		var h histogram
		for range n {
			h.add(d)
		}
		return &Report{Count: 10, Up: 10, Sessions: uint64(n), Seconds: 10, SessionsPerSec: float64(n) / 10, LatencyMS: h.percentiles(),
			LatencyHistogram: h.export(), RSSBytes: 10 << 20, CPUUserSec: 1, Shard: &ShardInfo{Index: idx, Count: 2, First: 1 + 10*idx},
			Events: map[string]uint64{"0 BOOTSTRAP": 10}, Steady: &SteadyReport{Seconds: float64(5 + idx), Sessions: uint64(n),
				SessionsPerSec: 1, LatencyMS: h.percentiles(), LatencyHistogram: h.export(), CPUPerSession: float64(100 * (idx + 1))}}
	}
	a, b := mk(time.Millisecond, 101, 0), mk(100*time.Millisecond, 99, 1)
	m, err := Merge([]*Report{roundTrip(t, a), roundTrip(t, b)})
	require.NoError(t, err)
	assert.Equal(t, 20, m.Count)
	assert.Equal(t, uint64(200), m.Sessions)
	assert.Equal(t, uint64(20), m.Events["0 BOOTSTRAP"])
	assert.InDelta(t, 20.0, m.SessionsPerSec, 1e-9, "the shards ran side by side: rates add up")
	assert.InDelta(t, 1.0, m.LatencyMS["p50"], 0.03, "the median session is one of A's")
	assert.InDelta(t, 100.0, m.LatencyMS["p99"], 2.5, "the 99th percentile is one of B's")
	assert.InDelta(t, 100.0, m.LatencyMS["max"], 1e-9)
	assert.Equal(t, uint64(200), m.LatencyHistogram.Count)
	assert.Equal(t, uint64(1<<20), m.RSSPerCPE, "memory per CPE over all CPEs")
	assert.Equal(t, 2, m.Shards)
	require.NotNil(t, m.Steady)
	assert.InDelta(t, 5.0, m.Steady.Seconds, 1e-9, "the fleet is steady once its last shard is")
	assert.InDelta(t, (100*101+200*99)/200.0, m.Steady.CPUPerSession, 1e-9, "CPU per session weighted by sessions")
	assert.InDelta(t, 100.0, m.Steady.LatencyMS["p99"], 2.5)

	// The same shard twice is refused; a shard that never became steady
	// leaves the whole without a steady state.
	_, err = Merge([]*Report{a, a})
	assert.ErrorContains(t, err, "shard 0 again")
	b.Steady = nil
	m, err = Merge([]*Report{a, b})
	require.NoError(t, err)
	assert.Nil(t, m.Steady)
}

// TestMergeRealShards: two fleets' real reports, through their files.
func TestMergeRealShards(t *testing.T) {
	rs := runShards(t, 10, 2)
	a, b := rs[0], rs[1]
	m, err := Merge([]*Report{roundTrip(t, a), roundTrip(t, b)})
	require.NoError(t, err)
	assert.Equal(t, 20, m.Count)
	assert.Equal(t, 20, m.Up)
	assert.Equal(t, a.Sessions+b.Sessions, m.Sessions)
	assert.Equal(t, a.Events["0 BOOTSTRAP"]+b.Events["0 BOOTSTRAP"], m.Events["0 BOOTSTRAP"])
	assert.Equal(t, uint64(20), m.Events["0 BOOTSTRAP"])
	assert.Equal(t, uint64(6), m.ErrorKinds["http 503"])
	assert.Equal(t, uint64(10), m.Errors)
	var h histogram
	require.NoError(t, h.load(a.LatencyHistogram))
	require.NoError(t, h.load(b.LatencyHistogram))
	assert.Equal(t, h.percentiles(), m.LatencyMS)
	// The series on one time axis: the last sample has every CPE up.
	require.NotEmpty(t, m.Series)
	assert.Equal(t, 20, m.Series[len(m.Series)-1].Up)
	var sessions uint64
	for _, s := range m.Series {
		sessions += s.Sessions
	}
	assert.Equal(t, m.Sessions, sessions)
	// Merging one report changes none of its figures.
	one, err := Merge([]*Report{roundTrip(t, a)})
	require.NoError(t, err)
	assert.Equal(t, a.LatencyMS, one.LatencyMS)
	assert.Equal(t, a.Sessions, one.Sessions)
	assert.Equal(t, a.RSSPerCPE, one.RSSPerCPE)
}

// TestReadReportRefuses what is not a fleet's report.
func TestReadReportRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"unknown field":   `{"count": 1, "sessions_per_minute": 3}`,
		"mistyped":        `{"count": "many"}`,
		"up beyond count": `{"count": 1, "up": 2}`,
		"foreign buckets": `{"count": 1, "latency_histogram": {"base_ms": 1, "factor": 2, "count": 0, "buckets": []}}`,
		"bucket range":    `{"count": 1, "latency_histogram": {"base_ms": 0.1, "factor": 1.02, "count": 1, "buckets": [[900, 1]]}}`,
		"count mismatch":  `{"count": 1, "latency_histogram": {"base_ms": 0.1, "factor": 1.02, "count": 5, "buckets": [[3, 1]]}}`,
		"not json":        `<html>`,
	} {
		_, err := ReadReport(strings.NewReader(in))
		assert.Error(t, err, name)
	}
}

// htmlOf writes a report's HTML page and parses it.
func htmlOf(t *testing.T, r *Report) (string, *html.Node) {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, WriteHTML(&buf, r))
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	return buf.String(), doc
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// TestHTMLReport: the page is self-contained and carries the run's series:
// each plotted line's values are the report's samples.
func TestHTMLReport(t *testing.T) {
	r := runReport(t, 20)
	page, doc := htmlOf(t, r)
	lines := map[string]map[string][]float64{} // chart -> series -> values
	var chart string
	var tableRows int
	var data string
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		for _, a := range n.Attr {
			if a.Key == "src" || (a.Key == "href" && n.Data != "a") {
				t.Errorf("<%s %s=%q>: the page must need nothing from elsewhere", n.Data, a.Key, a.Val)
			}
		}
		switch n.Data {
		case "link", "img", "iframe":
			t.Errorf("<%s> in a self-contained page", n.Data)
		case "svg":
			chart, _ = attr(n, "data-chart")
			lines[chart] = map[string][]float64{}
		case "polyline":
			name, _ := attr(n, "data-series")
			vals, _ := attr(n, "data-values")
			pts, _ := attr(n, "points")
			var vs []float64
			for _, v := range strings.Split(vals, ",") {
				f, err := strconv.ParseFloat(v, 64)
				require.NoError(t, err)
				vs = append(vs, f)
			}
			assert.Len(t, strings.Fields(pts), len(vs), "%s/%s: a point per value", chart, name)
			lines[chart][name] = vs
		case "tr":
			tableRows++
		case "script":
			typ, _ := attr(n, "type")
			assert.Equal(t, "application/json", typ, "no script runs")
			if n.FirstChild != nil {
				data = n.FirstChild.Data
			}
		}
	})
	col := func(f func(Sample) float64) []float64 {
		var out []float64
		for _, s := range r.Series {
			out = append(out, f(s))
		}
		return out
	}
	assert.Equal(t, col(func(s Sample) float64 { return float64(s.Up) }), lines["cpes"]["up"])
	assert.Equal(t, col(func(s Sample) float64 { return float64(s.Started) }), lines["cpes"]["started"])
	assert.Equal(t, col(func(s Sample) float64 { return s.Rate }), lines["rate"]["sessions/s"])
	assert.Equal(t, col(func(s Sample) float64 { return s.P99MS }), lines["latency"]["p99"])
	assert.Equal(t, col(func(s Sample) float64 { return float64(s.Errors["http 503"]) }), lines["errors"]["http 503"])
	assert.Len(t, lines["errors"], 2, "a line per kind")
	assert.Len(t, lines["rss"]["RSS"], len(r.Series))
	assert.Equal(t, 20.0, lines["cpes"]["up"][len(r.Series)-1])
	assert.GreaterOrEqual(t, tableRows, 10, "the totals")
	assert.Contains(t, page, ">http 503<", "errors plotted by kind, in the legend")
	// The data block is the report.
	var back Report
	require.NoError(t, json.Unmarshal([]byte(data), &back))
	assert.Equal(t, r.Sessions, back.Sessions)
	assert.Len(t, back.Series, len(r.Series))
}

// TestHTMLEscapes: what a report file says (error kinds, events) cannot
// add markup to the page.
func TestHTMLEscapes(t *testing.T) {
	evil := `<script>alert(1)</script>"'&`
	r := &Report{Count: 1, ErrorKinds: map[string]uint64{evil: 1}, Events: map[string]uint64{evil: 1},
		Series: []Sample{{At: time.Unix(100, 0), Seconds: 1, Errors: map[string]uint64{evil: 1}}}}
	page, doc := htmlOf(t, r)
	scripts := 0
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" {
			scripts++
		}
	})
	assert.Equal(t, 1, scripts, "only the data block")
	assert.NotContains(t, page, "<script>alert")
}

// browser finds a headless Chromium: chromium-headless-shell or chromium
// (Debian's packages).
func browser(t *testing.T) string {
	for _, b := range []string{"chromium-headless-shell", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no headless Chromium: .ci/run installs chromium-headless-shell")
	}
	t.Skip("no headless Chromium (apt-get install chromium-headless-shell)")
	return ""
}

// TestHTMLReportInABrowser opens the page in a real headless browser with
// no network (every proxy pointing nowhere) and checks the screenshot: a
// page of charts, not a blank one, with the series' colours drawn.
func TestHTMLReportInABrowser(t *testing.T) {
	bin := browser(t)
	r := runReport(t, 20)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	require.NoError(t, WriteHTML(&buf, r))
	require.NoError(t, os.WriteFile(page, buf.Bytes(), 0o644))
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--proxy-server=127.0.0.1:9", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--hide-scrollbars", "--window-size=1000,1400", "--screenshot="+shot, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	b := img.Bounds()
	require.Equal(t, image.Rect(0, 0, 1000, 1400), b)
	colours := map[[3]uint8]int{}
	var notWhite int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			c := [3]uint8{uint8(cr >> 8), uint8(cg >> 8), uint8(cb >> 8)}
			colours[c]++
			if c[0] < 240 || c[1] < 240 || c[2] < 240 {
				notWhite++
			}
		}
	}
	share := float64(notWhite) / float64(b.Dx()*b.Dy())
	assert.Greater(t, share, 0.02, "a page of text and charts, not a blank one")
	assert.Greater(t, len(colours), 50, "text, lines and anti-aliasing")
	// The first series' blue (#1f77b4) is drawn: the charts rendered.
	near := func(want [3]uint8) int {
		n := 0
		for c, k := range colours {
			if math.Abs(float64(c[0])-float64(want[0])) < 12 && math.Abs(float64(c[1])-float64(want[1])) < 12 && math.Abs(float64(c[2])-float64(want[2])) < 12 {
				n += k
			}
		}
		return n
	}
	assert.Greater(t, near([3]uint8{0x1f, 0x77, 0xb4}), 200, "pixels of the plotted lines")
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), "cwmp-fleet-report-shot.png")
		if b, err := os.ReadFile(shot); err == nil {
			os.WriteFile(keep, b, 0o644)
			t.Logf("screenshot kept in %s", keep)
		}
	}
}

// TestHTMLExtremeValues: a report file's largest numbers still make a page
// (the axes once overflowed to infinity and the tick loop never ended).
func TestHTMLExtremeValues(t *testing.T) {
	for _, v := range []float64{math.MaxFloat64, 1.7e308, 1e-300, 0} {
		r := &Report{Count: 1, Series: []Sample{{At: time.Unix(100, 0), Seconds: 1, Rate: v, P99MS: v, RSSBytes: math.MaxUint64},
			{At: time.Unix(1e10, 0), Seconds: 1, Rate: v}}}
		done := make(chan error, 1)
		go func() { done <- WriteHTML(io.Discard, r) }()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("rate %g: the page never ends", v)
		}
	}
}
