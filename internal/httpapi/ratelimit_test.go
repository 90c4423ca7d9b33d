package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
)

// limitedEnv is the whole server with the configured limits on (the test
// harness turns them off).
func limitedEnv(t *testing.T, engine string, extra map[string]string) *apptest.Env {
	vars := map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "true"}
	for k, v := range extra {
		vars[k] = v
	}
	return apptest.New(t, engine, vars)
}

func requireRateHeaders(t *testing.T, h http.Header, limit, remaining, reset int) {
	t.Helper()
	require.Equal(t, strconv.Itoa(limit), h.Get("RateLimit-Limit"))
	require.Equal(t, strconv.Itoa(remaining), h.Get("RateLimit-Remaining"))
	require.Equal(t, strconv.Itoa(reset), h.Get("RateLimit-Reset"))
}

// The 21st login from one IP within a minute gets 429 rate_limited with
// Retry-After and RateLimit-* headers; one login is earned back every 3 s.
func TestLoginLimitRefusesThe21stLogin(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			env := limitedEnv(t, engine, nil)
			login := map[string]any{"email": "nobody@example.com", "password": "not-the-password"}
			for i := range 20 {
				r := env.Do(http.MethodPost, "/auth/login", login, "")
				require.Equal(t, http.StatusUnauthorized, r.Status, r.Raw)
				requireRateHeaders(t, r.Header, 20, 19-i, 3*(i+1))
			}
			r := env.Do(http.MethodPost, "/auth/login", login, "")
			require.Equal(t, http.StatusTooManyRequests, r.Status, r.Raw)
			require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
			require.Equal(t, string(gatehouse.CodeRateLimited), r.Code())
			require.Equal(t, "3", r.Header.Get("Retry-After"))
			requireRateHeaders(t, r.Header, 20, 0, 60)

			// Other limits are untouched; a wait of Retry-After lets one more in.
			require.Equal(t, http.StatusAccepted, env.Do(http.MethodPost, "/auth/password/forgot", map[string]any{"email": "a@example.com"}, "").Status)
			env.Clock.Advance(3 * time.Second)
			require.Equal(t, http.StatusUnauthorized, env.Do(http.MethodPost, "/auth/login", login, "").Status)
			require.Equal(t, http.StatusTooManyRequests, env.Do(http.MethodPost, "/auth/login", login, "").Status)

			metrics := env.Do(http.MethodGet, "/metrics", nil, "")
			require.Contains(t, string(metrics.Raw), `gatehouse_rate_limited_total{limit="login"} 2`)
		})
	}
}

// Requests refused for their bearer token count against the client
// address's API limit, so tokens cannot be guessed faster than the API
// may be called; a signed-in user's own requests keep their own count.
func TestRefusedBearerRequestsCountAgainstTheAddress(t *testing.T) {
	env := limitedEnv(t, "sqlite", map[string]string{"GATEHOUSE_RATE_LIMIT_API": "3/1m"})
	env.Register("bearer@example.com", apptest.StrongPassword)
	tok := env.Login("bearer@example.com", apptest.StrongPassword).Access
	for i := range 3 {
		r := env.Do(http.MethodGet, "/auth/me", nil, "not-a-token")
		require.Equal(t, http.StatusUnauthorized, r.Status, r.Raw)
		require.Equal(t, string(gatehouse.CodeUnauthorized), r.Code())
		require.Equal(t, strconv.Itoa(2-i), r.Header.Get("RateLimit-Remaining"))
	}
	for _, bearer := range []string{"not-a-token", ""} {
		r := env.Do(http.MethodGet, "/auth/me", nil, bearer)
		require.Equal(t, http.StatusTooManyRequests, r.Status, r.Raw)
		require.Equal(t, string(gatehouse.CodeRateLimited), r.Code())
		require.Equal(t, "20", r.Header.Get("Retry-After"))
	}
	require.Equal(t, http.StatusOK, env.Do(http.MethodGet, "/auth/me", nil, tok).Status)
	env.Clock.Advance(20 * time.Second)
	require.Equal(t, http.StatusUnauthorized, env.Do(http.MethodGet, "/auth/me", nil, "not-a-token").Status)
}

