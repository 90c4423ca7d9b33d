// Package httpapi is Gatehouse's HTTP interface: Huma operations on the
// standard ServeMux (one file per resource), the middleware every request
// goes through, and the mapping of domain errors to problem+json answers.
//
// Operations are registered inside New, unconditionally, so the OpenAPI
// document (served, printed by `gatehouse openapi`, and checked against
// api/openapi.json by TestOpenAPIGolden) is the same whatever is wired.
// A resource file adds a `func (s *Server) registerX()` and one line in
// registerRoutes; handlers reach their service through s.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/go-jose/go-jose/v4"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// BasePath prefixes every API route except /.well-known ones.
const BasePath = "/api/v1"

// DefaultMaxBodyBytes caps request bodies when Deps.MaxBodyBytes is unset.
const DefaultMaxBodyBytes int64 = 1 << 20

// HealthCheck is one dependency the readiness answer depends on.
type HealthCheck struct {
	// Name is the key in the health answer's checks: "database", "cache", "queue".
	Name string
	// Check returns nil when the dependency works. It must honour ctx: the
	// health endpoints give all checks together about two seconds. Its error
	// is logged; clients see only "timeout", "unavailable", or the Message
	// of a *gatehouse.Error (which is client-safe by contract).
	Check func(ctx context.Context) error
	// Optional marks a dependency the instance can serve without, in a
	// degraded mode (Redis): its failure makes the answer "degraded" but
	// not 503, so a load balancer keeps the instance in.
	Optional bool
}

// Deps is what the HTTP layer needs. Zero values are safe: a nil Logger
// discards, a nil Metrics makes a private registry, a nil JWKS publishes an
// empty key set, MaxBodyBytes ≤ 0 means DefaultMaxBodyBytes.
type Deps struct {
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	// Version is the build version, shown in /health and the OpenAPI info.
	Version string
	// PublicURL is the external base URL; https turns HSTS on.
	PublicURL string
	// CORSOrigins are the exact origins (scheme://host[:port]) browsers may
	// call from, with credentials. "*" and "null" are ignored.
	CORSOrigins  []string
	MaxBodyBytes int64
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	Checks         []HealthCheck
	// JWKS returns the token signing keys to publish. Only their public
	// parts are ever served, whatever it returns.
	JWKS func(ctx context.Context) (jose.JSONWebKeySet, error)
	// TracerProvider makes the request spans; nil means tracing is off
	// (telemetry.SetupTracing returns nil then): no spans, but every
	// request still gets a trace id, the caller's or a new one, for its
	// logs and outbound calls.
	TracerProvider trace.TracerProvider
	// Accounts and Sessions serve the account operations. They may be nil
	// only when the server is built to print its OpenAPI document.
	Accounts Accounts
	Sessions Sessions
	// Now is the clock shared with the services (default time.Now), so
	// derived fields such as a user's "locked" agree with them.
	Now func() time.Time
	// Authz checks permissions; Roles and Admin serve the admin API.
	Authz Authorizer
	Roles RoleAdmin
	Admin AccountAdmin
	// Audit serves the audit-log query.
	Audit AuditReader
	// Clients manages the OpenID Provider's registered clients.
	Clients ClientAdmin
	// Consents lists and revokes the signed-in user's consents to clients.
	Consents ConsentManager
	// Notify serves the live notification socket (nil: 503).
	Notify Notifier
	// MFA serves the second-factor operations.
	MFA MFA
	// Webhooks serves the webhook operations.
	Webhooks Webhooks
	// Passkeys serves the WebAuthn operations.
	Passkeys Passkeys
	// RateLimiter enforces RateLimits; nil turns rate limiting off.
	RateLimiter ratelimit.Limiter
	RateLimits  RateLimits
	// SessionTrust is the hook that gives a signed-in caller's session
	// trust score (0-100); from HighTrustScore on, the API limit doubles.
	// Nil scores every session 0. The app wires it to the principal's
	// TrustScore, which the session cache carries (no database read).
	SessionTrust func(ctx context.Context, p gatehouse.Principal) int
	// Devices serves the device operations.
	Devices Devices
	// SignIn runs every sign-in: password, emailed link, passkey, social
	// login, and their second steps (an MFA code, an emailed confirmation).
	SignIn SignIn
	// Features are shown in the health answer's features (e.g. geoip:
	// "enabled" or "disabled"); they never make it unhealthy.
	Features map[string]string
	// MagicLinks serves sign-in by emailed link.
	MagicLinks MagicLinks
	// OAuth serves social login and linked accounts.
	OAuth OAuth
	// ServiceName brands the docs page (GATEHOUSE_SERVICE_NAME); empty
	// means DefaultServiceName.
	ServiceName string
	// Pages are the hosted pages (an *web.Pages), served at the root of
	// the public URL through the same middleware; nil serves none.
	Pages Pages
	// OIDC is the OpenID Provider (an *oidcprovider.Provider): discovery
	// and the /oauth2/ endpoints, served at the root; nil serves none.
	OIDC Pages
}

