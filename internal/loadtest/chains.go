package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Refresh tokens rotate: each refresh spends the presented token and
// answers the next one, and presenting a spent token again revokes the
// whole family (the server takes it for a stolen token). So a chain of
// refresh tokens must be used strictly one request at a time, each with
// the token the previous answer carried.
//
// vegeta's Targeter never sees an answer, so the refresh targets cannot
// carry the token themselves. Instead they carry a marker header, and
// chainTransport, the RoundTripper under vegeta's client, does the whole
// exchange in one place: it takes a free chain from the pool, puts the
// chain's token in the body, sends the request, reads the new token from
// the answer and gives the chain back. Holding a chain for exactly one
// round trip is what guarantees no chain is ever used concurrently, and
// every refresh is still an ordinary vegeta.Result, measured and plotted
// like the other scenarios. Waiting for a free chain counts in the
// request's latency, as a client's own queue would; the pool holds at
// least one chain per worker of a closed-model run, so there it never
// waits.

// chainHeader marks a refresh target; chainTransport removes it.
const chainHeader = "X-Gatehouse-Loadtest-Chain"

// chain is one session's refresh-token chain.
type chain struct {
	acct  *account
	token string
}

// chainPool hands out chains, one request at a time each.
type chainPool struct {
	free chan *chain
	// relogin replaces a chain whose token is lost (an error answer or
	// a failed round trip leaves the token's state unknown) by a fresh
	// sign-in of the same account, outside the measurement.
	relogin func(context.Context, *account) (string, error)
	ctx     context.Context

	mu        sync.Mutex
	alive     int           // chains free, in use, or being replaced
	dead      chan struct{} // closed when alive reaches 0
	wg        sync.WaitGroup
	lostCount atomic.Int64
	maxRelog  int64
}

func newChainPool(ctx context.Context, chains []*chain, relogin func(context.Context, *account) (string, error)) *chainPool {
	p := &chainPool{free: make(chan *chain, len(chains)), relogin: relogin, ctx: ctx,
		alive: len(chains), dead: make(chan struct{}),
		// A server that fails every refresh would otherwise be sent an
		// unmeasured login for each failure.
		maxRelog: int64(10 * len(chains))}
	for _, c := range chains {
		p.free <- c
	}
	return p
}

// errNoChain is the answer when every chain failed and none could be
// replaced.
var errNoChain = errors.New("no refresh-token chain left: every chain failed and could not be replaced by a new sign-in")

// take waits for a free chain.
func (p *chainPool) take(ctx context.Context) (*chain, error) {
	select {
	case c := <-p.free:
		return c, nil
	default:
	}
	select {
	case c := <-p.free:
		return c, nil
	case <-p.dead:
		return nil, errNoChain
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a free refresh-token chain: %w", ctx.Err())
	}
}

// put gives a chain back with its next token.
func (p *chainPool) put(c *chain) { p.free <- c }

// lose drops a chain whose token is in an unknown state and signs its
// account in again in the background for a replacement.
func (p *chainPool) lose(c *chain) {
	if p.lostCount.Add(1) > p.maxRelog {
		p.die()
		return
	}
	p.wg.Go(func() {
		tok, err := p.relogin(p.ctx, c.acct)
		if err != nil {
			p.die()
			return
		}
		p.put(&chain{acct: c.acct, token: tok})
	})
}

func (p *chainPool) die() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.alive--
	if p.alive == 0 {
		close(p.dead)
	}
}

// wait returns once no replacement sign-in is running.
func (p *chainPool) wait() { p.wg.Wait() }

// chainTransport runs the refresh exchange of a marked request; other
// requests pass through.
type chainTransport struct {
	next http.RoundTripper
	pool *chainPool
}

// RoundTrip implements http.RoundTripper.
func (t *chainTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get(chainHeader) == "" || t.pool == nil {
		return t.next.RoundTrip(req)
	}
	if req.Body != nil {
		_ = req.Body.Close()
	}
	c, err := t.pool.take(req.Context())
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"refresh_token": c.token})
	out := req.Clone(req.Context())
	out.Header.Del(chainHeader)
	out.Header.Set("Content-Type", "application/json")
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		t.pool.lose(c)
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		t.pool.lose(c)
		return nil, fmt.Errorf("read refresh answer: %w", err)
	}
	var next tokens
	if resp.StatusCode == http.StatusOK && json.Unmarshal(raw, &next) == nil && next.RefreshToken != "" {
		c.token = next.RefreshToken
		t.pool.put(c)
	} else {
		t.pool.lose(c)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	resp.ContentLength = int64(len(raw))
	resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
	return resp, nil
}

// bearer keeps an account's access token fresh for the me and authz-check
// scenarios: a run may outlast the token (15 minutes by default), so a
// background loop renews it through the account's own session, outside
// the measurement, when four fifths of its lifetime have passed.
type bearer struct {
	acct    *account
	token   atomic.Pointer[string]
	refresh string
	// hdr caches the request headers for token (see headers).
	hdr atomic.Pointer[bearerHeaders]
}

// renewer renews bearers' access tokens in the background.
type renewer struct {
	api *api
	// after is time.After; tests make it fire at once.
	after    func(time.Duration) <-chan time.Time
	renewed  atomic.Int64
	failures atomic.Int64
}

// keep renews b until ctx ends; expiresIn is the lifetime of the token
// b holds.
func (r *renewer) keep(ctx context.Context, b *bearer, expiresIn int) {
	after := r.after
	if after == nil {
		after = time.After
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-after(max(time.Duration(expiresIn)*time.Second*4/5, time.Second)):
		}
		next, err := r.api.refresh(ctx, b.refresh)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// The session's token may be spent or the session gone:
			// sign in again.
			next, err = r.api.login(ctx, b.acct)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.failures.Add(1)
			expiresIn = 5 // try again soon; requests meanwhile use the old token
			continue
		}
		b.refresh = next.RefreshToken
		b.token.Store(&next.AccessToken)
		expiresIn = next.ExpiresIn
		r.renewed.Add(1)
	}
}