// EMAIL counts per target address (normalised), whichever IP asks and
// whichever of the email-sending operations it uses.
func TestEmailLimitPerAddressAcrossIPs(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			env := limitedEnv(t, engine, map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1"})
			env.Register("alice@example.com", apptest.StrongPassword)
			paths := []string{"/auth/password/forgot", "/auth/verify-email/resend"}
			spellings := []string{"alice@example.com", "Alice@Example.com", " ALICE@example.com "}
			for i := range 5 {
				env.Header = http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", i+1)}}
				r := env.Do(http.MethodPost, paths[i%2], map[string]any{"email": spellings[i%3]}, "")
				require.Equal(t, http.StatusAccepted, r.Status, r.Raw)
				requireRateHeaders(t, r.Header, 5, 4-i, 720*(i+1))
			}
			env.Header = http.Header{"X-Forwarded-For": {"203.0.113.99"}}
			r := env.Do(http.MethodPost, paths[0], map[string]any{"email": "alice@example.com"}, "")
			require.Equal(t, http.StatusTooManyRequests, r.Status, r.Raw)
			require.Equal(t, string(gatehouse.CodeRateLimited), r.Code())
			require.Equal(t, "720", r.Header.Get("Retry-After")) // 1h / 5
			requireRateHeaders(t, r.Header, 5, 0, 3600)

			// Another address from the same IP is not affected.
			require.Equal(t, http.StatusAccepted, env.Do(http.MethodPost, paths[0], map[string]any{"email": "bob@example.com"}, "").Status)
		})
	}
}

// GATEHOUSE_RATE_LIMIT_ENABLED=false turns every limit off.
func TestRateLimitsOff(t *testing.T) {
	env := apptest.New(t, "sqlite", map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "false", "GATEHOUSE_RATE_LIMIT_LOGIN": "1/1h", "GATEHOUSE_RATE_LIMIT_EMAIL": "1/1h"})
	for range 5 {
		r := env.Do(http.MethodPost, "/auth/login", map[string]any{"email": "nobody@example.com", "password": "not-the-password"}, "")
		require.Equal(t, http.StatusUnauthorized, r.Status)
		require.Empty(t, r.Header.Get("RateLimit-Limit"))
		require.Equal(t, http.StatusAccepted, env.Do(http.MethodPost, "/auth/password/forgot", map[string]any{"email": "a@example.com"}, "").Status)
	}
}

// apiLimited is an HTTP server whose API limit is 2 per hour.
func apiLimited(t *testing.T, trusted ...string) *testEnv {
	return newEnv(t, func(d *httpapi.Deps) {
		d.RateLimiter = ratelimit.NewMemory()
		d.RateLimits = httpapi.RateLimits{API: ratelimit.Limit{Count: 2, Window: time.Hour}}
		for _, p := range trusted {
			d.TrustedProxies = append(d.TrustedProxies, netip.MustParsePrefix(p))
		}
	})
}

// status of an API call from remote, through the given X-Forwarded-For.
func (e *testEnv) statusFrom(path, remote string, xff ...string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = remote
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	return e.do(req).Code
}

