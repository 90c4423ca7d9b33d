package loadtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// targets builds each scenario's vegeta.Targeter. vegeta calls a Targeter
// from all its workers at once, so each is safe for concurrent use: the
// only state is an atomic counter choosing the next account (and each
// bearer's cached headers). What a target holds is built once and shared
// by every request: vegeta copies a target's headers and body into each
// request it makes, so they are never written to.
type targets struct {
	base      string
	accounts  []*account
	bearers   []*bearer
	authzBody []byte
	next      atomic.Uint64

	loginURL, refreshURL, meURL, authzURL, jwksURL, liveURL string
}

func newTargets(base string, accounts []*account, permission string) *targets {
	return &targets{base: base, accounts: accounts, authzBody: authzBody(permission),
		loginURL: base + loginPath, refreshURL: base + refreshPath, meURL: base + mePath,
		authzURL: base + authzPath, jwksURL: base + jwksPath, liveURL: base + livePath}
}

// scenarioURLs maps each scenario's request URL back to the scenario, so
// the results of a mixed run are told apart (vegeta.Result has the URL).
func (t *targets) scenarioURLs() map[string]string {
	return map[string]string{
		t.loginURL: Login, t.refreshURL: Refresh, t.meURL: Me,
		t.authzURL: AuthzCheck, t.jwksURL: JWKS, t.liveURL: Health,
	}
}

func (t *targets) pick() uint64 { return t.next.Add(1) - 1 }

// header is the headers every target sends.
func header(contentType bool) http.Header {
	h := http.Header{"User-Agent": []string{userAgent}}
	if contentType {
		h.Set("Content-Type", "application/json")
	}
	return h
}

// The headers of the targets without a bearer token, shared (read-only)
// by all their requests.
var (
	jsonHeader    = header(true)
	plainHeader   = header(false)
	refreshHeader = func() http.Header {
		h := header(true)
		h.Set(chainHeader, "1")
		return h
	}()
)

// bearerHeaders are the headers of a bearer's me and authz-check targets
// for one access token.
type bearerHeaders struct {
	token     *string
	me, authz http.Header
}

// headers returns b's headers for its current token, built once per
// token rather than once per request.
func (b *bearer) headers() *bearerHeaders {
	tok := b.token.Load()
	if h := b.hdr.Load(); h != nil && h.token == tok {
		return h
	}
	// Workers racing here build the same headers; either copy will do.
	h := &bearerHeaders{token: tok, me: header(false), authz: header(true)}
	h.me.Set("Authorization", "Bearer "+*tok)
	h.authz.Set("Authorization", "Bearer "+*tok)
	b.hdr.Store(h)
	return h
}

// set fills tgt with a request of the named scenario.
func (t *targets) set(name string, tgt *vegeta.Target) error {
	switch name {
	case Login:
		// Round robin over the accounts: a password check per request,
		// each account signing in as often as the others.
		a := t.accounts[t.pick()%uint64(len(t.accounts))]
		*tgt = vegeta.Target{Method: http.MethodPost, URL: t.loginURL, Body: a.loginBody, Header: jsonHeader}
	case Refresh:
		// The token goes in at the transport, which owns the chains.
		*tgt = vegeta.Target{Method: http.MethodPost, URL: t.refreshURL, Header: refreshHeader}
	case Me:
		h := t.bearers[t.pick()%uint64(len(t.bearers))].headers()
		*tgt = vegeta.Target{Method: http.MethodGet, URL: t.meURL, Header: h.me}
	case AuthzCheck:
		h := t.bearers[t.pick()%uint64(len(t.bearers))].headers()
		*tgt = vegeta.Target{Method: http.MethodPost, URL: t.authzURL, Body: t.authzBody, Header: h.authz}
	case JWKS:
		*tgt = vegeta.Target{Method: http.MethodGet, URL: t.jwksURL, Header: plainHeader}
	case Health:
		// The cheapest answer the server has (no database, no cache, no
		// token): the ceiling the other scenarios are compared with.
		*tgt = vegeta.Target{Method: http.MethodGet, URL: t.liveURL, Header: plainHeader}
	default:
		return fmt.Errorf("unknown scenario %q", name)
	}
	return nil
}

// targeter returns the Targeter of a single scenario.
func (t *targets) targeter(name string) vegeta.Targeter {
	return func(tgt *vegeta.Target) error { return t.set(name, tgt) }
}

// mixTargeter interleaves the scenarios of a mix in exact proportion to
// their weights (smooth weighted round robin over one cycle of
// sum(weights) requests), so even a short run has the asked-for shares.
func (t *targets) mixTargeter(mix []Weight) vegeta.Targeter {
	cycle := smoothCycle(mix)
	var n atomic.Uint64
	return func(tgt *vegeta.Target) error {
		return t.set(cycle[(n.Add(1)-1)%uint64(len(cycle))], tgt)
	}
}

// smoothCycle is nginx's smooth weighted round robin, unrolled over one
// cycle: each scenario appears weight times, spread out rather than in
// runs.
func smoothCycle(mix []Weight) []string {
	total := 0
	for _, w := range mix {
		total += w.Weight
	}
	current := make([]int, len(mix))
	out := make([]string, 0, total)
	for range total {
		best := 0
		for i, w := range mix {
			current[i] += w.Weight
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		out = append(out, mix[best].Scenario)
	}
	return out
}

// uses reports whether the run sends requests of the named scenario.
func uses(cfg *Config, name string) bool {
	if cfg.Scenario != Mixed {
		return cfg.Scenario == name
	}
	for _, w := range cfg.Mix {
		if w.Scenario == name {
			return true
		}
	}
	return false
}

func authzBody(permission string) []byte {
	b, _ := json.Marshal(map[string]string{"permission": permission})
	return b
}
