// Package prometheus_test checks the alert rules (alerts.yaml) and the
// Grafana dashboards (../grafana/dashboards) against Prometheus' own rule
// and PromQL parsers, against the metrics a real Gatehouse server exposes,
// and, for several alerts, against series in the style of
// `promtool test rules`, without a running Prometheus.
package prometheus_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/require"
)

var promql = parser.NewParser(parser.Options{})

// loadRules parses alerts.yaml with rulefmt, which also parses every
// expression and template.
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile("alerts.yaml", false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	require.NotEmpty(t, groups.Groups)
	return groups
}

// TestAlertRulesParse: every rule parses, is an alert with a severity, a
// summary, a description and a runbook link to a section that exists.
func TestAlertRulesParse(t *testing.T) {
	runbook, err := os.ReadFile("../../docs/runbook.md")
	require.NoError(t, err)
	anchors := markdownAnchors(string(runbook))
	seen := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "group %s has a rule that is not an alert", g.Name)
			require.False(t, seen[r.Alert], "alert %s twice", r.Alert)
			seen[r.Alert] = true
			_, err := promql.ParseExpr(r.Expr)
			require.NoError(t, err, r.Alert)
			require.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], r.Alert)
			for _, a := range []string{"summary", "description", "runbook_url"} {
				require.NotEmpty(t, r.Annotations[a], "%s: %s", r.Alert, a)
			}
			link := r.Annotations["runbook_url"]
			require.True(t, strings.HasPrefix(link, "https://github.com/gatehouse-auth/gatehouse/blob/main/docs/runbook.md#"), link)
			anchor := link[strings.Index(link, "#")+1:]
			require.True(t, anchors[anchor], "%s: runbook has no section #%s", r.Alert, anchor)
		}
	}
	for _, want := range []string{"GatehouseInstanceDown", "GatehouseHigh5xxRate", "GatehouseAuthLatencyHigh", "GatehouseLoginFailureSpike",
		"GatehouseRefreshTokenReuse", "GatehouseCircuitBreakerOpen", "GatehouseJobBacklog", "GatehouseSigningKeyOld"} {
		require.True(t, seen[want], want)
	}
}

// markdownAnchors are the GitHub anchors of a document's headings.
func markdownAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		out[b.String()] = true
	}
	return out
}

type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		Datasource  struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("../grafana/dashboards/*.json")
	require.NoError(t, err)
	require.Len(t, files, 3, "system, business and security")
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var d dashboard
		require.NoError(t, json.Unmarshal(b, &d), f)
		out[filepath.Base(f)] = d
	}
	return out
}

// TestDashboardsParse: every panel reads the provisioned data source and
// every query parses.
func TestDashboardsParse(t *testing.T) {
	uids := map[string]bool{}
	for f, d := range loadDashboards(t) {
		require.NotEmpty(t, d.UID, f)
		require.False(t, uids[d.UID], "uid %s twice", d.UID)
		uids[d.UID] = true
		require.NotEmpty(t, d.Panels, f)
		for _, p := range d.Panels {
			require.NotEmpty(t, p.Title, f)
			require.NotEmpty(t, p.Description, "%s: %s", f, p.Title)
			require.Equal(t, "prometheus", p.Datasource.UID, "%s: %s", f, p.Title)
			require.NotEmpty(t, p.Targets, "%s: %s", f, p.Title)
			for _, tg := range p.Targets {
				_, err := promql.ParseExpr(tg.Expr)
				require.NoError(t, err, "%s: %s: %s", f, p.Title, tg.Expr)
			}
		}
	}
}

// metricNames lists the metric names expr selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	require.NoError(t, err, expr)
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					out = append(out, m.Value)
				}
			}
		}
		return nil
	})
	return out
}

// TestEveryMetricUsedIsExposed: each metric a dashboard or an alert reads
// is in a scrape of a real server (the gatehouse binary built from the
// parent module, serving on SQLite), so a renamed metric cannot leave a
// panel blank or an alert silent.
func TestEveryMetricUsedIsExposed(t *testing.T) {
	exposed := scrapeRealServer(t)
	used := map[string][]string{} // name -> where
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			for _, n := range metricNames(t, r.Expr) {
				used[n] = append(used[n], "alert "+r.Alert)
			}
		}
	}
	for f, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				for _, n := range metricNames(t, tg.Expr) {
					used[n] = append(used[n], f+": "+p.Title)
				}
			}
		}
	}
	var missing []string
	for n, where := range used {
		if n == "up" { // Prometheus' own, per target
			continue
		}
		if !exposed[n] {
			missing = append(missing, n+" (used by "+strings.Join(where, "; ")+")")
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "metrics the server does not expose")
}

