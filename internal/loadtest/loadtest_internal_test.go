package loadtest

import (
	"bytes"
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestParseMix(t *testing.T) {
	mix, err := ParseMix(DefaultMix)
	require.NoError(t, err)
	require.Equal(t, []Weight{{Login, 1}, {Me, 8}, {Refresh, 2}, {AuthzCheck, 4}, {JWKS, 1}}, mix)

	mix, err = ParseMix(" jwks = 3 , me=0,")
	require.NoError(t, err)
	require.Equal(t, []Weight{{JWKS, 3}}, mix, "zero weights leave a scenario out")

	for in, want := range map[string]string{
		"":                 "gives no scenario a positive weight",
		"me=0":             "gives no scenario a positive weight",
		"login":            `"login" is not scenario=weight`,
		"logout=1":         `unknown scenario "logout"`,
		"me=1,me=2":        "me is given twice",
		"me=-1":            "whole number from 0 to 1000",
		"me=1.5":           "whole number from 0 to 1000",
		"me=1001":          "whole number from 0 to 1000",
		"mixed=1":          `unknown scenario "mixed"`,
		"authz-check=x,a=": "whole number",
	} {
		_, err := ParseMix(in)
		require.ErrorContains(t, err, want, in)
		require.True(t, strings.HasPrefix(err.Error(), "--mix: "), "errors name the flag: %v", err)
	}
}

// The mixed targeter sends each scenario exactly its share of every
// cycle, spread out rather than in runs.
func TestSmoothCycle(t *testing.T) {
	mix, err := ParseMix(DefaultMix)
	require.NoError(t, err)
	cycle := smoothCycle(mix)
	require.Len(t, cycle, 16)
	counts := map[string]int{}
	for _, s := range cycle {
		counts[s]++
	}
	require.Equal(t, map[string]int{Login: 1, Me: 8, Refresh: 2, AuthzCheck: 4, JWKS: 1}, counts)
	for i := 1; i < len(cycle); i++ {
		if cycle[i] == cycle[i-1] {
			require.Equal(t, Me, cycle[i], "only the half-share scenario may repeat: %v", cycle)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{Load: Load{Target: "http://127.0.0.1:8080/", Scenario: Me, Rate: 5, Duration: time.Second, Users: 1}, Timeout: time.Second}
	}
	c := good()
	u, err := c.validate()
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8080", baseURL(u))
	require.Equal(t, "documents:read", c.Permission)

	c = good()
	c.Scenario = Mixed
	_, err = c.validate()
	require.NoError(t, err)
	require.Len(t, c.Mix, 5, "a mixed run without a mix takes the default one")

	for want, change := range map[string]func(*Config){
		"--scenario: unknown scenario":        func(c *Config) { c.Scenario = "logout" },
		"--rate and --concurrency exclude":    func(c *Config) { c.Concurrency = 2 },
		"give --rate":                         func(c *Config) { c.Rate = 0 },
		"--rate must be positive":             func(c *Config) { c.Rate = -1 },
		"--duration must be positive":         func(c *Config) { c.Duration = 0 },
		"--users must be from 1 to 10000":     func(c *Config) { c.Users = 0 },
		"--password must have at least 12":    func(c *Config) { c.Password = "short" },
		"--timeout must be positive":          func(c *Config) { c.Timeout = 0 },
		`--target: "ftp://h" is not a base`:   func(c *Config) { c.Target = "ftp://h" },
		`--target: "127.0.0.1:80" is not`:     func(c *Config) { c.Target = "127.0.0.1:80" },
		`--target: "http://u:p@h" is not`:     func(c *Config) { c.Target = "http://u:p@h" },
		`--target: "http://h/?a=1" is not`:    func(c *Config) { c.Target = "http://h/?a=1" },
		"--concurrency must be at most 10000": func(c *Config) { c.Rate, c.Concurrency = 0, 10001 },
	} {
		c := good()
		change(&c)
		_, err := c.validate()
		require.ErrorContains(t, err, want)
	}
}

func TestCheckLoopback(t *testing.T) {
	ctx := context.Background()
	for _, target := range []string{"http://127.0.0.1:8080", "http://127.9.9.9", "http://[::1]:80", "http://localhost:8080", "http://[::ffff:127.0.0.1]:1"} {
		u, err := url.Parse(target)
		require.NoError(t, err)
		require.NoError(t, checkLoopback(ctx, u, false), target)
	}
	for _, target := range []string{"http://192.0.2.1:8080", "http://10.0.0.1", "http://[2001:db8::1]:80", "http://0.0.0.0:8080", "http://[::]:80"} {
		u, err := url.Parse(target)
		require.NoError(t, err)
		err = checkLoopback(ctx, u, false)
		require.ErrorContains(t, err, "is not a loopback address", target)
		require.ErrorContains(t, err, "--allow-remote", target)
		require.NoError(t, checkLoopback(ctx, u, true), target)
	}
}

// The dial guard sees the address actually dialled, after resolution.
func TestLoopbackOnlyDialGuard(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:80", "127.1.2.3:8080", "[::1]:443", "[::ffff:127.0.0.1]:80"} {
		require.NoError(t, loopbackOnly("tcp", addr, nil), addr)
	}
	for _, addr := range []string{"192.0.2.1:80", "[2001:db8::1]:80", "10.1.1.1:8080", "0.0.0.0:80", "localhost:80", "garbage"} {
		require.ErrorIs(t, loopbackOnly("tcp", addr, nil), errNotLoopback, addr)
	}
	// The client uses it: a dial to a non-loopback address fails before
	// any packet (a TEST-NET address, which nothing answers anyway).
	c := newClient(time.Second, false)
	_, err := c.Get("http://192.0.2.1:9/")
	require.ErrorIs(t, err, errNotLoopback)
}

func TestSamplesThinEvenly(t *testing.T) {
	s := samples{limit: 8}
	for i := range 100 {
		s.add(sample{at: float32(i)})
	}
	require.LessOrEqual(t, len(s.list), 8)
	require.GreaterOrEqual(t, len(s.list), 4)
	gap := s.list[1].at - s.list[0].at
	for i := 1; i < len(s.list); i++ {
		require.Equal(t, gap, s.list[i].at-s.list[i-1].at, "kept samples are evenly spaced: %v", s.list)
	}
	require.Equal(t, float32(s.stride), gap)
	require.Greater(t, s.list[len(s.list)-1].at, float32(80), "the kept samples reach the end of the run")
}

// result builds a Result from synthetic answers: latency and status per
// request, one request every 10 ms.
func result(t *testing.T, name string, answers ...vegeta.Result) *Result {
	t.Helper()
	cfg := &Config{Load: Load{Scenario: name, Rate: 100, Duration: time.Second, Users: 1}}
	r := newResult(cfg, "http://127.0.0.1:1")
	r.Started = time.Unix(1000, 0)
	for i := range answers {
		a := answers[i]
		a.Timestamp = r.Started.Add(time.Duration(i) * 10 * time.Millisecond)
		r.add(name, &a)
	}
	r.finish()
	return r
}

func ok(latency time.Duration) vegeta.Result { return vegeta.Result{Code: 200, Latency: latency} }

func TestObjectives(t *testing.T) {
	var answers []vegeta.Result
	for range 95 {
		answers = append(answers, ok(time.Millisecond))
	}
	for range 5 {
		answers = append(answers, vegeta.Result{Code: 401, Latency: 50 * time.Millisecond, Error: "401 Unauthorized",
			Body: []byte(`{"status":401,"code":"invalid_refresh_token"}`)})
	}
	r := result(t, Refresh, answers...)
	require.Equal(t, map[string]int{"401 invalid_refresh_token": 5}, r.Total.Errors)
	require.InDelta(t, 0.05, r.Total.ErrorRate(), 1e-9)

	require.Empty(t, r.Missed(Objectives{MaxErrorRate: -1}), "nothing asked, nothing missed")
	require.Empty(t, r.Missed(Objectives{P95: time.Second, MaxErrorRate: 0.05}))
	missed := r.Missed(Objectives{P95: time.Nanosecond, MaxErrorRate: 0.01})
	require.Len(t, missed, 2)
	require.Regexp(t, `^objective missed: p95 \S+ > 1ns$`, missed[0])
	require.Equal(t, "objective missed: error rate 0.0500 > 0.01 (5 of 100 requests failed)", missed[1])

	empty := result(t, Me)
	require.Len(t, empty.Missed(Objectives{P95: time.Second, MaxErrorRate: 0}), 2, "a run that sent nothing meets no objective")
	require.Empty(t, empty.Missed(Objectives{MaxErrorRate: -1}))
}

func TestErrorKey(t *testing.T) {
	for want, r := range map[string]vegeta.Result{
		"":                              {Code: 204},
		"429 rate_limited":              {Code: 429, Body: []byte(`{"code":"rate_limited"}`)},
		"502":                           {Code: 502, Body: []byte(`<html>bad gateway</html>`)},
		"no answer: connection refused": {Code: 0, Error: `Post "http://127.0.0.1:1/x": dial tcp 127.0.0.1:1: connect: connection refused`},
	} {
		require.Equal(t, want, errorKey(&r))
	}
	require.Empty(t, errorKey(&vegeta.Result{Code: 302}), "vegeta counts 3xx as success; so does the table")
}

func TestTableAndHTML(t *testing.T) {
	var answers []vegeta.Result
	for i := range 200 {
		answers = append(answers, ok(time.Duration(i+1)*100*time.Microsecond))
	}
	answers = append(answers, vegeta.Result{Code: 0, Latency: time.Second, Error: "Get \"x\": context deadline exceeded"})
	r := result(t, JWKS, answers...)

	var table bytes.Buffer
	require.NoError(t, r.WriteTable(&table))
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	require.Len(t, lines, 2, "one scenario: no total row\n%s", table.String())
	require.Regexp(t, `^\s*scenario\s+requests\s+rps\s+p50\s+p95\s+p99\s+max\s+success\s+errors$`, lines[0])
	require.Regexp(t, `^\s*jwks\s+201\s+[\d.]+\s+\S+\s+\S+\s+\S+\s+1s\s+99\.50%\s+no answer: context deadline exceeded ×1$`, lines[1])

	var page bytes.Buffer
	require.NoError(t, r.WriteHTML(&page, Objectives{P95: time.Nanosecond, MaxErrorRate: -1}))
	html := page.String()
	require.Equal(t, 3, strings.Count(html, "<svg"), "latency over time, requests per second, histogram")
	require.Contains(t, html, "<circle")
	require.Contains(t, html, "<rect")
	require.Contains(t, html, "objective missed: p95")
	requireSelfContained(t, html)

	// A run without a single answer still renders.
	page.Reset()
	require.NoError(t, result(t, Me).WriteHTML(&page, Objectives{MaxErrorRate: -1}))
	require.Contains(t, page.String(), "No requests were answered")
	requireSelfContained(t, page.String())
}

// requireSelfContained fails unless the page loads nothing: no scripts,
// no src or href attributes, no CSS imports or url()s.
func requireSelfContained(t *testing.T, html string) {
	t.Helper()
	require.NotRegexp(t, regexp.MustCompile(`(?i)<script|<link|<iframe|<img|\b(src|href|xlink:href)\s*=|@import|url\(`), html)
}

// A target's headers are shared between requests and built once per
// access token: a renewed token is what the next request carries.
func TestBearerTargetsFollowRenewedTokens(t *testing.T) {
	tg := newTargets("http://127.0.0.1:1", []*account{newAccount("run", 0, "pw")}, "documents:read")
	b := &bearer{acct: tg.accounts[0]}
	first, second := "first-token", "second-token"
	b.token.Store(&first)
	tg.bearers = []*bearer{b}
	auth := func(name string) (string, string) {
		var tgt vegeta.Target
		if err := tg.set(name, &tgt); err != nil {
			t.Fatal(err)
		}
		return tgt.Header.Get("Authorization"), tgt.Header.Get("Content-Type")
	}
	if a, ct := auth(AuthzCheck); a != "Bearer first-token" || ct != "application/json" {
		t.Fatalf("authz-check: Authorization %q, Content-Type %q", a, ct)
	}
	if a, ct := auth(Me); a != "Bearer first-token" || ct != "" {
		t.Fatalf("me: Authorization %q, Content-Type %q", a, ct)
	}
	b.token.Store(&second)
	if a, _ := auth(AuthzCheck); a != "Bearer second-token" {
		t.Fatalf("after renewal, authz-check sends %q", a)
	}
	if a, _ := auth(Me); a != "Bearer second-token" {
		t.Fatalf("after renewal, me sends %q", a)
	}
}
