package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// loadtestRow is one line of the loadtest table.
type loadtestRow struct {
	requests int
	success  string
	errors   string
}

// loadtestTable parses the table the command prints, by scenario.
func loadtestTable(t *testing.T, out string) map[string]loadtestRow {
	t.Helper()
	row := regexp.MustCompile(`(?m)^\s*(login|refresh|me|authz-check|jwks|health|total)\s+(\d+)\s+[\d.]+\s+\S+\s+\S+\s+\S+\s+\S+\s+([\d.]+%)\s+(.+)$`)
	rows := map[string]loadtestRow{}
	for _, m := range row.FindAllStringSubmatch(out, -1) {
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		rows[m[1]] = loadtestRow{requests: n, success: m[3], errors: strings.TrimSpace(m[4])}
	}
	require.NotEmpty(t, rows, "no table in:\n%s", out)
	return rows
}

// requireSelfContainedReport fails unless the report has its plots and
// loads nothing from anywhere.
func requireSelfContainedReport(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	page := string(raw)
	require.Equal(t, 3, strings.Count(page, "<svg"), "latency over time, requests per second, histogram")
	require.Contains(t, page, "<circle", "latency-over-time dots")
	require.Contains(t, page, "<rect", "histogram bars")
	require.NotRegexp(t, `(?i)<script|<link|<iframe|<img|\b(src|href|xlink:href)\s*=|@import|url\(`, page)
}

// Every scenario, run by the command against a whole in-process server:
// the table lists it with answered requests and no error, the report has
// its plots, and met objectives exit 0. Short and slow, so the suite stays
// quick under -race: the numbers are not what is tested.
func TestLoadtestScenarios(t *testing.T) {
	env := apptest.New(t, "sqlite", nil)
	dir := t.TempDir()
	for _, tc := range []struct {
		scenario string
		args     []string
	}{
		{"login", []string{"--rate", "10", "--duration", "1s"}},
		// Four workers over one account's four chains: a chain used twice
		// at once would answer 401 refresh_token_reused.
		{"refresh", []string{"--concurrency", "4", "--duration", "1s", "--users", "1"}},
		{"me", []string{"--rate", "20", "--duration", "1s"}},
		{"authz-check", []string{"--concurrency", "2", "--duration", "1s"}},
		{"jwks", []string{"--rate", "20", "--duration", "1s"}},
		{"health", []string{"--rate", "20", "--duration", "1s"}},
		{"mixed", []string{"--rate", "40", "--duration", "1s", "--mix", "login=1,me=2,refresh=2,authz-check=2,jwks=1,health=1"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			report := filepath.Join(dir, tc.scenario+".html")
			args := append([]string{"loadtest", "--target", env.Server.URL, "--scenario", tc.scenario, "--users", "2",
				"--report", report, "--p95", "10s", "--max-error-rate", "0"}, tc.args...)
			out, err := run(t, nil, args...)
			require.NoError(t, err, out)
			rows := loadtestTable(t, out)
			names := []string{tc.scenario}
			if tc.scenario == "mixed" {
				names = []string{"login", "me", "refresh", "authz-check", "jwks", "health", "total"}
			}
			require.Len(t, rows, len(names), out)
			for _, name := range names {
				r, ok := rows[name]
				require.True(t, ok, "%s missing from\n%s", name, out)
				require.Positive(t, r.requests, out)
				require.Equal(t, "100.00%", r.success, out)
				require.Equal(t, "-", r.errors, out)
			}
			require.Contains(t, out, "report written to "+report)
			requireSelfContainedReport(t, report)
		})
	}
}

// Objectives decide the exit code, and the report is written either way.
// Failed requests are counted by status and problem code.
func TestLoadtestObjectives(t *testing.T) {
	env := apptest.New(t, "sqlite", nil)
	report := filepath.Join(t.TempDir(), "r.html")
	base := []string{"loadtest", "--target", env.Server.URL, "--users", "1", "--duration", "1s", "--rate", "10", "--report", report}

	out, err := run(t, nil, append(base, "--scenario", "jwks", "--p95", "1ns")...)
	require.Error(t, err)
	require.Regexp(t, `^loadtest: objective missed: p95 \S+ > 1ns$`, err.Error())
	require.Equal(t, "-", loadtestTable(t, out)["jwks"].errors, "a slow run is not an erroneous one")
	requireSelfContainedReport(t, report)
	page, _ := os.ReadFile(report)
	require.Contains(t, string(page), "objective missed: p95")

	// A permission that is not resource:action fails every check with 422.
	out, err = run(t, nil, append(base, "--scenario", "authz-check", "--permission", "nonsense", "--max-error-rate", "0.5")...)
	require.Error(t, err)
	require.Regexp(t, `^loadtest: objective missed: error rate 1\.0000 > 0\.5 \(\d+ of \d+ requests failed\)$`, err.Error())
	row := loadtestTable(t, out)["authz-check"]
	require.Equal(t, "0.00%", row.success)
	require.Equal(t, "422 validation_failed ×"+strconv.Itoa(row.requests), row.errors)

	// Without objectives, errors alone do not fail the command.
	_, err = run(t, nil, append(base, "--scenario", "authz-check", "--permission", "nonsense")...)
	require.NoError(t, err)
}

