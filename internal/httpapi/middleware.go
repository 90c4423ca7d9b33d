package httpapi

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// RequestIDHeader carries the request id both ways.
const RequestIDHeader = "X-Request-ID"

// requestIDKey is RequestIDHeader as http.Header keys it, so reading and
// setting it need not canonicalize (and allocate) the name each time.
var requestIDKey = http.CanonicalHeaderKey(RequestIDHeader)

// chain wraps the router in the middleware, outermost first:
//
//	begin           recorder, outer panic recovery, X-Request-ID, request info, client IP
//	traceRequests   W3C trace context, one server span per request
//	logRequests     request logger in the context, one access log line
//	measure         Prometheus metrics by route pattern
//	securityHeaders CSP, HSTS, nosniff ...
//	cors            allow-listed origins, preflights
//	limitBody       413 for oversized bodies
//	recoverPanics   handler panics become a 500 problem
//	serveMux        routing; 404 and 405 as problems; records the route pattern;
//	                field selection, ETag/304 and compression (represent)
//
// Handler panics are recovered innermost so that the access log, the
// metrics and the span all see the 500 that was answered; the outer
// recovery only catches bugs in the middleware itself.
func (s *Server) chain() http.Handler {
	var h http.Handler = http.HandlerFunc(s.serveMux)
	h = s.recoverPanics(h)
	h = s.rejectUnstorable(h)
	h = s.limitBody(h)
	h = s.cors(h)
	h = s.securityHeaders(h)
	h = s.measure(h)
	h = s.logRequests(h)
	h = s.traceRequests(h)
	return s.begin(h)
}

// responseRecorder remembers the status and size of the answer. One is made
// per request by begin and shared by every middleware below it. It keeps
// Flush and Hijack working (server-sent events, WebSocket) and unwraps for
// http.ResponseController.
type responseRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	hijacked    bool
}

func recorderOf(w http.ResponseWriter) *responseRecorder {
	if rec, ok := w.(*responseRecorder); ok {
		return rec
	}
	return &responseRecorder{ResponseWriter: w}
}

func (rw *responseRecorder) WriteHeader(code int) {
	if !rw.wroteHeader && (code < 100 || code >= 200 || code == http.StatusSwitchingProtocols) {
		rw.status = code
		rw.wroteHeader = true
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseRecorder) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (rw *responseRecorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// SetReadDeadline keeps handlers from putting a read deadline on the
// connection: it accepts the call and does nothing. Huma sets one (its
// operation's BodyReadTimeout, 5 s) before it reads a body, and never
// clears it. By then rejectUnstorable has read the whole body, so
// net/http's background read, which watches for the client going away,
// is already waiting on the socket; the deadline fires under it after 5 s
// and net/http takes that for a dead client and cancels the context of the
// connection, which every later request on the same keep-alive connection
// inherits. One handler slower than 5 s (a database connect under load)
// then failed every request after it on that connection with "context
// canceled" in microseconds. The body itself is read under the server's
// ReadTimeout before any handler runs.
func (rw *responseRecorder) SetReadDeadline(time.Time) error { return nil }

// Flush implements http.Flusher.
func (rw *responseRecorder) Flush() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker.
func (rw *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err == nil {
		rw.hijacked = true
	}
	return conn, brw, err
}

// Status is the status answered: 200 when the handler wrote nothing, 101
// for a hijacked (upgraded) connection.
func (rw *responseRecorder) Status() int {
	switch {
	case rw.status != 0:
		return rw.status
	case rw.hijacked:
		return http.StatusSwitchingProtocols
	default:
		return http.StatusOK
	}
}

// validRequestID accepts ids a client may choose: 1 to 128 characters of
// [A-Za-z0-9._-]. Anything else (empty, long, spaces, quotes, control
// characters that could forge log lines) is replaced by a fresh id.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// begin is the outermost layer: it makes the recorder, recovers panics the
// inner recovery could not, settles the request id (echoed on every
// answer), and puts the request info and client address in the context.
func (s *Server) begin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorderOf(w)
		defer func() {
			if v := recover(); v != nil {
				s.panicked(rec, r, v)
			}
		}()

		id := ""
		if v := r.Header[requestIDKey]; len(v) > 0 {
			id = v[0]
		}
		if !validRequestID(id) {
			id = gatehouse.NewID()
		}
		rec.Header()[requestIDKey] = []string{id}

		info := &telemetry.RequestInfo{RequestID: id}
		ctx := telemetry.WithRequestInfo(r.Context(), info)
		ctx = withClientIP(ctx, ClientIP(r, s.trusted))
		cleanUserAgent(r)
		ctx = audit.WithRequest(ctx, audit.Meta{IP: clientMeta(ctx, "", "").IP, UserAgent: r.UserAgent()})
		// The logger's handler stamps each line with the ids in the
		// context (request, user, trace, span), whoever logs.
		ctx = telemetry.WithLogger(ctx, s.logger)
		r = r.WithContext(ctx)
		next.ServeHTTP(rec, r)
	})
}