var (
	scrapeOnce sync.Once
	scraped    map[string]bool
	scrapeErr  string
)

// scrapeRealServer builds cmd/gatehouse, starts `gatehouse serve` on a
// fresh SQLite data dir and a free port, and answers the metric names of
// its /api/v1/metrics (histograms and summaries with their series' suffixes).
func scrapeRealServer(t *testing.T) map[string]bool {
	t.Helper()
	scrapeOnce.Do(func() {
		scraped, scrapeErr = startAndScrape(t)
	})
	require.Empty(t, scrapeErr)
	return scraped
}

func startAndScrape(t *testing.T) (map[string]bool, string) {
	dir, err := os.MkdirTemp("", "gatehouse-deploy-")
	if err != nil {
		return nil, err.Error()
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "gatehouse")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		return nil, "go build: " + err.Error() + "\n" + string(out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err.Error()
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve")
	srv.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") { // the test's own settings, not the caller's
			srv.Env = append(srv.Env, kv)
		}
	}
	srv.Env = append(srv.Env, "GATEHOUSE_ADDR="+addr, "GATEHOUSE_DATA_DIR="+filepath.Join(dir, "data"),
		"GATEHOUSE_LOG_LEVEL=error", "GATEHOUSE_ARGON2_MEMORY_KIB=64", "GATEHOUSE_ARGON2_ITERATIONS=1", "GATEHOUSE_ARGON2_PARALLELISM=1")
	var logs strings.Builder
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		return nil, err.Error()
	}
	defer func() { cancel(); _ = srv.Wait() }()

	base := "http://" + addr + "/api/v1"
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(base + "/health/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, "server not ready: " + logs.String()
		}
		time.Sleep(100 * time.Millisecond)
	}
	// One registration: its email job makes the per-attempt job series
	// (labelled by job kind, so absent until a job ran).
	reg, err := http.Post(base+"/auth/register", "application/json",
		strings.NewReader(`{"email":"deploy-test@example.com","password":"violet-Anchor-drift-93-Quasar"}`))
	if err != nil {
		return nil, err.Error()
	}
	_ = reg.Body.Close()
	var families map[string]*dto.MetricFamily
	for {
		if families, err = scrape(base); err != nil {
			return nil, err.Error()
		}
		if families["gatehouse_job_attempts_total"] != nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, "no job attempt counted: " + logs.String()
		}
		time.Sleep(200 * time.Millisecond)
	}
	names := map[string]bool{}
	for name, mf := range families {
		names[name] = true
		switch mf.GetType().String() {
		case "HISTOGRAM":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "SUMMARY":
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	return names, ""
}

func scrape(base string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(string(body)))
}

// alertCase is a `promtool test rules` case: series loaded at one-minute
// steps, then the alert is evaluated each minute up to at, and must be
// firing (or not) with the given labels.
type alertCase struct {
	name   string
	alert  string
	series string
	at     time.Duration
	firing bool
	labels map[string]string
}

