package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-auth/gatehouse"
)

// Paths the scenarios call, under the target's base URL.
const (
	registerPath = "/api/v1/auth/register"
	loginPath    = "/api/v1/auth/login"
	refreshPath  = "/api/v1/auth/refresh"
	mePath       = "/api/v1/auth/me"
	authzPath    = "/api/v1/authz/check"
	jwksPath     = "/.well-known/jwks.json"
	healthPath   = "/api/v1/health"
	livePath     = "/api/v1/health/live"
)

// userAgent names the load in the server's logs, sessions and devices.
var userAgent = "gatehouse-loadtest/" + gatehouse.Version()

// newClient is the HTTP client of setup and load alike: no proxy from the
// environment (the target is given, and on loopback), no redirects (an
// answer is measured as it comes), and, unless remote targets are allowed,
// a dialer that refuses every non-loopback address.
func newClient(timeout time.Duration, allowRemote bool) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowRemote {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			return loopbackOnly(network, address, nil)
		}
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: 10000,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: timeout,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// api makes the setup calls (not measured).
type api struct {
	base   string
	client *http.Client
}

// tokens is the part of a TokenResponse (or MFAChallenge) the run uses.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	MFARequired  bool   `json:"mfa_required"`
}

// problem is the part of a problem+json answer an error message shows.
type problem struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// rateLimitHint says how to run a server a load test can measure.
const rateLimitHint = "the target rate-limits this load: run it with GATEHOUSE_RATE_LIMIT_ENABLED=false " +
	"(or generous GATEHOUSE_RATE_LIMIT_<NAME> limits) for load tests"

// call sends a JSON request and decodes a 2xx answer into out; any other
// answer is an error naming the call, the status and the problem's code.
func (a *api) call(ctx context.Context, method, path string, body any, bearer string, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var p problem
		_ = json.Unmarshal(raw, &p)
		msg := fmt.Sprintf("%s %s answered %s", method, path, resp.Status)
		if p.Code != "" {
			msg += " " + p.Code
		}
		if p.Detail != "" {
			msg += ": " + p.Detail
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			msg += "; " + rateLimitHint
		}
		return errors.New(msg)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// reachable checks that a Gatehouse server answers at the base URL.
func (a *api) reachable(ctx context.Context) error {
	var h struct {
		Status string `json:"status"`
	}
	if err := a.call(ctx, http.MethodGet, healthPath, nil, "", &h); err != nil {
		if errors.Is(err, errNotLoopback) {
			return err
		}
		return fmt.Errorf("target %s is not a ready Gatehouse server (is `gatehouse serve` running there?): %w", a.base, err)
	}
	return nil
}

// account is one user the run created.
type account struct {
	email, password, deviceID string
	loginBody                 []byte
}

// newAccount names an account of the run: unique to it (runID), so runs
// against the same database never collide.
func newAccount(runID string, i int, password string) *account {
	a := &account{
		email:    fmt.Sprintf("loadtest-%s-%d@example.com", runID, i),
		password: password,
		deviceID: fmt.Sprintf("gatehouse-loadtest-%s-%d", runID, i),
	}
	a.loginBody, _ = json.Marshal(map[string]string{"email": a.email, "password": a.password, "device_id": a.deviceID})
	return a
}

// register creates the account.
func (a *api) register(ctx context.Context, acct *account) error {
	return a.call(ctx, http.MethodPost, registerPath,
		map[string]string{"email": acct.email, "password": acct.password, "name": "Load Test"}, "", nil)
}

// login signs the account in and returns its tokens.
func (a *api) login(ctx context.Context, acct *account) (tokens, error) {
	var t tokens
	if err := a.call(ctx, http.MethodPost, loginPath, json.RawMessage(acct.loginBody), "", &t); err != nil {
		return t, err
	}
	if t.MFARequired || t.RefreshToken == "" || t.AccessToken == "" {
		return t, fmt.Errorf("POST %s for %s answered no tokens (a second factor or a step-up was asked for); "+
			"load-test accounts sign in with a password alone", loginPath, acct.email)
	}
	return t, nil
}

// refresh spends a refresh token and returns the next tokens.
func (a *api) refresh(ctx context.Context, refreshToken string) (tokens, error) {
	var t tokens
	err := a.call(ctx, http.MethodPost, refreshPath, map[string]string{"refresh_token": refreshToken}, "", &t)
	return t, err
}

// randomPassword makes a password the default policy accepts: long,
// random (rand.Text: 26 base32 characters, 130 bits), and nothing like the
// account's email or name.
func randomPassword() string { return "lt-" + rand.Text() }

// baseURL renders the target without a trailing slash.
func baseURL(u *url.URL) string {
	c := *u
	c.Path = strings.TrimRight(c.Path, "/")
	return c.String()
}
