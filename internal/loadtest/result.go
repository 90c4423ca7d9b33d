package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Result is what a run measured.
type Result struct {
	// Load is the run's settings; its Target is the normalised base URL.
	Load
	Started time.Time
	// Interrupted is set when the run was stopped before its duration.
	Interrupted bool
	// Scenarios has one entry per scenario that sent requests, in the
	// order of Scenarios; Total covers them all.
	Scenarios []*Stats
	Total     *Stats
	// ChainsLost counts refresh-token chains dropped after an error answer
	// and replaced by a new sign-in outside the measurement.
	ChainsLost int64
	// TokensRenewed counts access tokens renewed in the background, and
	// RenewalsFailed the renewals that failed (requests then go on with
	// the old token until it expires).
	TokensRenewed, RenewalsFailed int64

	byName  map[string]*Stats
	samples samples
}

// Stats are one scenario's (or the total's) numbers.
type Stats struct {
	Name string
	// Metrics has the counts, rates, latency percentiles (t-digest
	// estimates) and status codes; success is a 2xx or 3xx answer.
	Metrics vegeta.Metrics
	// Histogram counts latencies in HistogramBuckets.
	Histogram vegeta.Histogram
	// Errors counts failed requests by status and, when the answer was
	// problem+json, its code ("401 invalid_refresh_token"); a request
	// without an answer counts under "no answer: <error>".
	Errors map[string]int
}

// HistogramBuckets are the latency histogram's lower bounds, in a 1-2-5
// series wide enough for anything from a cached JWKS to a queued login.
var HistogramBuckets = vegeta.Buckets{0, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
	5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2 * time.Second, 5 * time.Second}

func newStats(name string) *Stats {
	s := &Stats{Name: name, Errors: map[string]int{}}
	s.Histogram.Buckets = HistogramBuckets
	s.Metrics.Histogram = &s.Histogram
	return s
}

func newResult(cfg *Config, base string) *Result {
	load := cfg.Load
	load.Target = base
	return &Result{Load: load, Total: newStats("total"), byName: map[string]*Stats{}, samples: samples{limit: maxSamples}}
}

// add records one vegeta result of the named scenario.
func (r *Result) add(name string, vr *vegeta.Result) {
	s := r.byName[name]
	if s == nil {
		s = newStats(name)
		r.byName[name] = s
	}
	key := errorKey(vr)
	for _, st := range []*Stats{s, r.Total} {
		st.Metrics.Add(vr)
		if key != "" {
			st.Errors[key]++
		}
	}
	r.samples.add(sample{
		at:       float32(vr.Timestamp.Sub(r.Started).Seconds()),
		ms:       float32(vr.Latency.Seconds() * 1000),
		scenario: uint8(slices.Index(Scenarios, name) + 1),
		failed:   key != "",
	})
}

// errorKey names a failed request's error; "" for a success.
func errorKey(vr *vegeta.Result) string {
	if vr.Code >= 200 && vr.Code < 400 {
		return ""
	}
	if vr.Code == 0 {
		msg := vr.Error
		// Addresses and ports vary per connection; the kind of failure
		// is what groups them.
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return "no answer: " + msg
	}
	key := strconv.Itoa(int(vr.Code))
	var p problem
	if len(vr.Body) > 0 && json.Unmarshal(vr.Body, &p) == nil && p.Code != "" {
		key += " " + p.Code
	}
	return key
}

// finish computes the summaries once every result is in.
func (r *Result) finish() {
	for _, name := range Scenarios {
		if s := r.byName[name]; s != nil {
			s.Metrics.Close()
			r.Scenarios = append(r.Scenarios, s)
		}
	}
	r.Total.Metrics.Close()
}

// ErrorRate is the share of failed requests (0 to 1).
func (s *Stats) ErrorRate() float64 {
	if s.Metrics.Requests == 0 {
		return 0
	}
	// From the counts, not 1 - Success: 5 of 100 is exactly 0.05, and an
	// objective of 0.05 is then met.
	return float64(failed(s)) / float64(s.Metrics.Requests)
}

// Objectives are what a run must meet; zero values are not checked.
type Objectives struct {
	// P95 is the highest acceptable 95th percentile latency over all
	// requests of the run.
	P95 time.Duration
	// MaxErrorRate is the highest acceptable share of failed requests
	// (0 to 1) over all of them; negative means not checked.
	MaxErrorRate float64
}

