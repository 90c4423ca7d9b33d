package loadtest

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/sync/errgroup"

	"github.com/gatehouse-auth/gatehouse"
)

// setupParallelism bounds the concurrent sign-ins of setup: each costs the
// server a password hash, and setup is not what is measured.
const setupParallelism = 4

// Run creates the accounts, sends the load and returns what it measured.
// Setup errors (an unreachable or rate-limiting target, a refused
// account) end the run before any load; an interrupted run (ctx ending)
// returns what was measured so far with Interrupted set.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if err := checkLoopback(ctx, u, cfg.AllowRemote); err != nil {
		return nil, err
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	base := baseURL(u)
	client := newClient(cfg.Timeout, cfg.AllowRemote)
	setupAPI := &api{base: base, client: client}
	if err := setupAPI.reachable(ctx); err != nil {
		return nil, err
	}

	// Background work (chain replacements, token renewals) ends with the
	// run, before Run returns.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var (
		bgWG sync.WaitGroup
		pool *chainPool
	)
	defer func() {
		stopBG()
		bgWG.Wait()
		if pool != nil {
			pool.wait()
		}
	}()

	password := cfg.Password
	if password == "" {
		password = randomPassword()
	}
	runID := gatehouse.NewID()
	runID = runID[len(runID)-10:]
	accounts := make([]*account, cfg.Users)
	for i := range accounts {
		accounts[i] = newAccount(runID, i, password)
	}
	logf("creating %d accounts (loadtest-%s-N@example.com) on %s", len(accounts), runID, base)
	if err := forEach(ctx, len(accounts), func(ctx context.Context, i int) error {
		return setupAPI.register(ctx, accounts[i])
	}); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}

	tg := newTargets(base, accounts, cfg.Permission)
	rn := &renewer{api: setupAPI}
	if uses(&cfg, Me) || uses(&cfg, AuthzCheck) {
		tg.bearers = make([]*bearer, len(accounts))
		expires := make([]int, len(accounts))
		if err := forEach(ctx, len(accounts), func(ctx context.Context, i int) error {
			t, err := setupAPI.login(ctx, accounts[i])
			if err != nil {
				return err
			}
			b := &bearer{acct: accounts[i], refresh: t.RefreshToken}
			b.token.Store(&t.AccessToken)
			tg.bearers[i], expires[i] = b, t.ExpiresIn
			return nil
		}); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		for i, b := range tg.bearers {
			bgWG.Go(func() { rn.keep(bg, b, expires[i]) })
		}
	}
	if uses(&cfg, Refresh) {
		n := chainCount(&cfg)
		chains := make([]*chain, n)
		logf("signing in %d refresh-token chains", n)
		if err := forEach(ctx, n, func(ctx context.Context, i int) error {
			acct := accounts[i%len(accounts)]
			t, err := setupAPI.login(ctx, acct)
			chains[i] = &chain{acct: acct, token: t.RefreshToken}
			return err
		}); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		pool = newChainPool(bg, chains, func(ctx context.Context, a *account) (string, error) {
			t, err := setupAPI.login(ctx, a)
			return t.RefreshToken, err
		})
	}

	loadClient := *client
	if pool != nil {
		loadClient.Transport = &chainTransport{next: client.Transport, pool: pool}
	}
	opts := []func(*vegeta.Attacker){vegeta.Client(&loadClient), vegeta.MaxBody(maxBody)}
	pacer := vegeta.ConstantPacer{Freq: cfg.Rate, Per: time.Second}
	model := fmt.Sprintf("%d requests/s", cfg.Rate)
	if cfg.Concurrency > 0 {
		// Rate zero is vegeta's "as fast as the workers go"; a fixed
		// number of workers makes it the closed model.
		pacer = vegeta.ConstantPacer{}
		opts = append(opts, vegeta.Workers(uint64(cfg.Concurrency)), vegeta.MaxWorkers(uint64(cfg.Concurrency)))
		model = fmt.Sprintf("%d workers", cfg.Concurrency)
	}
	targeter := tg.targeter(cfg.Scenario)
	if cfg.Scenario == Mixed {
		targeter = tg.mixTargeter(cfg.Mix)
	}
	attacker := vegeta.NewAttacker(opts...)
	res := newResult(&cfg, base)
	urls := tg.scenarioURLs()

	logf("running %s against %s: %s for %s", cfg.Scenario, base, model, cfg.Duration)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			attacker.Stop()
		case <-stopped:
		}
	}()
	if os.Getenv("GOGC") == "" {
		// The loader shares the machine with the server it measures:
		// collecting its short-lived garbage less often leaves the server
		// more CPU. What a run keeps is small (see maxSamples).
		defer debug.SetGCPercent(debug.SetGCPercent(loadGCPercent))
	}
	res.Started = time.Now()
	// No attack name: vegeta would send it as an X-Vegeta-Attack header
	// with every request; the results are told apart by URL.
	for r := range attacker.Attack(targeter, pacer, cfg.Duration, "") {
		res.add(urls[r.URL], r)
	}
	close(stopped)
	res.finish()
	res.Interrupted = ctx.Err() != nil
	if pool != nil {
		res.ChainsLost = pool.lostCount.Load()
	}
	res.TokensRenewed, res.RenewalsFailed = rn.renewed.Load(), rn.failures.Load()
	return res, nil
}

// loadGCPercent is the loader's GOGC while it sends load (unless GOGC is
// set): the heap may grow to five times what is live before a collection.
const loadGCPercent = 400

// maxBody is how much of each answer is kept: enough for the problem's
// code of an error answer, which the table shows.
const maxBody = 4096

// chainCount is how many refresh-token chains a run holds: one per
// worker of a closed-model run, so none ever waits for a chain; for an
// open-model run, the refresh requests of one second (the rate times
// refresh's share of a mix), up to 64, which covers every refresh in
// flight unless one takes a second; and never fewer than the accounts.
func chainCount(cfg *Config) int {
	if cfg.Concurrency > 0 {
		return max(cfg.Users, cfg.Concurrency)
	}
	perSecond := cfg.Rate
	if cfg.Scenario == Mixed {
		total, share := 0, 0
		for _, w := range cfg.Mix {
			total += w.Weight
			if w.Scenario == Refresh {
				share = w.Weight
			}
		}
		perSecond = (cfg.Rate*share + total - 1) / total
	}
	return max(cfg.Users, min(perSecond, 64))
}

// forEach runs fn for 0..n-1, setupParallelism at a time, and returns the
// first error.
func forEach(ctx context.Context, n int, fn func(context.Context, int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallelism)
	for i := range n {
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}