// recoverPanics turns a handler panic into a 500 problem; the panic value
// and the stack go to the log with the request id, never to the client.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorderOf(w)
		defer func() {
			if v := recover(); v != nil {
				s.panicked(rec, r, v)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) panicked(rec *responseRecorder, r *http.Request, v any) {
	if v == http.ErrAbortHandler {
		panic(v) // net/http's way to abort a response quietly
	}
	ctx := r.Context()
	telemetry.Logger(ctx).LogAttrs(ctx, slog.LevelError, "panic serving request",
		slog.String("panic", fmt.Sprint(v)),
		slog.String("method", r.Method),
		slog.String("path", truncate(r.URL.Path, maxLoggedPath)),
		slog.String("stack", string(debug.Stack())),
	)
	if rec.wroteHeader {
		// Part of the answer is out; a problem body now would be garbage
		// appended to it. Abort the connection so the client sees a failure.
		panic(http.ErrAbortHandler)
	}
	p := internalProblem(fmt.Errorf("panic: %v", v))
	p.logged = true
	writeProblem(rec, r, p)
}

// traceRequests continues the caller's W3C trace (traceparent, baggage) and
// runs the request in a server span. With tracing off (no tracer) there is
// no span, but the caller's trace id, or a new one, still reaches the logs
// and outbound requests.
func (s *Server) traceRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := telemetry.RequestInfoFrom(r.Context())
		ctx := r.Context()
		if s.tracedHeader(r.Header) {
			ctx = s.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		if s.tracer == nil {
			if !trace.SpanContextFromContext(ctx).IsValid() {
				ctx = trace.ContextWithSpanContext(ctx, newSpanContext())
			}
			if info != nil {
				info.TraceID = trace.SpanContextFromContext(ctx).TraceID().String()
			}
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		rec := recorderOf(w)
		method := spanMethod(r.Method)
		ctx, span := s.tracer.Start(ctx, method,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", method),
				attribute.String("url.path", r.URL.Path),
				attribute.String("client.address", ClientIPFrom(ctx).String()),
			))
		if !span.SpanContext().IsValid() {
			// Tracing is off (or this trace is not recorded here) and the
			// caller sent no trace context: make one anyway, unsampled, so
			// the logs of this request and of what it calls (traceparent
			// goes out on outbound requests) share a trace id.
			ctx = trace.ContextWithSpanContext(ctx, newSpanContext())
		}
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() && info != nil {
			info.TraceID = sc.TraceID().String()
		}
		defer func() {
			status := rec.Status()
			if route := info.Route(); route != "" {
				span.SetName(route)
				span.SetAttributes(attribute.String("http.route", routePath(route)))
			}
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// tracedHeader reports whether h has a header the propagator reads
// (traceparent, tracestate, baggage): without one, extracting finds
// nothing, and is skipped.
func (s *Server) tracedHeader(h http.Header) bool {
	for _, k := range s.propagatedHeaders {
		if len(h[k]) > 0 {
			return true
		}
	}
	return false
}

// newSpanContext returns a fresh, unsampled span context.
func newSpanContext() trace.SpanContext {
	var ids [len(trace.TraceID{}) + len(trace.SpanID{})]byte
	var tid trace.TraceID
	var sid trace.SpanID
	for !tid.IsValid() || !sid.IsValid() {
		_, _ = rand.Read(ids[:])
		copy(tid[:], ids[:])
		copy(sid[:], ids[len(tid):])
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})
}

// spanMethod folds unknown methods to "_OTHER" as the OpenTelemetry HTTP
// conventions ask, so junk methods cannot name spans.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	default:
		return "_OTHER"
	}
}