// A rate-limiting target is refused at setup with the fix.
func TestLoadtestRateLimitedTarget(t *testing.T) {
	env := apptest.New(t, "sqlite", map[string]string{
		"GATEHOUSE_RATE_LIMIT_ENABLED": "true", "GATEHOUSE_RATE_LIMIT_REGISTER": "1/1h"})
	report := filepath.Join(t.TempDir(), "r.html")
	_, err := run(t, nil, "loadtest", "--target", env.Server.URL, "--users", "3", "--duration", "1s", "--report", report)
	require.Error(t, err)
	require.Contains(t, err.Error(), "loadtest: setup: POST /api/v1/auth/register answered 429 Too Many Requests rate_limited")
	require.Contains(t, err.Error(), "GATEHOUSE_RATE_LIMIT_ENABLED=false")
	require.NoFileExists(t, report, "no load, no report")
}

// Bad flags and non-loopback targets stop the command before any request,
// with a line naming the flag.
func TestLoadtestRefusals(t *testing.T) {
	for want, args := range map[string][]string{
		"--target: 192.0.2.1 is not a loopback address (192.0.2.1): load tests send traffic only to 127.0.0.0/8 or ::1 by default; give --allow-remote": {"--target", "http://192.0.2.1:8080"},
		"--target: 2001:db8::1 is not a loopback address":           {"--target", "http://[2001:db8::1]:8080"},
		"--rate and --concurrency exclude each other":               {"--rate", "5", "--concurrency", "2"},
		"--rate must be positive":                                   {"--rate", "0"},
		"--concurrency must be positive":                            {"--concurrency", "0"},
		`--scenario: unknown scenario "logout"`:                     {"--scenario", "logout"},
		"--mix applies only to --scenario mixed":                    {"--scenario", "me", "--mix", "me=1"},
		`--mix: unknown scenario "logout"`:                          {"--mix", "logout=1"},
		"--max-error-rate must be a fraction from 0 to 1":           {"--max-error-rate", "1.5"},
		"--p95 must be a positive duration":                         {"--p95", "0s"},
		"--duration must be positive":                               {"--duration", "0s"},
		"--users must be from 1 to 10000":                           {"--users", "0"},
		"--password must have at least 12 characters":               {"--password", "short"},
		`--target: "ftp://127.0.0.1" is not a base URL`:             {"--target", "ftp://127.0.0.1"},
		"--report: directory":                                       {"--report", "/nonexistent-dir/r.html"},
		"target http://127.0.0.1:1 is not a ready Gatehouse server": {"--target", "http://127.0.0.1:1"},
		`invalid argument "fast" for "--rate" flag`:                 {"--rate", "fast"},
		`unknown flag: --rps`:                                       {"--rps", "5"},
	} {
		_, err := run(t, nil, append([]string{"loadtest", "--duration", "1s"}, args...)...)
		require.ErrorContains(t, err, want, args)
	}

	out, err := run(t, nil, "loadtest", "--help")
	require.NoError(t, err)
	for _, flag := range []string{"--target", "--scenario", "--mix", "--rate", "--concurrency", "--duration", "--users", "--password",
		"--report", "--p95", "--max-error-rate", "--allow-remote", "GATEHOUSE_RATE_LIMIT_ENABLED=false"} {
		require.Contains(t, out, flag)
	}
}

// The mixed scenario against a server on PostgreSQL and Redis, as
// docs/performance.md runs it.
func TestLoadtestMixedOnPostgresAndRedis(t *testing.T) {
	redisURL := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if os.Getenv("GATEHOUSE_TEST_POSTGRES_URL") == "" || redisURL == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_URL and GATEHOUSE_TEST_REDIS_URL not both set")
	}
	env := apptest.New(t, "postgres", map[string]string{"GATEHOUSE_REDIS_URL": redisURL})
	out, err := run(t, nil, "loadtest", "--target", env.Server.URL, "--users", "2", "--rate", "30", "--duration", "1s",
		"--report", filepath.Join(t.TempDir(), "r.html"), "--max-error-rate", "0")
	require.NoError(t, err, out)
	total := loadtestTable(t, out)["total"]
	require.Positive(t, total.requests)
	require.Equal(t, "-", total.errors)
}