func TestClientIPKeys(t *testing.T) {
	const path = "/api/v1/test/users/1"
	t.Run("X-Forwarded-For of an untrusted peer is ignored", func(t *testing.T) {
		e := apiLimited(t, "10.0.0.0/8")
		require.Equal(t, 200, e.statusFrom(path, "203.0.113.7:5000", "198.51.100.1"))
		require.Equal(t, 200, e.statusFrom(path, "203.0.113.7:5001", "198.51.100.2"))
		require.Equal(t, 429, e.statusFrom(path, "203.0.113.7:5002", "198.51.100.3"))
	})
	t.Run("X-Forwarded-For of a trusted proxy is believed", func(t *testing.T) {
		e := apiLimited(t, "10.0.0.0/8")
		require.Equal(t, 200, e.statusFrom(path, "10.0.0.1:5000", "198.51.100.1"))
		require.Equal(t, 200, e.statusFrom(path, "10.0.0.2:5000", "198.51.100.1"))
		require.Equal(t, 429, e.statusFrom(path, "10.0.0.1:5001", "198.51.100.1"))
		require.Equal(t, 200, e.statusFrom(path, "10.0.0.1:5002", "198.51.100.2"), "another client behind the proxy")
		require.Equal(t, 429, e.statusFrom(path, "10.0.0.1:5003", "198.51.100.1, 10.0.0.3"), "trusted hops are skipped")
	})
	t.Run("IPv6 clients are grouped by /64", func(t *testing.T) {
		e := apiLimited(t)
		require.Equal(t, 200, e.statusFrom(path, "[2001:db8:1:2::1]:443"))
		require.Equal(t, 200, e.statusFrom(path, "[2001:db8:1:2:ffff:ffff:ffff:ffff]:443"))
		require.Equal(t, 429, e.statusFrom(path, "[2001:db8:1:2:abcd::9]:443"))
		require.Equal(t, 200, e.statusFrom(path, "[2001:db8:1:3::1]:443"), "the next /64 is another client")
		require.Equal(t, 200, e.statusFrom(path, "[::ffff:192.0.2.1]:443"), "IPv4-mapped is IPv4")
	})
	t.Run("operations machines poll are not limited", func(t *testing.T) {
		e := apiLimited(t)
		for _, p := range []string{"/api/v1/health/live", "/api/v1/metrics", "/.well-known/jwks.json", "/api/v1/openapi.json"} {
			for range 3 {
				req := httptest.NewRequest(http.MethodGet, p, nil)
				rec := e.do(req)
				require.NotEqual(t, 429, rec.Code, p)
				require.Empty(t, rec.Header().Get("RateLimit-Limit"), p)
			}
		}
	})
}

// servedBy is an HTTP server over env's services with its own, fresh
// limiter on env's clock.
func servedBy(env *apptest.Env, limits httpapi.RateLimits, trust func(context.Context, gatehouse.Principal) int) http.Handler {
	return httpapi.New(httpapi.Deps{
		Accounts: env.App.Accounts, Sessions: env.App.Sessions, SignIn: env.App.SignIn, Now: env.Clock.Now,
		RateLimiter: ratelimit.NewMemory(ratelimit.WithClock(env.Clock.Now)), RateLimits: limits, SessionTrust: trust,
	}).Handler()
}