// Pages registers the hosted pages' routes (sign-in, the emailed-link
// pages, account, admin) on the server's router.
type Pages interface {
	Register(mux *http.ServeMux)
}

// Server is the HTTP API: a ServeMux with the Huma API on it, wrapped in
// the middleware chain.
type Server struct {
	logger      *slog.Logger
	metrics     *telemetry.Metrics
	version     string
	hsts        bool
	corsOrigins map[string]bool
	maxBody     int64
	trusted     []netip.Prefix
	checks      []HealthCheck
	jwks        func(ctx context.Context) (jose.JSONWebKeySet, error)
	tracer      trace.Tracer // nil: tracing off
	propagator  propagation.TextMapPropagator
	// propagatedHeaders are the propagator's fields, as http.Header keys them.
	propagatedHeaders []string
	accounts          Accounts
	sessions          Sessions
	clock             func() time.Time
	authz             Authorizer
	roles             RoleAdmin
	admin             AccountAdmin
	audit             AuditReader
	clients           ClientAdmin
	consents          ConsentManager
	notify            Notifier
	mfa               MFA
	webhooks          Webhooks
	passkeys          Passkeys
	rl                rateLimiting
	magicLinks        MagicLinks
	oauth             OAuth
	devices           Devices
	signIn            SignIn
	features          map[string]string
	serviceName       string
	pages             Pages
	oidc              Pages
	// selectable are the fields ?fields= may pick, by route pattern
	// (applyFieldSelection fills it while operations are registered).
	selectable map[string]selectable

	mux     *http.ServeMux
	api     huma.API // operations under BasePath
	rootAPI huma.API // operations at the root (/.well-known), same OpenAPI document
	handler http.Handler
}

