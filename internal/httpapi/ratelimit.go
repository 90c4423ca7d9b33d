package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// RateLimits are the limits of API.md "Rate limits". An invalid (zero)
// Limit lets everything through.
type RateLimits struct {
	// Login applies per client IP to password, WebAuthn and magic-link sign-in.
	Login ratelimit.Limit
	// Register applies per client IP to POST /auth/register.
	Register ratelimit.Limit
	// Email applies per target address to the operations that send email
	// to an address the caller names (see limitEmail).
	Email ratelimit.Limit
	// MFA applies per client IP to MFA code checks and sends.
	MFA ratelimit.Limit
	// API applies to every other operation: per user when the request
	// carries a valid access token, else per client IP.
	API ratelimit.Limit
}

// HighTrustScore is the session trust score from which the API limit doubles.
const HighTrustScore = 80

// The limit names: metric labels and key prefixes.
const (
	limitLogin    = "login"
	limitRegister = "register"
	limitEmail    = "email"
	limitMFA      = "mfa"
	limitAPI      = "api"
)

// limitedRoutes maps operations to their limit by "METHOD path" (the path
// under BasePath); every other operation gets the API limit.
var limitedRoutes = map[string]string{
	"POST /auth/login":                        limitLogin,
	"POST /auth/webauthn/authenticate/finish": limitLogin,
	"GET /auth/magic-link/verify":             limitLogin,
	"POST /auth/register":                     limitRegister,
	"POST /auth/mfa/verify":                   limitMFA,
	"POST /auth/mfa/send":                     limitMFA,
	"POST /auth/mfa/setup":                    limitMFA, // texts a code
}

// unlimitedPrefixes are paths machines poll or that serve public metadata.
var unlimitedPrefixes = []string{"/health", "/metrics", "/openapi", "/docs", "/.well-known/"}

// rateLimiting is the server's limiter state; a nil limiter turns it off.
type rateLimiting struct {
	limiter ratelimit.Limiter
	limits  RateLimits
	trust   func(ctx context.Context, p gatehouse.Principal) int
	// metrics counts refusals in gatehouse_rate_limited_total{limit}.
	metrics *telemetry.Metrics
}

func newRateLimiting(deps Deps, m *telemetry.Metrics) rateLimiting {
	return rateLimiting{limiter: deps.RateLimiter, limits: deps.RateLimits, trust: deps.SessionTrust, metrics: m}
}

// applyRateLimit gives every operation its limit when it is added: the
// check runs after the operation's own middleware (so a bearer operation
// knows its user) and before the body is read. The 429 answer is
// documented on each limited operation.
func (s *Server) applyRateLimit(_ *huma.OpenAPI, op *huma.Operation) {
	name := operationLimit(op)
	if name == "" {
		return
	}
	op.Middlewares = append(op.Middlewares, s.rateLimit(name))
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	resp := &huma.Response{
		Description: "Rate limited (code rate_limited): wait Retry-After seconds.", // describeOperation says which limit
		Headers: map[string]*huma.Param{
			"Retry-After":         {Description: "Seconds until a retry can pass.", Schema: &huma.Schema{Type: huma.TypeInteger}},
			"RateLimit-Limit":     {Description: "Requests allowed per window.", Schema: &huma.Schema{Type: huma.TypeInteger}},
			"RateLimit-Remaining": {Description: "Requests left now (also on successful answers).", Schema: &huma.Schema{Type: huma.TypeInteger}},
			"RateLimit-Reset":     {Description: "Seconds until the full limit is available again.", Schema: &huma.Schema{Type: huma.TypeInteger}},
		},
	}
	if def := op.Responses["default"]; def != nil {
		resp.Content = def.Content
	}
	op.Responses[strconv.Itoa(http.StatusTooManyRequests)] = resp
}

// operationLimit names the limit an operation is under, "" for none.
func operationLimit(op *huma.Operation) string {
	for _, p := range unlimitedPrefixes {
		if strings.HasPrefix(op.Path, p) {
			return ""
		}
	}
	if name := limitedRoutes[op.Method+" "+op.Path]; name != "" {
		return name
	}
	return limitAPI
}