func send(h http.Handler, method, path, remote, bearer string, body any) *httptest.ResponseRecorder {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req := httptest.NewRequest(method, "/api/v1"+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = remote
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func drawIP(t *rapid.T, label string) string {
	b := rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, label)
	return netip.AddrFrom4([4]byte(b)).String()
}

func drawLimit(t *rapid.T) ratelimit.Limit {
	return ratelimit.Limit{
		Count:  rapid.IntRange(1, 8).Draw(t, "count"),
		Window: rapid.SampledFrom([]time.Duration{time.Minute, time.Hour}).Draw(t, "window"),
	}
}

// checkIPLimit: from one IP, the first Count requests pass the limit and
// every further one is refused with the wait for the next; another IP is
// not affected.
func checkIPLimit(t *rapid.T, env *apptest.Env, path string, body any, set func(*httpapi.RateLimits, ratelimit.Limit)) {
	lim := drawLimit(t)
	var limits httpapi.RateLimits
	set(&limits, lim)
	h := servedBy(env, limits, nil)
	ip := drawIP(t, "ip")
	extra := rapid.IntRange(1, 3).Draw(t, "extra")
	for i := range lim.Count + extra {
		rec := send(h, http.MethodPost, path, ip+":1234", "", body)
		if i < lim.Count {
			require.NotEqual(t, http.StatusTooManyRequests, rec.Code, "request %d of %d", i+1, lim.Count)
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
		require.Equal(t, strconv.Itoa(int((lim.Window/time.Duration(lim.Count)+time.Second-1)/time.Second)), rec.Header().Get("Retry-After"))
	}
	other := netip.MustParseAddr(ip).Next()
	if other.IsValid() {
		require.NotEqual(t, http.StatusTooManyRequests, send(h, http.MethodPost, path, other.String()+":1234", "", body).Code)
	}
}

// Property 71: a client IP gets LOGIN's count of sign-in attempts, then 429.
func TestProperty71_LoginLimit(t *testing.T) {
	env := apptest.New(t, "sqlite", nil) // the limiter is in memory whatever the engine
	body := map[string]any{"email": "nobody@example.com", "password": "not-the-password"}
	rapid.Check(t, func(t *rapid.T) {
		checkIPLimit(t, env, "/auth/login", body, func(l *httpapi.RateLimits, v ratelimit.Limit) { l.Login = v })
	})
}

// Property 73: a client IP gets REGISTER's count of registration attempts
// (whatever their outcome), then 429.
func TestProperty73_RegistrationLimit(t *testing.T) {
	env := apptest.New(t, "sqlite", nil)
	body := map[string]any{"email": "not-an-address", "password": "x"}
	rapid.Check(t, func(t *rapid.T) {
		checkIPLimit(t, env, "/auth/register", body, func(l *httpapi.RateLimits, v ratelimit.Limit) { l.Register = v })
	})
}

// Property 72: each address gets EMAIL's count of reset (and verification)
// emails, from any mix of IPs; other addresses are not affected.
func TestProperty72_ResetLimit(t *testing.T) {
	env := apptest.New(t, "sqlite", nil)
	rapid.Check(t, func(t *rapid.T) {
		lim := drawLimit(t)
		h := servedBy(env, httpapi.RateLimits{Email: lim}, nil)
		addrs := []string{gatehouse.NewID() + "@example.com", gatehouse.NewID() + "@example.com"}
		sent := map[string]int{}
		for range rapid.IntRange(1, 3*lim.Count).Draw(t, "requests") {
			addr := rapid.SampledFrom(addrs).Draw(t, "addr")
			path := rapid.SampledFrom([]string{"/auth/password/forgot", "/auth/verify-email/resend"}).Draw(t, "path")
			rec := send(h, http.MethodPost, path, drawIP(t, "ip")+":1234", "", map[string]any{"email": addr})
			sent[addr]++
			if sent[addr] <= lim.Count {
				require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
			} else {
				require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
			}
		}
	})
}

// Property 75: a session whose trust score is HighTrustScore or more gets
// twice the API limit; the limit follows the user, not the IP.
func TestProperty75_HighTrustRelaxedLimits(t *testing.T) {
	env := apptest.New(t, "sqlite", nil)
	env.Register("trusty@example.com", apptest.StrongPassword)
	tok := env.Login("trusty@example.com", apptest.StrongPassword).Access
	rapid.Check(t, func(t *rapid.T) {
		lim := drawLimit(t)
		score := rapid.IntRange(0, 100).Draw(t, "trust score")
		h := servedBy(env, httpapi.RateLimits{API: lim}, func(context.Context, gatehouse.Principal) int { return score })
		want := lim.Count
		if score >= httpapi.HighTrustScore {
			want *= 2
		}
		for i := range want {
			rec := send(h, http.MethodGet, "/auth/me", drawIP(t, "ip")+":1234", tok, nil)
			require.Equal(t, http.StatusOK, rec.Code, "request %d of %d: %s", i+1, want, rec.Body.String())
			require.Equal(t, strconv.Itoa(want), rec.Header().Get("RateLimit-Limit"))
		}
		require.Equal(t, http.StatusTooManyRequests, send(h, http.MethodGet, "/auth/me", drawIP(t, "ip")+":1234", tok, nil).Code)
	})
}

// With Redis the limits hold across instances: two servers sharing it
// share each client's count.
func TestLimitsAreSharedThroughRedis(t *testing.T) {
	url := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if url == "" {
		t.Skip("GATEHOUSE_TEST_REDIS_URL not set")
	}
	vars := map[string]string{"GATEHOUSE_REDIS_URL": url, "GATEHOUSE_REDIS_PREFIX": "test:" + t.Name() + ":", "GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1", "GATEHOUSE_RATE_LIMIT_LOGIN": "3/1h"}
	a, b := limitedEnv(t, "sqlite", vars), limitedEnv(t, "sqlite", vars)
	// A client address of its own, so counts left in Redis by earlier runs do not matter.
	client := http.Header{"X-Forwarded-For": {netip.AddrFrom16([16]byte(uuid.New())).String()}}
	a.Header, b.Header = client, client
	login := map[string]any{"email": "nobody@example.com", "password": "not-the-password"}
	for _, env := range []*apptest.Env{a, b, a} {
		require.Equal(t, http.StatusUnauthorized, env.Do(http.MethodPost, "/auth/login", login, "").Status)
	}
	r := b.Do(http.MethodPost, "/auth/login", login, "")
	require.Equal(t, http.StatusTooManyRequests, r.Status, r.Raw)
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 1200, retry, 10, "one login per 20 min, on Redis's clock")
}

// Property 74: code checks and sends share one MFA budget per client IP:
// whatever mix of POST /auth/mfa/verify and /auth/mfa/send an IP makes,
// the first MFA-count pass the limit, every later one gets 429 with the
// wait for the next, and another IP is not affected.
func TestProperty74_MFAVerificationLimit(t *testing.T) {
	env := apptest.New(t, "sqlite", nil) // the limiter is in memory whatever the engine
	rapid.Check(t, func(t *rapid.T) {
		lim := drawLimit(t)
		h := httpapi.New(httpapi.Deps{
			Accounts: env.App.Accounts, Sessions: env.App.Sessions, MFA: env.App.MFA, SignIn: env.App.SignIn, Now: env.Clock.Now,
			RateLimiter: ratelimit.NewMemory(ratelimit.WithClock(env.Clock.Now)), RateLimits: httpapi.RateLimits{MFA: lim},
		}).Handler()
		ip := drawIP(t, "ip")
		mfa := func(ip string) *httptest.ResponseRecorder {
			body := map[string]any{"challenge_id": gatehouse.NewID(), "code": "123456", "method": "totp"}
			path := rapid.SampledFrom([]string{"/auth/mfa/verify", "/auth/mfa/send"}).Draw(t, "path")
			if path == "/auth/mfa/send" {
				body = map[string]any{"challenge_id": body["challenge_id"], "method": "sms"}
			}
			return send(h, http.MethodPost, path, ip+":1234", "", body)
		}
		for i := range lim.Count + rapid.IntRange(1, 3).Draw(t, "extra") {
			rec := mfa(ip)
			if i < lim.Count {
				require.NotEqual(t, http.StatusTooManyRequests, rec.Code, "request %d of %d", i+1, lim.Count)
				require.Less(t, rec.Code, 500, rec.Body.String())
				continue
			}
			require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
			require.Equal(t, string(gatehouse.CodeRateLimited), problemCode(t, rec))
			require.Equal(t, strconv.Itoa(int((lim.Window/time.Duration(lim.Count)+time.Second-1)/time.Second)), rec.Header().Get("Retry-After"))
		}
		if other := netip.MustParseAddr(ip).Next(); other.IsValid() {
			require.NotEqual(t, http.StatusTooManyRequests, mfa(other.String()).Code)
		}
	})
}

func problemCode(t *rapid.T, rec *httptest.ResponseRecorder) string {
	var p struct {
		Code string `json:"code"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	return p.Code
}
