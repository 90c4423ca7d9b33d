package oidcprovider

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/risk"
)

// The token, introspection and revocation endpoints are machine
// endpoints a client authenticates at, so they are rate-limited like the
// API (the same limiter and GATEHOUSE_RATE_LIMIT_API limit): per client
// address, then per client id. The address is checked first, so one
// address cannot use up a client's budget beyond its own. A refusal is
// 429 with Retry-After, in the OAuth error form
// {"error":"rate_limited","error_description":...}.

// limitOAuth names the limit: metric label and key prefix.
const limitOAuth = "oauth"

// RateLimitMetrics counts refusals (a *telemetry.Metrics).
type RateLimitMetrics interface {
	RateLimited(limit string)
}

var limitedPaths = map[string]bool{TokenPath: true, IntrospectPath: true, RevokePath: true}

// rateLimited wraps the provider's handler with the limits.
func (p *Provider) rateLimited(next http.Handler) http.Handler {
	if p.limiter == nil || !p.limit.Valid() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !limitedPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if !p.allow(ctx, w, ipKey(p.clientIP(ctx))) {
			return
		}
		if id := requestClientID(w, r); id != "" && !p.allow(ctx, w, "client:"+id) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allow spends one request of key's budget; false means it answered 429.
// A failing limiter lets the request through, as the API's does.
func (p *Provider) allow(ctx context.Context, w http.ResponseWriter, key string) bool {
	res, err := p.limiter.Allow(ctx, limitOAuth+":"+key, p.limit)
	if err != nil {
		p.log.ErrorContext(ctx, "rate limit check failed; request let through", "limit", limitOAuth, "err", err)
		return true
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(p.limit.Count))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(seconds(res.ResetAfter)))
	if res.Allowed {
		return true
	}
	if p.metrics != nil {
		p.metrics.RateLimited(limitOAuth)
	}
	retry := max(seconds(res.RetryAfter), 1)
	h.Set("Retry-After", strconv.Itoa(retry))
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "rate_limited",
		"error_description": "too many requests; retry in " + strconv.Itoa(retry) + " seconds"})
	return false
}

// requestClientID is the client a token request names: the Basic
// user name (form-encoded, RFC 6749 §2.3.1) or the client_id field.
func requestClientID(w http.ResponseWriter, r *http.Request) string {
	id := ""
	if u, _, ok := r.BasicAuth(); ok {
		if d, err := url.QueryUnescape(u); err == nil {
			id = d
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
		if err := r.ParseForm(); err == nil {
			id = r.PostForm.Get("client_id")
		}
	}
	if len(id) > 64 {
		return ""
	}
	return id
}

// ipKey is the limiter key of a client address: its network as the risk
// engine and the API count it (an IPv6 /64).
func ipKey(raw string) string {
	ip, _ := netip.ParseAddr(raw)
	if n := risk.ClientNetwork(ip); n != "" {
		return "ip:" + n
	}
	return "ip:unknown"
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
