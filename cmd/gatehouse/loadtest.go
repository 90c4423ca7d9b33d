package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/loadtest"
)

// defaultRate is the open-model rate when neither --rate nor
// --concurrency is given.
const defaultRate = 50

func newLoadtestCmd() *cobra.Command {
	var (
		cfg          loadtest.Config
		mix          string
		report       string
		p95          time.Duration
		maxErrorRate float64
	)
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Load a running server with a scenario and report throughput, latency and errors",
		Long: `Send load to a running Gatehouse server and measure it.

The run first creates its own accounts through the API (POST /auth/register,
then /auth/login), then sends one scenario, or a weighted mix, for --duration:

  login        POST /api/v1/auth/login (a password hash per request)
  refresh      POST /api/v1/auth/refresh, each chain of rotating refresh tokens used one request at a time
  me           GET  /api/v1/auth/me with a bearer token
  authz-check  POST /api/v1/authz/check with a bearer token
  jwks         GET  /.well-known/jwks.json
  health       GET  /api/v1/health/live (no database, no token: the ceiling to compare with)
  mixed        the scenarios named in --mix, weighted by it

Load is either a rate (--rate, requests per second, sent on schedule whatever
the latency: the open model) or a number of workers each sending its next
request when the last is answered (--concurrency: the closed model).

It prints a table (requests, rps, p50/p95/p99/max latency, success, errors by
status and problem code), writes an HTML report with latency-over-time and
histogram plots, and exits 1 when an objective (--p95, --max-error-rate) is
missed.

The target's rate limits refuse a load test: run the server with
GATEHOUSE_RATE_LIMIT_ENABLED=false (or generous limits). Accounts the run
creates (loadtest-<run>-<n>@example.com) stay in the database: use a
throwaway one. Only loopback targets are loaded unless --allow-remote is given.`,
		Example: `  gatehouse loadtest --scenario login --rate 20 --duration 30s
  gatehouse loadtest --scenario refresh --concurrency 8 --duration 1m
  gatehouse loadtest --scenario mixed --mix login=1,me=8,refresh=2,authz-check=4,jwks=1 --rate 200 --p95 50ms --max-error-rate 0.001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := runLoadtest(cmd, cfg, mix, report, p95, maxErrorRate); err != nil {
				return fmt.Errorf("loadtest: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Target, "target", "http://127.0.0.1:8080", "base URL of the server to load")
	f.StringVar(&cfg.Scenario, "scenario", loadtest.Mixed, "login, refresh, me, authz-check, jwks, health or mixed")
	f.StringVar(&mix, "mix", loadtest.DefaultMix, "weights of the mixed scenario")
	f.IntVar(&cfg.Rate, "rate", 0, fmt.Sprintf("requests per second, open model (default %d unless --concurrency is given)", defaultRate))
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "workers sending back to back, closed model (excludes --rate)")
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to send requests")
	f.IntVar(&cfg.Users, "users", 8, "accounts to create and spread the load over")
	f.StringVar(&cfg.Password, "password", "", "password of the created accounts (default: a random one per run)")
	f.StringVar(&cfg.Permission, "permission", "documents:read", "permission the authz-check scenario asks about")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "give up on a request after this long (counts as an error)")
	f.StringVar(&report, "report", "loadtest-report.html", "HTML report to write (\"\" for none)")
	f.DurationVar(&p95, "p95", 0, "objective: exit 1 when the p95 latency of all requests is above this")
	f.Float64Var(&maxErrorRate, "max-error-rate", 0, "objective: exit 1 when the share of failed requests is above this fraction")
	f.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	return cmd
}

// runLoadtest checks the flags, runs the load, prints the table, writes
// the report and returns an error for every missed objective.
func runLoadtest(cmd *cobra.Command, cfg loadtest.Config, mix, report string, p95 time.Duration, maxErrorRate float64) error {
	flags := cmd.Flags()
	if flags.Changed("mix") && cfg.Scenario != loadtest.Mixed {
		return fmt.Errorf("--mix applies only to --scenario %s", loadtest.Mixed)
	}
	if cfg.Scenario == loadtest.Mixed {
		m, err := loadtest.ParseMix(mix)
		if err != nil {
			return err
		}
		cfg.Mix = m
	}
	if !flags.Changed("rate") && !flags.Changed("concurrency") {
		cfg.Rate = defaultRate
	}
	if flags.Changed("rate") && cfg.Rate == 0 {
		return errors.New("--rate must be positive; for as fast as possible give --concurrency N")
	}
	if flags.Changed("concurrency") && cfg.Concurrency == 0 {
		return errors.New("--concurrency must be positive")
	}
	if flags.Changed("p95") && p95 <= 0 {
		return errors.New("--p95 must be a positive duration, e.g. 50ms")
	}
	objectives := loadtest.Objectives{P95: p95, MaxErrorRate: -1}
	if flags.Changed("max-error-rate") {
		if maxErrorRate < 0 || maxErrorRate > 1 {
			return fmt.Errorf("--max-error-rate must be a fraction from 0 to 1 (0.01 is 1%%), not %g", maxErrorRate)
		}
		objectives.MaxErrorRate = maxErrorRate
	}
	reportPath := ""
	if report != "" {
		abs, err := filepath.Abs(report)
		if err != nil {
			return fmt.Errorf("--report: %w", err)
		}
		// Fail now rather than after a long run.
		if st, err := os.Stat(filepath.Dir(abs)); err != nil || !st.IsDir() {
			return fmt.Errorf("--report: directory %s does not exist", filepath.Dir(abs))
		}
		reportPath = abs
	}
	stderr := cmd.ErrOrStderr()
	cfg.Log = func(format string, args ...any) { fmt.Fprintf(stderr, "loadtest: "+format+"\n", args...) }

	res, err := loadtest.Run(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, res.Describe())
	if err := res.WriteTable(out); err != nil {
		return err
	}
	if reportPath != "" {
		if err := writeFileAtomic(reportPath, func(f *os.File) error { return res.WriteHTML(f, objectives) }); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
		fmt.Fprintln(out, "report written to", reportPath)
	}
	if missed := res.Missed(objectives); len(missed) > 0 {
		return errors.New(strings.Join(missed, "; "))
	}
	if res.Interrupted {
		return errors.New("interrupted")
	}
	return nil
}

// writeFileAtomic writes path through a temporary file in its directory
// and renames it into place, so a failed write leaves no partial report.
func writeFileAtomic(path string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".loadtest-*.html")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