// routePath strips the method from a ServeMux pattern: "GET /a/{id}" → "/a/{id}".
func routePath(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		return strings.TrimSpace(p)
	}
	return pattern
}

// maxLoggedPath caps the path in log lines so a huge URL cannot flood them.
const maxLoggedPath = 512

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// quietRoutes are polled by machines; their successes log at debug level.
var quietRoutes = map[string]bool{
	"GET " + BasePath + "/health":       true,
	"GET " + BasePath + "/health/live":  true,
	"GET " + BasePath + "/health/ready": true,
	"GET " + BasePath + "/metrics":      true,
}

// logRequests puts the request's logger (request id, trace id) in the
// context and writes one access log line per request when it is done:
// method, path (never the query string, which may carry tokens), route,
// status, duration, bytes, client address and, when the auth middleware
// recorded one, the user id. No headers are logged.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorderOf(w)
		start := time.Now()
		ctx := r.Context()
		info := telemetry.RequestInfoFrom(ctx)
		if info == nil { // only when the chain is assembled differently
			info = &telemetry.RequestInfo{}
		}
		log := s.logger // begin put it in the context too

		defer func() {
			status := rec.Status()
			route := info.Route()
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelError
			case status == StatusClientClosedRequest:
				level = slog.LevelDebug // nobody is waiting for the answer
			case status < 400 && quietRoutes[route]:
				level = slog.LevelDebug
			}
			if !log.Enabled(ctx, level) {
				return
			}
			if route == "" {
				route = telemetry.UnmatchedRoute
			}
			line := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", truncate(r.URL.Path, maxLoggedPath)),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Float64("duration_ms", math.Round(float64(time.Since(start).Microseconds()))/1000),
				slog.Int64("bytes", rec.bytes),
				slog.String("client_ip", ClientIPFrom(ctx).String()),
			}
			switch status {
			case http.StatusTooManyRequests, http.StatusServiceUnavailable:
				// A flood of these is one story; sample them (the summary
				// line counts the rest) so they cannot drown the log.
				line = append(line, telemetry.Sample("http_"+strconv.Itoa(status)))
			}
			// request_id, user_id, trace_id and span_id come from the
			// context, through the logger's handler.
			log.LogAttrs(ctx, level, "http request", line...)
		}()
		next.ServeHTTP(rec, r)
	})
}