type headerKey struct{}

// rateLimit is the operation middleware of one limit.
func (s *Server) rateLimit(name string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		r, w := humago.Unwrap(ctx)
		c := context.WithValue(ctx.Context(), headerKey{}, w.Header()) // for limitEmail
		if s.rl.limiter == nil {
			next(huma.WithContext(ctx, c))
			return
		}
		limit, key := s.rl.limits.byName(name), ipKey(ClientIPFrom(c))
		if p, ok := PrincipalFrom(c); ok && name == limitAPI {
			key = "user:" + p.UserID
			if s.rl.trust != nil && s.rl.trust(c, p) >= HighTrustScore {
				limit.Count *= 2
			}
		}
		if err := s.checkLimit(c, w.Header(), name, key, limit); err != nil {
			WriteProblem(w, r, err)
			return
		}
		next(huma.WithContext(ctx, c))
	}
}

// refusedBearer charges a request refused for its bearer token to its
// client address's API limit: err when the limit still has room, else
// the rate_limited error.
func (s *Server) refusedBearer(ctx context.Context, h http.Header, err error) error {
	if s.rl.limiter == nil {
		return err
	}
	if limited := s.checkLimit(ctx, h, limitAPI, ipKey(ClientIPFrom(ctx)), s.rl.limits.API); limited != nil {
		return limited
	}
	return err
}

func (l RateLimits) byName(name string) ratelimit.Limit {
	switch name {
	case limitLogin:
		return l.Login
	case limitRegister:
		return l.Register
	case limitEmail:
		return l.Email
	case limitMFA:
		return l.MFA
	default:
		return l.API
	}
}

// ipKey is the limiter key of a client address: its risk.ClientNetwork
// (the address itself for IPv4, its /64 for IPv6, since one subscriber
// usually holds a whole /64), the same one the risk engine counts failed
// sign-ins by.
func ipKey(ip netip.Addr) string {
	if n := risk.ClientNetwork(ip); n != "" {
		return "ip:" + n
	}
	return "ip:unknown"
}

// limitEmail applies the EMAIL limit to the address a request names, from
// any client: operations that email an address the caller chooses call it
// once they have parsed their body. It returns a rate_limited error or nil;
// an address that does not parse is left to the operation to reject.
func (s *Server) limitEmail(ctx context.Context, email string) *gatehouse.Error {
	addr, err := gatehouse.ParseEmail(email)
	if s.rl.limiter == nil || err != nil {
		return nil
	}
	// The key is a digest: the limiter's store need not hold addresses.
	sum := sha256.Sum256([]byte(addr))
	h, _ := ctx.Value(headerKey{}).(http.Header)
	if h == nil {
		h = http.Header{}
	}
	return s.checkLimit(ctx, h, limitEmail, "to:"+hex.EncodeToString(sum[:16]), s.rl.limits.Email)
}

// checkLimit spends one request of key under limit, sets the RateLimit-*
// headers, and answers rate_limited when it does not fit. A failing limiter
// (only one without an in-process stand-in fails) is logged loudly and
// lets the request through: refusing everything would take the service
// down with its cache.
func (s *Server) checkLimit(ctx context.Context, h http.Header, name, key string, limit ratelimit.Limit) *gatehouse.Error {
	res, err := s.rl.limiter.Allow(ctx, name+":"+key, limit)
	if err != nil {
		telemetry.Logger(ctx).ErrorContext(ctx, "rate limit check failed; request let through", "limit", name, "err", err,
			telemetry.Sample(name))
		return nil
	}
	if !limit.Valid() {
		return nil
	}
	h.Set("RateLimit-Limit", strconv.Itoa(limit.Count))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(seconds(res.ResetAfter)))
	if res.Allowed {
		return nil
	}
	s.rl.metrics.RateLimited(name)
	retry := max(seconds(res.RetryAfter), 1)
	h.Set("Retry-After", strconv.Itoa(retry))
	return gatehouse.Errorf(gatehouse.CodeRateLimited, "too many requests; retry in %d seconds", retry)
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
