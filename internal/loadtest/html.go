package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/lttb"
)

// The HTML report is one self-contained file: the plots are SVG drawn
// here, the styles inline, and nothing is loaded from anywhere (vegeta's
// own plot page embeds a JavaScript charting library; static SVG needs no
// script at all and prints as it shows).

// colors per scenario (index as in Scenarios) and for failures.
var colors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf"}

const failColor = "#d62728"

func colorOf(name string) string {
	if i := slices.Index(Scenarios, name); i >= 0 {
		return colors[i]
	}
	return "#444"
}

// pointsPerSeries bounds the points each scatter series draws.
const pointsPerSeries = 1500

// WriteHTML writes the report page: settings, the objectives' outcome,
// the summary table, latency over time, requests per second over time and
// the latency histogram.
func (r *Result) WriteHTML(w io.Writer, o Objectives) error {
	type row struct {
		Name, Color, Rate, P50, P95, P99, Max, Success, Errors string
		Requests                                               uint64
	}
	rows := []row{}
	all := r.Scenarios
	if len(all) != 1 {
		all = append(slices.Clone(all), r.Total)
	}
	for _, s := range all {
		m := s.Metrics
		rows = append(rows, row{Name: s.Name, Color: colorOf(s.Name), Requests: m.Requests, Rate: fmt.Sprintf("%.1f", m.Rate),
			P50: round(m.Latencies.P50).String(), P95: round(m.Latencies.P95).String(), P99: round(m.Latencies.P99).String(),
			Max: round(m.Latencies.Max).String(), Success: fmt.Sprintf("%.2f%%", 100*m.Success), Errors: errorList(s.Errors)})
	}
	var objectives []string
	if o.P95 > 0 {
		objectives = append(objectives, "p95 ≤ "+o.P95.String())
	}
	if o.MaxErrorRate >= 0 {
		objectives = append(objectives, fmt.Sprintf("error rate ≤ %g", o.MaxErrorRate))
	}
	windows := r.windows()
	data := map[string]any{
		"Describe":   r.Describe(),
		"Started":    r.Started.UTC().Format(time.RFC3339),
		"Rows":       rows,
		"Notes":      r.Notes(),
		"Objectives": strings.Join(objectives, ", "),
		"Missed":     r.Missed(o),
		"Latency":    template.HTML(r.latencySVG(windows)),
		"Throughput": template.HTML(r.throughputSVG(windows)),
		"Histogram":  template.HTML(r.histogramSVG()),
	}
	return reportPage.Execute(w, data)
}