// measure records the HTTP metrics. The route label is read after the
// router ran (it stores the matched pattern in the request info), so it is
// always a pattern, never a raw path.
func (s *Server) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorderOf(w)
		info := telemetry.RequestInfoFrom(r.Context())
		start := time.Now()
		s.metrics.RequestStarted()
		defer func() {
			s.metrics.RequestFinished(r.Method, info.Route(), rec.Status(), time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// apiCSP is the policy for API answers: nothing may load, nothing may
// frame. The docs page replaces it with the one its renderer needs.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every answer carries. They are set
// before the handler runs, so a handler can still override one (the docs
// page its CSP, the JWKS its Cache-Control).
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		n := len(securityHeaders)
		if !s.hsts {
			n-- // Strict-Transport-Security, the last one
		}
		// One array holds every value; each header gets a slice of one
		// element of it, capped, so a later Add to one reallocates
		// instead of writing over the next (Set, one by one, would
		// allocate each).
		values := securityHeaderValues
		for i, name := range securityHeaders[:n] {
			h[name] = values[i : i+1 : i+1]
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders are the headers securityHeaders sets, canonical, and
// securityHeaderValues their values (Strict-Transport-Security last, set
// only over https).
var (
	securityHeaders = [...]string{
		"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
		// Answers carry tokens and personal data: no cache may keep them
		// unless the handler says otherwise.
		"Cache-Control",
		"Strict-Transport-Security",
	}
	securityHeaderValues = [len(securityHeaders)]string{
		apiCSP, "DENY", "nosniff", "no-referrer",
		"no-store",
		"max-age=63072000; includeSubDomains",
	}
)

var (
	corsMethods = map[string]bool{
		http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
		http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	}
	corsAllowMethods  = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
	corsAllowHeaders  = "Authorization, Content-Type, X-Request-ID"
	corsExposeHeaders = "X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Location"
)

// cors answers browsers for the exact origins allowed, with credentials.
// Other origins get no CORS headers at all, so the browser keeps the
// answer from the page. Preflights are answered here, 204, and go no
// further.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if len(s.corsOrigins) > 0 {
			h.Add("Vary", "Origin")
		}
		origin := r.Header.Get("Origin")
		allowed := origin != "" && s.corsOrigins[origin]

		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if allowed && corsMethods[r.Header.Get("Access-Control-Request-Method")] {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
				h.Set("Access-Control-Allow-Methods", corsAllowMethods)
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies at MaxBodyBytes: a declared length over it
// is refused at once; a body that turns out longer fails its read with an
// *http.MaxBytesError, which Problem and the Huma error hook map to 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.maxBody {
			w.Header().Set("Connection", "close")
			writeProblem(w, r, tooLargeProblem(s.maxBody))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r = r.WithContext(r.Context())
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// serveMux routes the request. The ServeMux answers unknown paths, wrong
// methods and unclean paths with plain text or HTML; the first two are
// answered here as problems instead (405 keeps the mux's Allow header),
// and the redirect of an unclean path goes out without a body. After
// routing, the matched pattern is recorded for the metrics, the span and
// the access log.
func (s *Server) serveMux(w http.ResponseWriter, r *http.Request) {
	if clean := cleanPath(r.URL.Path); clean != r.URL.Path && strings.HasPrefix(r.URL.Path, "/") {
		// "//" or "/./" in the path: redirect to the clean one as the mux
		// would, but without its HTML body.
		w.Header().Set("Location", (&url.URL{Path: clean, RawQuery: r.URL.RawQuery}).String())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	h, pattern := s.mux.Handler(r)
	if r.Method == http.MethodHead && sideEffectGETs[pattern] != "" {
		// The mux would run the GET handler for HEAD; this one changes
		// state, so it does not run at all.
		if info := telemetry.RequestInfoFrom(r.Context()); info != nil {
			info.SetRoute(pattern)
		}
		w.Header().Set("Allow", http.MethodGet)
		writeProblem(w, r, newProblem(http.StatusMethodNotAllowed,
			"HEAD is not served here: a GET of this resource "+sideEffectGETs[pattern]+"; send GET"))
		return
	}
	if pattern == "" {
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusNotFound:
			writeProblem(w, r, newProblem(http.StatusNotFound, "no such resource"))
			return
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeProblem(w, r, newProblem(http.StatusMethodNotAllowed,
				"method not allowed on this resource; see the Allow header"))
			return
		}
	}
	if info := telemetry.RequestInfoFrom(r.Context()); info != nil {
		defer func() { info.SetRoute(r.Pattern) }()
	}
	s.represent(w, r, s.mux, pattern)
}

// sideEffectGETs are the GET routes (ServeMux patterns) whose handler
// changes state, with what it does. The ServeMux routes HEAD to GET
// handlers, so without this a HEAD (a link checker, a mail scanner, a
// prefetch) would spend a magic link or an OAuth state while discarding
// the answer; serveMux answers HEAD on these with 405 and Allow: GET
// instead, and the OpenAPI document says so (applySideEffects). Every
// other GET route only reads (TestEveryGETRouteIsClassified keeps the
// list honest); the built-in pages render without spending their token.
var sideEffectGETs = map[string]string{
	"GET " + BasePath + "/auth/magic-link/verify":     "spends the link and signs in",
	"GET " + BasePath + "/oauth/{provider}/authorize": "starts a sign-in flow (stores its state, sets a cookie)",
	"GET " + BasePath + "/oauth/{provider}/callback":  "spends the flow's state and signs in or links an account",
	"GET " + BasePath + "/ws":                         "spends the ticket and opens a socket",
}

// SideEffectGETs returns the GET routes that HEAD does not reach, as
// ServeMux patterns, for tests and documentation.
func SideEffectGETs() []string { return slices.Sorted(maps.Keys(sideEffectGETs)) }

// applySideEffects documents on a GET operation that changes state that
// HEAD answers 405.
func (s *Server) applySideEffects(_ *huma.OpenAPI, op *huma.Operation) {
	if what := sideEffectGETs[op.Method+" "+BasePath+op.Path]; what != "" {
		op.Description += "\n\nThis GET " + what + ", so HEAD is not served: it answers 405 with `Allow: GET` and changes nothing."
	}
}

// cleanPath is p (starting with "/") as the ServeMux routes it: no "//",
// "." or ".." elements, a trailing slash kept.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// statusProbe records what the ServeMux's own fallback handlers answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
