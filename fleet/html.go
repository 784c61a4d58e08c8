package fleet

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The HTML report is one self-contained file: SVG drawn here, inline CSS,
// no script and nothing fetched, so that it opens anywhere (an attachment,
// a CI artifact, a machine without network). The plots are hand-written
// SVG rather than a charting library: five line charts need a hundred
// lines, and the charting libraries for Go either emit JavaScript that
// loads from a CDN or render raster images.

// Chart geometry, in SVG user units: the plot, and the legend to its right.
const (
	chartW, chartH         = 880, 240
	padL, padR, padT, padB = 64, 150, 16, 36
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	legendX, legendY       = chartW - padR + 12, padT + 6
	// maxErrorKindsPlotted lines at most in the errors chart (the rarest
	// kinds share the last).
	maxErrorKindsPlotted = 6
)

var colours = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

// line is one plotted series.
type line struct {
	Name   string
	Values []float64
}

type chart struct {
	ID, Title, Unit string
	Lines           []line
}

// Charts are the report's plots, each a set of series over the samples:
// what the HTML draws and what its tests read back.
func charts(r *Report) []chart {
	n := len(r.Series)
	col := func(f func(Sample) float64) []float64 {
		out := make([]float64, n)
		for i, s := range r.Series {
			out[i] = f(s)
		}
		return out
	}
	cs := []chart{
		{ID: "cpes", Title: "CPEs", Unit: "CPEs", Lines: []line{
			{"up", col(func(s Sample) float64 { return float64(s.Up) })},
			{"started", col(func(s Sample) float64 { return float64(s.Started) })}}},
		{ID: "rate", Title: "Sessions per second", Unit: "sessions/s", Lines: []line{
			{"sessions/s", col(func(s Sample) float64 { return s.Rate })}}},
		{ID: "latency", Title: "Session latency", Unit: "ms", Lines: []line{
			{"p50", col(func(s Sample) float64 { return s.P50MS })},
			{"p90", col(func(s Sample) float64 { return s.P90MS })},
			{"p99", col(func(s Sample) float64 { return s.P99MS })}}},
	}
	// Errors by kind, the most frequent first; the rest share a line.
	total := map[string]uint64{}
	for _, s := range r.Series {
		for k, v := range s.Errors {
			total[k] += v
		}
	}
	kinds := make([]string, 0, len(total))
	for k := range total {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if total[kinds[i]] != total[kinds[j]] {
			return total[kinds[i]] > total[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	errs := chart{ID: "errors", Title: "Failed sessions per interval, by kind", Unit: "sessions"}
	if len(kinds) == 0 {
		errs.Lines = []line{{"none", col(func(Sample) float64 { return 0 })}}
	}
	rest := kinds
	if len(kinds) > maxErrorKindsPlotted {
		kinds, rest = kinds[:maxErrorKindsPlotted-1], kinds[maxErrorKindsPlotted-1:]
	} else {
		rest = nil
	}
	for _, k := range kinds {
		errs.Lines = append(errs.Lines, line{k, col(func(s Sample) float64 { return float64(s.Errors[k]) })})
	}
	if len(rest) > 0 {
		errs.Lines = append(errs.Lines, line{"other kinds", col(func(s Sample) float64 {
			var v uint64
			for _, k := range rest {
				v += s.Errors[k]
			}
			return float64(v)
		})})
	}
	cs = append(cs, errs, chart{ID: "rss", Title: "Resident memory", Unit: "MiB", Lines: []line{
		{"RSS", col(func(s Sample) float64 { return round3(float64(s.RSSBytes) / (1 << 20)) })}}})
	return cs
}

// xs are the samples' times in seconds since the run's start.
func xs(r *Report) []float64 {
	out := make([]float64, len(r.Series))
	start := r.Started
	if start.IsZero() && len(r.Series) > 0 {
		start = r.Series[0].At.Add(-time.Duration(r.Series[0].Seconds * float64(time.Second)))
	}
	for i, s := range r.Series {
		out[i] = round3(s.At.Sub(start).Seconds())
	}
	return out
}

// niceStep is a round step (1, 2 or 5 times a power of ten) giving about
// n ticks over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// svg draws one chart.
func svg(c chart, x []float64) template.HTML {
	var b strings.Builder
	xmax := float64(1)
	if len(x) > 0 {
		xmax = math.Max(x[len(x)-1], xmax)
	}
	ymax := 0.0
	for _, l := range c.Lines {
		for _, v := range l.Values {
			ymax = math.Max(ymax, v)
		}
	}
	// A report file may say anything: the axes stay finite, and the tick
	// loops below count ticks, not add steps up to a bound.
	ymax = math.Min(ymax, math.MaxFloat64/16)
	xmax = math.Min(xmax, math.MaxFloat64/16)
	ystep := niceStep(math.Max(ymax, 1e-9), 4)
	ytop := math.Max(ystep*math.Ceil(ymax/ystep), ystep)
	px := func(v float64) float64 { return padL + v/xmax*plotW }
	py := func(v float64) float64 { return padT + plotH - v/ytop*plotH }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" data-chart=%q viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label=%q>`,
		c.ID, chartW, chartH, chartW, chartH, c.Title)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, chartW, chartH)
	for i := 0; i <= min(int(math.Round(ytop/ystep)), 10); i++ {
		v := float64(i) * ystep
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke=%q/>`, padL, padL+plotW, y, y, "#e5e5e5")
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11" fill="#444">%s</text>`, padL-6, y+4, num(round3(v)))
	}
	xstep := niceStep(xmax, 6)
	for i := 0; i <= min(int(xmax/xstep+0.01), 12); i++ {
		v := float64(i) * xstep
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11" fill="#444">%s</text>`, px(v), padT+plotH+16, num(round3(v)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11" fill="#444">seconds since the start</text>`, padL+plotW/2, padT+plotH+32)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#444" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>`,
		14, padT+plotH/2, 14, padT+plotH/2, template.HTMLEscapeString(c.Unit))
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke=%q/>`, padL, padL+plotW, padT+plotH, padT+plotH, "#888")
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke=%q/>`, padL, padL, padT, padT+plotH, "#888")
	for i, l := range c.Lines {
		colour := colours[i%len(colours)]
		pts := make([]string, len(l.Values))
		vals := make([]string, len(l.Values))
		for j, v := range l.Values {
			pts[j] = fmt.Sprintf("%.1f,%.1f", px(x[j]), py(v))
			vals[j] = num(v)
		}
		fmt.Fprintf(&b, `<polyline data-series=%q data-values=%q points=%q fill="none" stroke=%q stroke-width="%d" stroke-linejoin="round"/>`,
			template.HTMLEscapeString(l.Name), strings.Join(vals, ","), strings.Join(pts, " "), colour, 2)
		ly := legendY + i*18
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke=%q stroke-width="3"/>`, legendX, legendX+18, ly, ly, colour)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="#222">%s</text>`, legendX+18+8, ly+4, template.HTMLEscapeString(l.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every piece of text in it is escaped above
}

type totalRow struct{ Name, Value string }

func totals(r *Report) []totalRow {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	rows := []totalRow{
		{"CPEs (up at the end)", fmt.Sprintf("%d (%d)", r.Count, r.Up)},
		{"Run", f(r.Seconds) + " s"},
		{"Sessions", fmt.Sprintf("%d (%s/s)", r.Sessions, f(r.SessionsPerSec))},
		{"Failed sessions", strconv.FormatUint(r.Errors, 10)},
		{"Latency p50 / p90 / p99 / max", fmt.Sprintf("%s / %s / %s / %s ms", num(r.LatencyMS["p50"]), num(r.LatencyMS["p90"]), num(r.LatencyMS["p99"]), num(r.LatencyMS["max"]))},
		{"ACS busy answers (503, 429)", fmt.Sprintf("%d (longest Retry-After %d s, retried early %d)", r.ACSBusy.Answers, r.ACSBusy.RetryAfterMaxSec, r.ACSBusy.RetriedEarly)},
		{"UDP Connection Requests accepted / dropped", fmt.Sprintf("%d / %d", r.UDPAccepted, r.UDPDropped)},
		{"Resident memory (per CPE)", fmt.Sprintf("%s MiB (%s KiB)", f(float64(r.RSSBytes)/(1<<20)), f(float64(r.RSSPerCPE)/1024))},
		{"CPU per session", f(r.CPUPerSession) + " µs"},
	}
	if r.Shards > 0 {
		rows = append(rows, totalRow{"Shards merged", strconv.Itoa(r.Shards)})
	}
	if r.Shard != nil {
		rows = append(rows, totalRow{"Shard", fmt.Sprintf("%d of %d (first CPE %d)", r.Shard.Index, r.Shard.Count, r.Shard.First)})
	}
	if st := r.Steady; st != nil {
		rows = append(rows, totalRow{"Steady state", fmt.Sprintf("%s s, %d sessions (%s/s), %d failed, p99 %s ms, %s µs CPU per session",
			f(st.Seconds), st.Sessions, f(st.SessionsPerSec), st.Errors, num(st.LatencyMS["p99"]), f(st.CPUPerSession))})
	}
	for _, k := range slices.Sorted(maps.Keys(r.ErrorKinds)) {
		rows = append(rows, totalRow{"Failed: " + k, strconv.FormatUint(r.ErrorKinds[k], 10)})
	}
	for _, k := range slices.Sorted(maps.Keys(r.Events)) {
		rows = append(rows, totalRow{"Event " + k, strconv.FormatUint(r.Events[k], 10)})
	}
	return rows
}

var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: {{.Font}}; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 6px; }
p.meta { color: #555; margin: 0 0 16px; }
table { border-collapse: collapse; background: #fff; }
td { padding: 4px 12px; border-bottom: 1px solid #e5e5e5; }
td:first-child { color: #555; }
section { background: #fff; display: inline-block; padding: 4px; border: 1px solid #e5e5e5; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">Run started {{.Started}}; {{.Samples}} samples.</p>
<h2>Totals</h2>
<table id="totals">
{{range .Totals}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>
{{end}}</table>
{{range .Charts}}<h2>{{.Title}}</h2>
<section>{{.SVG}}</section>
{{end}}
<script type="application/json" id="report-data">{{.JSON}}</script>
</body>
</html>
`))

// WriteHTML writes the report as one self-contained HTML page: a table of
// the totals and plots over time of CPEs up, sessions per second, latency
// percentiles, errors by kind and resident memory. The report's JSON rides
// along in a data block (no script runs).
func WriteHTML(w io.Writer, r *Report) error {
	x := xs(r)
	type drawn struct {
		Title string
		SVG   template.HTML
	}
	var cs []drawn
	for _, c := range charts(r) {
		cs = append(cs, drawn{c.Title, svg(c, x)})
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	started := "at an unknown time"
	if !r.Started.IsZero() {
		started = r.Started.UTC().Format("2006-01-02 15:04:05 MST")
	}
	return htmlReport.Execute(w, map[string]any{"Title": "cwmp-fleet report", "Font": template.CSS("system-ui, sans-serif"), "Started": started,
		"Samples": len(r.Series), "Totals": totals(r), "Charts": cs, "JSON": template.JS(safeJSON(data))})
}

// safeJSON keeps a JSON text from closing the script element it sits in.
func safeJSON(b []byte) string {
	return strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`).Replace(string(b))
}