// New builds the server and registers every operation.
func New(deps Deps) *Server {
	s := &Server{
		logger:      deps.Logger,
		metrics:     deps.Metrics,
		version:     deps.Version,
		maxBody:     deps.MaxBodyBytes,
		trusted:     deps.TrustedProxies,
		checks:      deps.Checks,
		jwks:        deps.JWKS,
		corsOrigins: map[string]bool{},
		propagator:  telemetry.Propagator(),
		accounts:    deps.Accounts,
		sessions:    deps.Sessions,
		clock:       deps.Now,
		authz:       deps.Authz,
		roles:       deps.Roles,
		admin:       deps.Admin,
		audit:       deps.Audit,
		clients:     deps.Clients,
		consents:    deps.Consents,
		notify:      deps.Notify,
		mfa:         deps.MFA,
		webhooks:    deps.Webhooks,
		passkeys:    deps.Passkeys,
		magicLinks:  deps.MagicLinks,
		oauth:       deps.OAuth,
		devices:     deps.Devices,
		signIn:      deps.SignIn,
		features:    deps.Features,
		serviceName: deps.ServiceName,
		pages:       deps.Pages,
		oidc:        deps.OIDC,
		mux:         http.NewServeMux(),
	}
	s.logger = telemetry.WithContextIDs(s.logger)
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = telemetry.NewMetrics()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.version == "" {
		s.version = gatehouse.Version()
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if u, err := url.Parse(deps.PublicURL); err == nil && strings.EqualFold(u.Scheme, "https") {
		s.hsts = true
	}
	for _, o := range deps.CORSOrigins {
		o = strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
		if o != "" && o != "*" && o != "null" {
			s.corsOrigins[o] = true
		}
	}
	if tp := deps.TracerProvider; tp != nil {
		s.tracer = tp.Tracer("github.com/gatehouse-auth/gatehouse/internal/httpapi")
	}
	for _, f := range s.propagator.Fields() {
		s.propagatedHeaders = append(s.propagatedHeaders, http.CanonicalHeaderKey(f))
	}

	s.api = humago.NewWithPrefix(s.mux, BasePath, apiConfig(s.version))
	oapi := s.api.OpenAPI()
	s.rl = newRateLimiting(deps, s.metrics)
	oapi.OnAddOperation = append(oapi.OnAddOperation, s.applyBodyLimit, s.applyRateLimit, s.applyJSONBody, s.applySideEffects,
		s.applyFieldSelection, s.describeOperation) // last: it documents what the others add
	s.rootAPI = humago.New(s.mux, huma.Config{
		OpenAPI:       oapi, // one document for both
		Formats:       huma.DefaultFormats,
		DefaultFormat: "application/json",
		Transformers:  []huma.Transformer{transformProblems},
	})

	s.registerRoutes()
	s.describeAPI()
	s.handler = deviceCookie(s.chain())
	return s
}

// registerRoutes registers every operation, one call per resource file.
func (s *Server) registerRoutes() {
	s.registerHealth()
	s.registerMetrics()
	s.registerJWKS()
	s.registerAuth()
	s.registerProfile()
	s.registerMFA()
	s.registerSessions()
	if s.pages != nil {
		s.pages.Register(s.mux)
	}
	if s.oidc != nil {
		s.oidc.Register(s.mux)
	}
	s.registerAdminUsers()
	s.registerAdminRoles()
	s.registerAdminAudit()
	s.registerAdminClients()
	s.registerConsents()
	s.registerAuthzCheck()
	s.registerWS()
	s.registerWebhooks()
	s.registerWebAuthn()
	s.registerPasswordless()
	s.registerOAuth()
	s.registerDevices()
	s.registerDocs()
}

// applyBodyLimit lifts Huma's own 1 MiB body cap above ours for operations
// that keep the default, so MaxBodyBytes alone decides (both answer 413).
func (s *Server) applyBodyLimit(_ *huma.OpenAPI, op *huma.Operation) {
	const humaDefault = 1 << 20
	if op.MaxBodyBytes == humaDefault || op.MaxBodyBytes == 0 {
		op.MaxBodyBytes = s.maxBody + 1
	}
}

// Handler is the whole HTTP interface: middleware, API, JWKS.
func (s *Server) Handler() http.Handler { return s.handler }

// API is the Huma API under BasePath, for registering operations.
func (s *Server) API() huma.API { return s.api }

// Mux is the router, for the rare route that is not a Huma operation (the
// WebSocket upgrade). Routes added here still go through the middleware.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// OpenAPIJSON returns the OpenAPI 3.1 document, indented, without a final
// newline.
func (s *Server) OpenAPIJSON() ([]byte, error) {
	raw, err := json.Marshal(s.api.OpenAPI())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// OpenAPIJSON returns the OpenAPI document of a server built with zero
// dependencies, for `gatehouse openapi`: every operation is registered
// whatever is wired, so it is the whole API.
func OpenAPIJSON() ([]byte, error) {
	return New(Deps{Version: gatehouse.Version()}).OpenAPIJSON()
}

// NewHTTPServer wraps h in an http.Server with timeouts that bound slow
// clients: headers in 10 s, the whole request in 30 s, the answer in 60 s,
// idle keep-alives 120 s, headers at most 64 KiB.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
