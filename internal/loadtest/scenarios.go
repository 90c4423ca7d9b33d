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
// only state is an atomic counter choosing the next account.
type targets struct {
	base      string
	accounts  []*account
	bearers   []*bearer
	authzBody []byte
	next      atomic.Uint64
}

// scenarioURLs maps each scenario's request URL back to the scenario, so
// the results of a mixed run are told apart (vegeta.Result has the URL).
func (t *targets) scenarioURLs() map[string]string {
	return map[string]string{
		t.base + loginPath: Login, t.base + refreshPath: Refresh, t.base + mePath: Me,
		t.base + authzPath: AuthzCheck, t.base + jwksPath: JWKS, t.base + livePath: Health,
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

// set fills tgt with a request of the named scenario.
func (t *targets) set(name string, tgt *vegeta.Target) error {
	switch name {
	case Login:
		// Round robin over the accounts: a password check per request,
		// each account signing in as often as the others.
		a := t.accounts[t.pick()%uint64(len(t.accounts))]
		*tgt = vegeta.Target{Method: http.MethodPost, URL: t.base + loginPath, Body: a.loginBody, Header: header(true)}
	case Refresh:
		// The token goes in at the transport, which owns the chains.
		h := header(true)
		h.Set(chainHeader, "1")
		*tgt = vegeta.Target{Method: http.MethodPost, URL: t.base + refreshPath, Header: h}
	case Me, AuthzCheck:
		b := t.bearers[t.pick()%uint64(len(t.bearers))]
		h := header(name == AuthzCheck)
		h.Set("Authorization", "Bearer "+*b.token.Load())
		if name == Me {
			*tgt = vegeta.Target{Method: http.MethodGet, URL: t.base + mePath, Header: h}
		} else {
			*tgt = vegeta.Target{Method: http.MethodPost, URL: t.base + authzPath, Body: t.authzBody, Header: h}
		}
	case JWKS:
		*tgt = vegeta.Target{Method: http.MethodGet, URL: t.base + jwksPath, Header: header(false)}
	case Health:
		// The cheapest answer the server has (no database, no cache, no
		// token): the ceiling the other scenarios are compared with.
		*tgt = vegeta.Target{Method: http.MethodGet, URL: t.base + livePath, Header: header(false)}
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