var reportPage = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gatehouse load test</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child, td.errors { text-align: left; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .4rem; vertical-align: -1px; }
.missed { color: #b00; font-weight: 600; } .met { color: #070; font-weight: 600; }
svg { display: block; max-width: 100%; height: auto; font-size: 11px; }
svg text { fill: #333; } .grid { stroke: #e5e5e5; } .axis { stroke: #888; }
.note { color: #555; }
</style>
</head>
<body>
<h1>Gatehouse load test</h1>
<p>{{.Describe}}; started {{.Started}}.</p>
{{if .Objectives}}<p>Objectives: {{.Objectives}}.
{{if .Missed}}{{range .Missed}}<br><span class="missed">{{.}}</span>{{end}}{{else}}<span class="met">All met.</span>{{end}}</p>{{end}}
{{range .Notes}}<p class="note">{{.}}</p>{{end}}
<h2>Summary</h2>
<table>
<tr><th>scenario</th><th>requests</th><th>rps</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>success</th><th>errors</th></tr>
{{range .Rows}}<tr><td><span class="swatch" style="background: {{.Color}}"></span>{{.Name}}</td><td>{{.Requests}}</td><td>{{.Rate}}</td><td>{{.P50}}</td><td>{{.P95}}</td><td>{{.P99}}</td><td>{{.Max}}</td><td>{{.Success}}</td><td class="errors">{{.Errors}}</td></tr>
{{end}}</table>
<p class="note">Latency percentiles are vegeta's t-digest estimates over every request; rps is requests sent per second.</p>
<h2>Latency over time</h2>
{{.Latency}}
<p class="note">Dots: single requests (a thinned sample on long runs), coloured by scenario, failures as red crosses.
Lines: p50, p95 and p99 of all requests per time window. Logarithmic scale.</p>
<h2>Requests per second</h2>
{{.Throughput}}
<h2>Latency histogram</h2>
{{.Histogram}}
</body>
</html>
`))

// window is one time slice of the run.
type window struct {
	from, to      float64 // seconds since the start
	p50, p95, p99 float64 // milliseconds
	rps           float64
	failedRPS     float64
}

// windows cuts the run into about 60 slices of at least a quarter of a
// second and computes each one's percentiles and request rate from the
// samples, scaled back by the samples' thinning. The last slice ends with
// the last request, so its rate is not diluted by time after the run.
func (r *Result) windows() []window {
	list := r.samples.list
	if len(list) == 0 {
		return nil
	}
	span := 0.0
	for _, s := range list {
		span = math.Max(span, float64(s.at))
	}
	span = math.Max(span, 0.001)
	width := math.Max(span/60, 0.25)
	n := max(int(math.Ceil(span/width)), 1)
	buckets := make([][]float64, n)
	failed := make([]int, n)
	for _, s := range list {
		i := min(int(float64(s.at)/width), n-1)
		buckets[i] = append(buckets[i], float64(s.ms))
		if s.failed {
			failed[i]++
		}
	}
	stride := float64(max(r.samples.stride, 1))
	out := make([]window, 0, n)
	for i, b := range buckets {
		w := window{from: float64(i) * width, to: math.Min(float64(i+1)*width, span)}
		if i == n-1 && w.to-w.from < width/4 && i > 0 {
			// A last sliver counts as a quarter slice, so the one or two
			// requests in it do not show as a spike of the rate.
			w.to = w.from + width/4
		}
		w.rps = float64(len(b)) * stride / (w.to - w.from)
		w.failedRPS = float64(failed[i]) * stride / (w.to - w.from)
		if len(b) > 0 {
			sort.Float64s(b)
			w.p50, w.p95, w.p99 = quantile(b, .50), quantile(b, .95), quantile(b, .99)
		}
		out = append(out, w)
	}
	return out
}

// quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// plot is the frame of one chart: its size, margins and scales.
type plot struct {
	sb                       strings.Builder
	width, height            float64
	left, right, top, bottom float64
	x0, x1                   float64
	y0, y1                   float64
	logY                     bool
}

func newPlot(x0, x1, y0, y1 float64, logY bool) *plot {
	p := &plot{width: 960, height: 320, left: 64, right: 16, top: 16, bottom: 40, x0: x0, x1: x1, y0: y0, y1: y1, logY: logY}
	if p.x1 <= p.x0 {
		p.x1 = p.x0 + 1
	}
	if p.y1 <= p.y0 {
		p.y1 = p.y0 + 1
	}
	fmt.Fprintf(&p.sb, `<svg viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img">`, p.width, p.height, p.width, p.height)
	return p
}

func (p *plot) px(x float64) float64 {
	return p.left + (x-p.x0)/(p.x1-p.x0)*(p.width-p.left-p.right)
}

func (p *plot) py(y float64) float64 {
	f := (y - p.y0) / (p.y1 - p.y0)
	if p.logY {
		f = (math.Log10(math.Max(y, p.y0)) - math.Log10(p.y0)) / (math.Log10(p.y1) - math.Log10(p.y0))
	}
	f = math.Max(0, math.Min(1, f))
	return p.height - p.bottom - f*(p.height-p.top-p.bottom)
}

// axes draws the grid, the ticks and the axis titles.
func (p *plot) axes(xticks []float64, xlabel func(float64) string, yticks []float64, ylabel func(float64) string, xtitle, ytitle string) {
	for _, y := range yticks {
		fmt.Fprintf(&p.sb, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, p.left, p.width-p.right, p.py(y), p.py(y))
		fmt.Fprintf(&p.sb, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, p.left-6, p.py(y)+4, template.HTMLEscapeString(ylabel(y)))
	}
	for _, x := range xticks {
		fmt.Fprintf(&p.sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, p.px(x), p.height-p.bottom+16, template.HTMLEscapeString(xlabel(x)))
	}
	fmt.Fprintf(&p.sb, `<line class="axis" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, p.left, p.width-p.right, p.height-p.bottom, p.height-p.bottom)
	fmt.Fprintf(&p.sb, `<line class="axis" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, p.left, p.left, p.top, p.height-p.bottom)
	fmt.Fprintf(&p.sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, (p.left+p.width-p.right)/2, p.height-6, xtitle)
	fmt.Fprintf(&p.sb, `<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">%s</text>`, (p.top+p.height-p.bottom)/2, ytitle)
}

// legend draws colour keys along the top right.
func (p *plot) legend(names, cols []string) {
	x := p.width - p.right - 8
	for i := len(names) - 1; i >= 0; i-- {
		x -= float64(len([]rune(names[i])))*7 + 24
		fmt.Fprintf(&p.sb, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`,
			x, p.top, cols[i], x+14, p.top+9, template.HTMLEscapeString(names[i]))
	}
}

func (p *plot) svg() string { return p.sb.String() + "</svg>" }

// latencySVG plots every scenario's requests and the windows' percentiles
// against time, on a logarithmic latency scale.
func (r *Result) latencySVG(windows []window) string {
	list := r.samples.list
	if len(list) == 0 {
		return `<p class="note">No requests were answered.</p>`
	}
	lo, hi := math.Inf(1), 0.0
	for _, s := range list {
		ms := math.Max(float64(s.ms), 0.001)
		lo, hi = math.Min(lo, ms), math.Max(hi, ms)
	}
	y0 := math.Pow(10, math.Floor(math.Log10(lo)))
	y1 := math.Pow(10, math.Ceil(math.Log10(hi)))
	if y1 <= y0 {
		y1 = y0 * 10
	}
	x1 := windows[len(windows)-1].to
	p := newPlot(0, x1, y0, y1, true)
	var yticks []float64
	for y := y0; y <= y1*1.0001; y *= 10 {
		yticks = append(yticks, y)
	}
	p.axes(timeTicks(x1), secondsLabel, yticks, msLabel, "time since start (s)", "latency")

	var names, cols []string
	for i, name := range Scenarios {
		var pts []lttb.Point
		for _, s := range list {
			if int(s.scenario) == i+1 && !s.failed {
				pts = append(pts, lttb.Point{X: float64(s.at), Y: math.Max(float64(s.ms), y0)})
			}
		}
		if r.byName[name] == nil {
			continue
		}
		names, cols = append(names, name), append(cols, colors[i])
		for _, pt := range downsample(pts) {
			fmt.Fprintf(&p.sb, `<circle cx="%.1f" cy="%.1f" r="1.6" fill="%s" fill-opacity="0.55"/>`, p.px(pt.X), p.py(pt.Y), colors[i])
		}
	}
	var fails []lttb.Point
	for _, s := range list {
		if s.failed {
			fails = append(fails, lttb.Point{X: float64(s.at), Y: math.Max(float64(s.ms), y0)})
		}
	}
	for _, pt := range downsample(fails) {
		x, y := p.px(pt.X), p.py(pt.Y)
		fmt.Fprintf(&p.sb, `<path d="M%.1f %.1fl5 5m0 -5l-5 5" stroke="%s" stroke-width="1.5"/>`, x-2.5, y-2.5, failColor)
	}
	if len(fails) > 0 {
		names, cols = append(names, "failed"), append(cols, failColor)
	}
	for _, line := range []struct {
		name, dash string
		get        func(window) float64
	}{
		{"p50", "", func(w window) float64 { return w.p50 }},
		{"p95", "6 3", func(w window) float64 { return w.p95 }},
		{"p99", "2 3", func(w window) float64 { return w.p99 }},
	} {
		var d strings.Builder
		pen := "M"
		for _, w := range windows {
			if w.rps == 0 {
				pen = "M"
				continue
			}
			fmt.Fprintf(&d, "%s%.1f %.1f", pen, p.px((w.from+w.to)/2), p.py(line.get(w)))
			pen = "L"
		}
		if d.Len() > 0 {
			fmt.Fprintf(&p.sb, `<path d="%s" fill="none" stroke="#222" stroke-width="1.3" stroke-dasharray="%s"><title>%s</title></path>`,
				d.String(), line.dash, line.name)
		}
	}
	names, cols = append(names, "p50 — p95 - - p99 ··"), append(cols, "#222")
	p.legend(names, cols)
	return p.svg()
}

// downsample keeps at most pointsPerSeries points of a series, by
// Largest-Triangle-Three-Buckets (vegeta's lttb), which keeps the spikes
// a plain stride would drop.
func downsample(pts []lttb.Point) []lttb.Point {
	if len(pts) <= pointsPerSeries {
		return pts
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
	next := 0
	out, err := lttb.Downsample(len(pts), pointsPerSeries, func(count int) ([]lttb.Point, error) {
		end := min(next+count, len(pts))
		chunk := pts[next:end]
		next = end
		return chunk, nil
	})
	if err != nil {
		return pts[:pointsPerSeries]
	}
	return out
}

// throughputSVG plots requests per second (and failed ones) per window.
func (r *Result) throughputSVG(windows []window) string {
	if len(windows) == 0 {
		return `<p class="note">No requests were answered.</p>`
	}
	top := 0.0
	for _, w := range windows {
		top = math.Max(top, w.rps)
	}
	top = niceCeil(top * 1.1)
	x1 := windows[len(windows)-1].to
	p := newPlot(0, x1, 0, top, false)
	var yticks []float64
	for i := range 5 {
		yticks = append(yticks, top*float64(i)/4)
	}
	p.axes(timeTicks(x1), secondsLabel, yticks, func(v float64) string { return fmt.Sprintf("%g", math.Round(v*10)/10) },
		"time since start (s)", "requests/s")
	for _, series := range []struct {
		color string
		get   func(window) float64
	}{{"#1f77b4", func(w window) float64 { return w.rps }}, {failColor, func(w window) float64 { return w.failedRPS }}} {
		var d strings.Builder
		for i, w := range windows {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f", cmd, p.px((w.from+w.to)/2), p.py(series.get(w)))
		}
		fmt.Fprintf(&p.sb, `<path d="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, d.String(), series.color)
	}
	p.legend([]string{"sent", "failed"}, []string{"#1f77b4", failColor})
	return p.svg()
}

// histogramSVG draws HistogramBuckets as bars, each stacked by scenario.
func (r *Result) histogramSVG() string {
	if r.Total.Histogram.Total == 0 {
		return `<p class="note">No requests were answered.</p>`
	}
	n := len(HistogramBuckets)
	top := 0.0
	for i := range n {
		top = math.Max(top, float64(count(r.Total.Histogram, i)))
	}
	top = niceCeil(top * 1.1)
	p := newPlot(0, float64(n), 0, top, false)
	var yticks []float64
	for i := range 5 {
		yticks = append(yticks, top*float64(i)/4)
	}
	p.axes(nil, nil, yticks, func(v float64) string { return fmt.Sprintf("%g", math.Round(v)) }, "latency", "requests")
	barW := (p.px(1) - p.px(0)) * 0.8
	for i := range n {
		lo, hi := HistogramBuckets.Nth(i)
		label := "≥ " + lo
		if hi != "+Inf" {
			label = "< " + hi
		}
		fmt.Fprintf(&p.sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, p.px(float64(i)+0.5), p.height-p.bottom+16, template.HTMLEscapeString(label))
		base := 0.0
		for _, s := range r.Scenarios {
			c := float64(count(s.Histogram, i))
			if c == 0 {
				continue
			}
			y0, y1 := p.py(base), p.py(base+c)
			fmt.Fprintf(&p.sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s–%s: %.0f</title></rect>`,
				p.px(float64(i))+(p.px(1)-p.px(0)-barW)/2, y1, barW, math.Max(y0-y1, 0.5), colorOf(s.Name), s.Name, lo, hi, c)
			base += c
		}
	}
	var names, cols []string
	for _, s := range r.Scenarios {
		names, cols = append(names, s.Name), append(cols, colorOf(s.Name))
	}
	p.legend(names, cols)
	return p.svg()
}

func count(h vegeta.Histogram, i int) uint64 {
	if i < len(h.Counts) {
		return h.Counts[i]
	}
	return 0
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

// timeTicks are about six round ticks from 0 to end seconds.
func timeTicks(end float64) []float64 {
	step := niceCeil(end / 6)
	var out []float64
	for t := 0.0; t <= end+1e-9; t += step {
		out = append(out, t)
	}
	return out
}

func secondsLabel(s float64) string { return fmt.Sprintf("%g", math.Round(s*100)/100) }

func msLabel(ms float64) string {
	return round(time.Duration(ms * float64(time.Millisecond))).String()
}
