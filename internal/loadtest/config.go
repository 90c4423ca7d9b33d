// Package loadtest drives a running Gatehouse server with a load of one
// scenario (login, refresh, me, authz-check, jwks, health) or a weighted mix of
// them, and reports what it measured: a table of throughput, latency
// percentiles and errors by status, an HTML report with plots, and whether
// the latency and error objectives were met.
//
// The load comes from vegeta (github.com/tsenart/vegeta/v12) used as a
// library: one vegeta.Attacker per run, a vegeta.Targeter per scenario, and
// vegeta.Metrics and vegeta.Histogram over its vegeta.Results. The run
// creates its own accounts through the API first (register, then login),
// so it needs nothing but the server's base URL.
//
// Load tests send traffic only to loopback addresses unless AllowRemote is
// set: the target is checked before the run and again at every dial, so a
// name that resolves elsewhere later is refused too.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenario names.
const (
	Login      = "login"
	Refresh    = "refresh"
	Me         = "me"
	AuthzCheck = "authz-check"
	JWKS       = "jwks"
	Health     = "health"
	Mixed      = "mixed"
)

// Scenarios lists the single scenarios, in the order reports show them.
var Scenarios = []string{Login, Refresh, Me, AuthzCheck, JWKS, Health}

// DefaultMix is the weights of the mixed scenario: mostly token-bearing
// API calls, as an application's traffic is, with a login now and then.
const DefaultMix = "login=1,me=8,refresh=2,authz-check=4,jwks=1"

// Weight is one scenario's share of a mixed run.
type Weight struct {
	Scenario string
	Weight   int
}

// ParseMix reads "login=1,me=8,...": each single scenario at most once,
// with a positive whole weight; at least one.
func ParseMix(s string) ([]Weight, error) {
	var out []Weight
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("--mix: %q is not scenario=weight", part)
		}
		if !slices.Contains(Scenarios, name) {
			return nil, fmt.Errorf("--mix: unknown scenario %q; use %s", name, strings.Join(Scenarios, ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("--mix: %s is given twice", name)
		}
		seen[name] = true
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > 1000 {
			return nil, fmt.Errorf("--mix: weight of %s must be a whole number from 0 to 1000, not %q", name, w)
		}
		if n > 0 {
			out = append(out, Weight{Scenario: name, Weight: n})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--mix: %q gives no scenario a positive weight, e.g. %s", s, DefaultMix)
	}
	return out, nil
}

// Load is what a run sends, where, and for how long; a Result repeats it.
type Load struct {
	// Target is the server's base URL (scheme, host, port; a path prefix
	// is kept, for a server behind a proxy under one).
	Target string
	// Scenario is one of Scenarios or Mixed.
	Scenario string
	// Mix weighs the scenarios of a Mixed run.
	Mix []Weight
	// Rate is requests per second (open model: sent on schedule whatever
	// the answers' latency). Exactly one of Rate and Concurrency is set.
	Rate int
	// Concurrency is the number of workers each sending its next request
	// as soon as the last one was answered (closed model).
	Concurrency int
	// Duration is how long requests are started; the run ends when the
	// last one started has been answered.
	Duration time.Duration
	// Users is how many accounts the run creates.
	Users int
}

// Config is one run.
type Config struct {
	Load
	// Password of those accounts; empty for a random one.
	Password string
	// Permission is what authz-check asks about.
	Permission string
	// Timeout bounds each request.
	Timeout time.Duration
	// AllowRemote lets the run send load to a non-loopback target.
	AllowRemote bool
	// Log receives progress lines (setup, start, end); nil for none.
	Log func(format string, args ...any)
}

// validate checks the settings and fills defaults; its errors name the flag.
func (c *Config) validate() (*url.URL, error) {
	if c.Scenario != Mixed && !slices.Contains(Scenarios, c.Scenario) {
		return nil, fmt.Errorf("--scenario: unknown scenario %q; use %s or %s", c.Scenario, strings.Join(Scenarios, ", "), Mixed)
	}
	if c.Scenario == Mixed && len(c.Mix) == 0 {
		mix, err := ParseMix(DefaultMix)
		if err != nil {
			return nil, err
		}
		c.Mix = mix
	}
	switch {
	case c.Rate < 0:
		return nil, errors.New("--rate must be positive")
	case c.Concurrency < 0:
		return nil, errors.New("--concurrency must be positive")
	case c.Rate > 0 && c.Concurrency > 0:
		return nil, errors.New("--rate and --concurrency exclude each other: give a request rate (open model) or a number of workers (closed model)")
	case c.Rate == 0 && c.Concurrency == 0:
		return nil, errors.New("give --rate (requests per second) or --concurrency (workers)")
	case c.Concurrency > 10000:
		return nil, errors.New("--concurrency must be at most 10000")
	case c.Duration <= 0:
		return nil, errors.New("--duration must be positive, e.g. 30s")
	case c.Users < 1 || c.Users > 10000:
		return nil, errors.New("--users must be from 1 to 10000")
	case c.Password != "" && len(c.Password) < 12:
		return nil, errors.New("--password must have at least 12 characters (the server's password policy); leave it out for a random one")
	case c.Timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	}
	if c.Permission == "" {
		c.Permission = "documents:read"
	}
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--target: %q is not a base URL like http://127.0.0.1:8080", c.Target)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// checkLoopback refuses a target that is, or resolves to, anything but a
// loopback address, unless remote targets are allowed.
func checkLoopback(ctx context.Context, u *url.URL, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return fmt.Errorf("--target: resolve %s: %w", host, err)
		}
		addrs = ips
	}
	var remote []string
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			remote = append(remote, a.String())
		}
	}
	if len(remote) > 0 {
		sort.Strings(remote)
		return fmt.Errorf("--target: %s is not a loopback address (%s): load tests send traffic only to 127.0.0.0/8 or ::1 by default; "+
			"give --allow-remote to load a server elsewhere that you are responsible for", host, strings.Join(remote, ", "))
	}
	return nil
}

// errNotLoopback is the dial guard's refusal.
var errNotLoopback = errors.New("refused to dial a non-loopback address (load tests stay on loopback without --allow-remote)")

// loopbackOnly is a net.Dialer Control function: it sees the address
// actually dialled, after name resolution, so a name that changes what it
// resolves to during a run cannot send load elsewhere.
func loopbackOnly(_, address string, _ any) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("dial %s: %w", address, errNotLoopback)
	}
	return nil
}