// Missed returns one line per objective the run missed; a run that sent
// no request misses every objective given.
func (r *Result) Missed(o Objectives) []string {
	var out []string
	m := r.Total.Metrics
	if o.P95 > 0 {
		switch {
		case m.Requests == 0:
			out = append(out, "objective missed: p95 <= "+o.P95.String()+": no request was answered")
		case m.Latencies.P95 > o.P95:
			out = append(out, fmt.Sprintf("objective missed: p95 %s > %s", round(m.Latencies.P95), o.P95))
		}
	}
	if o.MaxErrorRate >= 0 {
		switch {
		case m.Requests == 0:
			out = append(out, fmt.Sprintf("objective missed: error rate <= %g: no request was sent", o.MaxErrorRate))
		case r.Total.ErrorRate() > o.MaxErrorRate:
			out = append(out, fmt.Sprintf("objective missed: error rate %.4f > %g (%d of %d requests failed)",
				r.Total.ErrorRate(), o.MaxErrorRate, failed(r.Total), m.Requests))
		}
	}
	return out
}

func failed(s *Stats) int {
	n := 0
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// round shortens a latency for people: three significant digits.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// WriteTable prints the summary: one row per scenario, and a total row
// for a mixed run, then any notes.
func (r *Result) WriteTable(w io.Writer) error {
	rows := r.Scenarios
	if len(r.Scenarios) != 1 {
		rows = append(slices.Clone(rows), r.Total)
	}
	// Numbers align right; names (padded to one width) and errors left.
	nameWidth := len("scenario")
	for _, s := range rows {
		nameWidth = max(nameWidth, len(s.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\trequests\trps\tp50\tp95\tp99\tmax\tsuccess\t  errors\n", nameWidth, "scenario")
	for _, s := range rows {
		m := s.Metrics
		fmt.Fprintf(tw, "%-*s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%.2f%%\t  %s\n", nameWidth, s.Name, m.Requests, m.Rate,
			round(m.Latencies.P50), round(m.Latencies.P95), round(m.Latencies.P99), round(m.Latencies.Max),
			100*m.Success, errorList(s.Errors))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes() {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

// errorList renders error counts, most frequent first: "401 unauthorized×3".
func errorList(errs map[string]int) string {
	if len(errs) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if errs[keys[i]] != errs[keys[j]] {
			return errs[keys[i]] > errs[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, errs[k])
	}
	return strings.Join(parts, ", ")
}

// Notes are the remarks a reader of the numbers needs.
func (r *Result) Notes() []string {
	var out []string
	if r.Interrupted {
		out = append(out, "note: the run was interrupted before its duration; the numbers cover what was sent until then")
	}
	if r.Total.Metrics.Requests == 0 {
		out = append(out, "note: no request was sent")
	}
	for k := range r.Total.Errors {
		if strings.HasPrefix(k, "429") {
			out = append(out, "note: 429 answers: "+rateLimitHint)
			break
		}
	}
	if r.ChainsLost > 0 {
		out = append(out, fmt.Sprintf("note: %d refresh-token chains failed and were replaced by a new sign-in (not measured)", r.ChainsLost))
	}
	if r.TokensRenewed > 0 {
		out = append(out, fmt.Sprintf("note: %d access tokens were renewed in the background (not measured)", r.TokensRenewed))
	}
	if r.RenewalsFailed > 0 {
		out = append(out, fmt.Sprintf("note: %d background renewals of access tokens failed", r.RenewalsFailed))
	}
	return out
}

// Describe is the run's settings in one line.
func (r *Result) Describe() string {
	load := fmt.Sprintf("%d requests/s (open model)", r.Rate)
	if r.Concurrency > 0 {
		load = fmt.Sprintf("%d workers (closed model)", r.Concurrency)
	}
	what := r.Scenario
	if r.Scenario == Mixed {
		parts := make([]string, len(r.Mix))
		for i, w := range r.Mix {
			parts[i] = fmt.Sprintf("%s=%d", w.Scenario, w.Weight)
		}
		what += " (" + strings.Join(parts, ",") + ")"
	}
	return fmt.Sprintf("%s against %s, %s for %s, %d accounts", what, r.Target, load, r.Duration, r.Users)
}