func TestAlertRulesFire(t *testing.T) {
	byName := map[string]rulefmt.Rule{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			byName[r.Alert] = r
		}
	}
	for _, c := range []alertCase{
		{
			name: "refresh token reuse fires at once", alert: "GatehouseRefreshTokenReuse",
			series: `gatehouse_refresh_total{result="reused",instance="a"} 0 0 0 1 1 1`,
			at:     5 * time.Minute, firing: true,
		},
		{
			name: "no reuse, no alert", alert: "GatehouseRefreshTokenReuse",
			series: `gatehouse_refresh_total{result="reused",instance="a"} 0 0 0 0 0 0`,
			at:     5 * time.Minute, firing: false,
		},
		{
			name: "breaker open five minutes", alert: "GatehouseCircuitBreakerOpen",
			series: `gatehouse_circuit_breaker_state{name="smtp",instance="a"} 0 2 2 2 2 2 2 2 2`,
			at:     8 * time.Minute, firing: true, labels: map[string]string{"name": "smtp", "severity": "warning"},
		},
		{
			name: "breaker open briefly: pending only", alert: "GatehouseCircuitBreakerOpen",
			series: `gatehouse_circuit_breaker_state{name="smtp",instance="a"} 0 2 2 2 0 0 0 0 0`,
			at:     8 * time.Minute, firing: false,
		},
		{
			name: "job backlog ten minutes", alert: "GatehouseJobBacklog",
			series: `gatehouse_jobs_oldest_age_seconds{queue="email",instance="a"} 0+60x20`,
			at:     20 * time.Minute, firing: true, labels: map[string]string{"queue": "email"},
		},
		{
			name: "instance down two minutes", alert: "GatehouseInstanceDown",
			series: `up{job="gatehouse",instance="gatehouse-2:8080"} 1 1 0 0 0 0`,
			at:     5 * time.Minute, firing: true, labels: map[string]string{"instance": "gatehouse-2:8080", "severity": "critical"},
		},
		{
			name: "5xx over 5 percent", alert: "GatehouseHigh5xxRate",
			series: `http_requests_total{job="gatehouse",instance="a",status="200",route="GET /api/v1/auth/me",method="GET"} 0+100x20
http_requests_total{job="gatehouse",instance="a",status="503",route="GET /api/v1/auth/me",method="GET"} 0+20x20`,
			at: 15 * time.Minute, firing: true, labels: map[string]string{"instance": "a"},
		},
		{
			name: "slow logins", alert: "GatehouseAuthLatencyHigh",
			series: `http_server_request_duration_seconds_bucket{job="gatehouse",route="POST /api/v1/auth/login",method="POST",status="200",le="0.1"} 0+1x30
http_server_request_duration_seconds_bucket{job="gatehouse",route="POST /api/v1/auth/login",method="POST",status="200",le="0.2"} 0+2x30
http_server_request_duration_seconds_bucket{job="gatehouse",route="POST /api/v1/auth/login",method="POST",status="200",le="0.5"} 0+10x30
http_server_request_duration_seconds_bucket{job="gatehouse",route="POST /api/v1/auth/login",method="POST",status="200",le="+Inf"} 0+10x30`,
			at: 25 * time.Minute, firing: true, labels: map[string]string{"route": "POST /api/v1/auth/login"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, ok := byName[c.alert]
			require.True(t, ok, c.alert)
			firing := evalAlert(t, r, "load 1m\n  "+c.series, c.at)
			if !c.firing {
				require.Empty(t, firing)
				return
			}
			require.Len(t, firing, 1)
			for k, v := range c.labels {
				require.Equal(t, v, firing[0].Get(k), k)
			}
			require.Equal(t, c.alert, firing[0].Get("alertname"))
		})
	}
}

// evalAlert loads series into a test storage and evaluates rule every
// minute from 0 to at, as Prometheus would, and answers the label sets of
// the alerts firing at the end.
func evalAlert(t *testing.T, r rulefmt.Rule, load string, at time.Duration) []labels.Labels {
	t.Helper()
	storage := promqltest.LoadedStorage(t, load)
	engine := promqltest.NewTestEngine(t, false, 5*time.Minute, 100000)
	expr, err := promql.ParseExpr(r.Expr)
	require.NoError(t, err)
	rule := rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
		labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", true, slog.New(slog.DiscardHandler))
	query := rules.EngineQueryFunc(engine, storage)
	start := time.Unix(0, 0).UTC()
	for ts := time.Duration(0); ts <= at; ts += time.Minute {
		_, err := rule.Eval(context.Background(), 0, start.Add(ts), query, nil, 0)
		require.NoError(t, err)
	}
	var out []labels.Labels
	for _, a := range rule.ActiveAlerts() {
		if a.State == rules.StateFiring {
			out = append(out, a.Labels)
		}
	}
	return out
}

// TestDocsListEveryPanelAndAlert: docs/observability.md lists, under a
// heading per dashboard, exactly that dashboard's panels (as
// "- **Title**: description" lines, in the dashboard's order, with the
// panel's own description), and has a row for exactly the alerts
// of alerts.yaml, so the operator's description of the dashboards and
// alerts cannot drift from the files.
func TestDocsListEveryPanelAndAlert(t *testing.T) {
	b, err := os.ReadFile("../../docs/observability.md")
	require.NoError(t, err)
	docPanels := map[string][]string{} // dashboard title -> "panel title: description"
	var docAlerts []string
	section, dash := "", ""
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "## "):
			section, dash = strings.TrimPrefix(line, "## "), ""
		case section == "Dashboards" && strings.HasPrefix(line, "### "):
			dash = strings.TrimPrefix(line, "### ")
		case dash != "" && strings.HasPrefix(line, "- **"):
			docPanels[dash] = append(docPanels[dash], strings.Replace(strings.TrimPrefix(line, "- **"), "**:", ":", 1))
		case section == "Alerts" && strings.HasPrefix(line, "| `"):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			docAlerts = append(docAlerts, name)
		}
	}
	filePanels := map[string][]string{}
	for _, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			filePanels[d.Title] = append(filePanels[d.Title], p.Title+": "+p.Description)
		}
	}
	require.Equal(t, filePanels, docPanels, "docs/observability.md § Dashboards against the dashboards' panels")
	var fileAlerts []string
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			fileAlerts = append(fileAlerts, r.Alert)
		}
	}
	require.ElementsMatch(t, fileAlerts, docAlerts, "docs/observability.md § Alerts against alerts.yaml")
}
