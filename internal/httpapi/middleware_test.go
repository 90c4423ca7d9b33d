package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

func TestRequestID(t *testing.T) {
	e := newEnv(t, nil)

	t.Run("echoed when sane", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/health/live", nil)
		req.Header.Set("X-Request-ID", "abc-DEF_1.2")
		rec := e.do(req)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "abc-DEF_1.2", rec.Header().Get("X-Request-ID"))
	})

	t.Run("generated when absent", func(t *testing.T) {
		a := e.get("/api/v1/health/live").Header().Get("X-Request-ID")
		b := e.get("/api/v1/health/live").Header().Get("X-Request-ID")
		require.Len(t, a, 36) // a UUID
		require.NotEqual(t, a, b)
	})

	for name, junk := range map[string]string{
		"too long":   strings.Repeat("a", 129),
		"spaces":     "a b",
		"quotes":     `a"b`,
		"newline":    "a\nlevel=error",
		"unicode":    "ünïcode",
		"semicolons": "a;b",
	} {
		t.Run("rejects "+name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/health/live", nil)
			req.Header["X-Request-Id"] = []string{junk}
			got := e.do(req).Header().Get("X-Request-ID")
			require.NotEqual(t, junk, got)
			require.Len(t, got, 36)
		})
	}

	t.Run("128 characters are fine", func(t *testing.T) {
		id := strings.Repeat("x", 128)
		req := httptest.NewRequest(http.MethodGet, "/api/v1/health/live", nil)
		req.Header.Set("X-Request-ID", id)
		require.Equal(t, id, e.do(req).Header().Get("X-Request-ID"))
	})

	t.Run("on error answers too", func(t *testing.T) {
		for _, rec := range []*httptest.ResponseRecorder{e.get("/nope"), e.get("/api/v1/test/panic")} {
			require.Len(t, rec.Header().Get("X-Request-ID"), 36)
		}
	})
}

func TestPanicBecomesProblem(t *testing.T) {
	e := newEnv(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/test/panic", nil)
	req.Header.Set("X-Request-ID", "req-panic-1")
	rec := e.do(req)

	p := requireProblem(t, rec, http.StatusInternalServerError, gatehouse.CodeInternal)
	require.Equal(t, "internal error; request id req-panic-1", p.Detail)
	body := rec.Body.String()
	require.NotContains(t, body, "boom")
	require.NotContains(t, body, "goroutine")
	require.NotContains(t, body, ".go:")
	require.Empty(t, p.Errors)

	logged := e.logs.find(t, "panic serving request")
	require.Equal(t, "req-panic-1", logged["request_id"])
	require.Contains(t, logged["panic"], "boom: secret-in-panic")
	require.Contains(t, logged["stack"], "goroutine")

	access := e.logs.find(t, "http request")
	require.EqualValues(t, 500, access["status"])
	require.Equal(t, "ERROR", access["level"])
	// Logged once, with the stack; not again as an "internal error".
	for _, l := range e.logs.lines(t) {
		require.NotEqual(t, "internal error", l["msg"])
	}
}

func TestPanicAfterHeadersAbortsConnection(t *testing.T) {
	e := newEnv(t, nil)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	ts.Config.ErrorLog = nil

	resp, err := http.Get(ts.URL + "/api/v1/test/partial")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	require.Error(t, err, "a truncated answer must not look complete")
	require.Contains(t, e.logs.String(), "after the headers")
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)

	p := requireProblem(t, e.get("/api/v1/no/such/thing"), http.StatusNotFound, gatehouse.CodeNotFound)
	require.NotContains(t, p.Detail, "/no/such")
	requireProblem(t, e.get("/"), http.StatusNotFound, gatehouse.CodeNotFound)

	rec := e.do(httptest.NewRequest(http.MethodDelete, "/api/v1/health", nil))
	requireProblem(t, rec, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed)
	require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))

	// Huma's own routes are covered the same way.
	rec = e.do(httptest.NewRequest(http.MethodPost, "/api/v1/openapi.json", nil))
	requireProblem(t, rec, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed)

	// The ServeMux's path cleaning still redirects, without its HTML.
	rec = e.get("/api/v1//health")
	require.Equal(t, http.StatusTemporaryRedirect, rec.Code)
	require.Equal(t, "/api/v1/health", rec.Header().Get("Location"))
	require.Empty(t, rec.Body.String())
}

func TestBodyProblems(t *testing.T) {
	e := newEnv(t, nil)

	t.Run("malformed JSON", func(t *testing.T) {
		p := requireProblem(t, e.postJSON("/api/v1/test/echo", `{"email": "a@b.c",`), http.StatusBadRequest, httpapi.CodeMalformedJSON)
		require.NotEmpty(t, p.Errors)
		require.Equal(t, "body", p.Errors[0].Location)
		// The body is never echoed back.
		require.NotContains(t, p.Errors[0].Message, "a@b.c")
	})

	t.Run("missing body", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/test/echo", nil)
		requireProblem(t, e.do(req), http.StatusBadRequest, gatehouse.CodeBadRequest)
	})

	t.Run("validation", func(t *testing.T) {
		rec := e.postJSON("/api/v1/test/echo", `{"email":"not-an-email","age":-1,"password":"hunter2"}`)
		p := requireProblem(t, rec, http.StatusUnprocessableEntity, gatehouse.CodeValidationFailed)
		locs := map[string]bool{}
		for _, fe := range p.Errors {
			locs[fe.Location] = true
			require.NotEmpty(t, fe.Message)
		}
		require.True(t, locs["body.email"], "%+v", p.Errors)
		require.True(t, locs["body.name"], "missing required property is named: %+v", p.Errors)
		require.True(t, locs["body.age"], "%+v", p.Errors)
		require.NotContains(t, rec.Body.String(), "hunter2", "values are not echoed")
		require.NotContains(t, rec.Body.String(), `"value"`)
	})

	t.Run("valid", func(t *testing.T) {
		rec := e.postJSON("/api/v1/test/echo", `{"email":"a@example.com","name":"Al"}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.JSONEq(t, `{"email":"a@example.com","name":"Al"}`, rec.Body.String())
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	})

	t.Run("unsupported media type", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/test/echo", strings.NewReader(`email=a`))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		requireProblem(t, e.do(req), http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMedia)
	})

	big := `{"email":"a@example.com","name":"` + strings.Repeat("x", 2000) + `"}`

	t.Run("too large with Content-Length", func(t *testing.T) {
		p := requireProblem(t, e.postJSON("/api/v1/test/echo", big), http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge)
		require.Contains(t, p.Detail, "1024")
	})

	t.Run("too large without Content-Length (Huma operation)", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/test/echo", io.NopCloser(strings.NewReader(big)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		requireProblem(t, e.do(req), http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge)
	})

	t.Run("too large without Content-Length (plain handler)", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/test/raw", io.NopCloser(strings.NewReader(big)))
		req.ContentLength = -1
		requireProblem(t, e.do(req), http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge)
	})

	t.Run("at the limit is fine", func(t *testing.T) {
		body := strings.Repeat("x", 1024)
		req := httptest.NewRequest(http.MethodPost, "/api/v1/test/raw", io.NopCloser(strings.NewReader(body)))
		req.ContentLength = -1
		require.Equal(t, http.StatusNoContent, e.do(req).Code)
	})
}

func TestBodyLimitAboveHumaDefault(t *testing.T) {
	// Huma caps bodies at 1 MiB on its own; MaxBodyBytes must win.
	e := newEnv(t, func(d *httpapi.Deps) { d.MaxBodyBytes = 2 << 20 })
	body := `{"email":"a@example.com","name":"` + strings.Repeat("x", 1<<20+100) + `"}`
	rec := e.postJSON("/api/v1/test/echo", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String()[:min(200, rec.Body.Len())])
}

func TestSecurityHeaders(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		hsts      bool
	}{
		{"http://localhost:8080", false},
		{"https://auth.example.com", true},
		{"HTTPS://auth.example.com", true},
		{"", false},
	} {
		e := newEnv(t, func(d *httpapi.Deps) { d.PublicURL = tc.publicURL })
		for _, path := range []string{"/api/v1/health", "/nope", "/.well-known/jwks.json"} {
			h := e.get(path).Header()
			require.Equal(t, "default-src 'none'; frame-ancestors 'none'", h.Get("Content-Security-Policy"), path)
			require.Equal(t, "DENY", h.Get("X-Frame-Options"))
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			require.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
			if tc.hsts {
				require.Equal(t, "max-age=63072000; includeSubDomains", h.Get("Strict-Transport-Security"))
			} else {
				require.Empty(t, h.Get("Strict-Transport-Security"), tc.publicURL)
			}
		}
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, func(d *httpapi.Deps) {
		d.CORSOrigins = []string{"https://app.example.com/", " https://admin.example.com", "*", "null"}
	})

	t.Run("allowed origin", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/health/live", nil)
		req.Header.Set("Origin", "https://app.example.com")
		h := e.do(req).Header()
		require.Equal(t, "https://app.example.com", h.Get("Access-Control-Allow-Origin"))
		require.Equal(t, "true", h.Get("Access-Control-Allow-Credentials"))
		require.Contains(t, h.Values("Vary"), "Origin")
		require.Contains(t, h.Get("Access-Control-Expose-Headers"), "X-Request-ID")
	})

	for name, origin := range map[string]string{
		"other origin":   "https://evil.example.com",
		"suffix attack":  "https://app.example.com.evil.com",
		"scheme differs": "http://app.example.com",
		"null":           "null",
	} {
		t.Run("denied "+name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/health/live", nil)
			req.Header.Set("Origin", origin)
			rec := e.do(req)
			require.Equal(t, http.StatusOK, rec.Code)
			for k := range rec.Header() {
				require.False(t, strings.HasPrefix(k, "Access-Control-"), "unexpected %s", k)
			}
			require.Contains(t, rec.Header().Values("Vary"), "Origin")
		})
	}

	t.Run("preflight allowed", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodOptions, "/api/v1/test/echo", nil)
		req.Header.Set("Origin", "https://admin.example.com")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		rec := e.do(req)
		require.Equal(t, http.StatusNoContent, rec.Code)
		h := rec.Header()
		require.Equal(t, "https://admin.example.com", h.Get("Access-Control-Allow-Origin"))
		require.Equal(t, "true", h.Get("Access-Control-Allow-Credentials"))
		require.Contains(t, h.Get("Access-Control-Allow-Methods"), "POST")
		for _, want := range []string{"Authorization", "Content-Type", "X-Request-ID"} {
			require.Contains(t, h.Get("Access-Control-Allow-Headers"), want)
		}
		require.NotEmpty(t, h.Get("Access-Control-Max-Age"))
		require.Empty(t, rec.Body.String())
	})

	t.Run("preflight denied", func(t *testing.T) {
		for _, tc := range [][2]string{{"https://evil.example.com", "POST"}, {"https://app.example.com", "BREW"}} {
			req := httptest.NewRequest(http.MethodOptions, "/api/v1/test/echo", nil)
			req.Header.Set("Origin", tc[0])
			req.Header.Set("Access-Control-Request-Method", tc[1])
			rec := e.do(req)
			require.Equal(t, http.StatusNoContent, rec.Code)
			require.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
			require.Empty(t, rec.Header().Get("Access-Control-Allow-Methods"))
		}
	})

	t.Run("plain OPTIONS is routed", func(t *testing.T) {
		rec := e.do(httptest.NewRequest(http.MethodOptions, "/api/v1/health", nil))
		requireProblem(t, rec, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed)
	})

	t.Run("no origins configured: no Vary", func(t *testing.T) {
		e := newEnv(t, nil)
		req := httptest.NewRequest(http.MethodGet, "/api/v1/health/live", nil)
		req.Header.Set("Origin", "https://app.example.com")
		rec := e.do(req)
		require.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
		require.Empty(t, rec.Header().Values("Vary"))
	})
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/test/users/42?token=supersecret", nil)
	req.Header.Set("Authorization", "Bearer eyJsecret")
	req.Header.Set("X-Request-ID", "rid-log")
	req.RemoteAddr = "203.0.113.9:5555"
	rec := e.do(req)
	require.Equal(t, http.StatusOK, rec.Code)

	line := e.logs.find(t, "http request")
	require.Equal(t, "INFO", line["level"])
	require.Equal(t, "rid-log", line["request_id"])
	require.Equal(t, "GET", line["method"])
	require.Equal(t, "/api/v1/test/users/42", line["path"])
	require.Equal(t, "GET /api/v1/test/users/{id}", line["route"])
	require.EqualValues(t, 200, line["status"])
	require.EqualValues(t, rec.Body.Len(), line["bytes"])
	require.Contains(t, line, "duration_ms")
	require.Equal(t, "203.0.113.9", line["client_ip"])
	require.Equal(t, "user-42", line["user_id"])

	all := e.logs.String()
	require.NotContains(t, all, "supersecret")
	require.NotContains(t, all, "eyJsecret")
	require.NotContains(t, all, "Authorization")

	// Probes log at debug when they succeed, at info otherwise.
	e2 := newEnv(t, nil)
	e2.get("/api/v1/health/live")
	require.Equal(t, "DEBUG", e2.logs.find(t, "http request")["level"])

	e3 := newEnv(t, nil)
	e3.get("/nope")
	l := e3.logs.find(t, "http request")
	require.Equal(t, "unmatched", l["route"])
	require.Equal(t, "INFO", l["level"])
}

func TestTracing(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	e := newEnv(t, func(d *httpapi.Deps) { d.TracerProvider = tp })

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequest(http.MethodGet, "/api/v1/test/users/7", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	require.Equal(t, http.StatusOK, e.do(req).Code)
	e.get("/api/v1/test/panic")
	e.do(httptest.NewRequest("BREW", "/nope", nil))

	spans := sr.Ended()
	require.Len(t, spans, 3)
	s := spans[0]
	require.Equal(t, "GET /api/v1/test/users/{id}", s.Name())
	require.Equal(t, traceID, s.SpanContext().TraceID().String())
	require.Equal(t, "00f067aa0ba902b7", s.Parent().SpanID().String())
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	require.Equal(t, "/api/v1/test/users/{id}", attrs["http.route"])
	require.Equal(t, "200", attrs["http.response.status_code"])
	require.Equal(t, "GET", attrs["http.request.method"])

	require.Equal(t, "Error", spans[1].Status().Code.String())
	require.Equal(t, "_OTHER", spans[2].Name())

	line := e.logs.find(t, "http request")
	require.Equal(t, traceID, line["trace_id"])
}

func TestTraceIDLoggedWithoutTracing(t *testing.T) {
	// No provider configured: the caller's trace id still reaches the log.
	e := newEnv(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/health/live", nil)
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	e.do(req)
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", e.logs.find(t, "http request")["trace_id"])

	// No trace context either: one is made, so the request's lines (and
	// whatever it calls) still share a trace id.
	e2 := newEnv(t, nil)
	e2.get("/api/v1/health/live")
	line := e2.logs.find(t, "http request")
	require.Regexp(t, "^[0-9a-f]{32}$", line["trace_id"])
	require.Regexp(t, "^[0-9a-f]{16}$", line["span_id"])
	require.NotEqual(t, "0af7651916cd43dd8448eb211c80319c", line["trace_id"])
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	e := newEnv(t, nil)
	for _, id := range []string{"111", "222", "333"} {
		require.Equal(t, http.StatusOK, e.get("/api/v1/test/users/"+id).Code)
	}
	e.get("/api/v1/no/such/999")
	e.do(httptest.NewRequest("BREW", "/api/v1/health", nil))

	rec := e.get("/api/v1/metrics")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "text/plain")
	body := rec.Body.String()
	require.Contains(t, body, `http_requests_total{method="GET",route="GET /api/v1/test/users/{id}",status="200"} 3`)
	require.Contains(t, body, `http_requests_total{method="GET",route="unmatched",status="404"} 1`)
	require.Contains(t, body, `http_requests_total{method="OTHER",route="unmatched",status="405"} 1`)
	require.Contains(t, body, `http_server_request_duration_seconds_bucket{method="GET",route="GET /api/v1/test/users/{id}",status="200"`)
	require.Contains(t, body, "http_requests_in_flight 1") // the scrape itself
	require.Contains(t, body, "go_goroutines")
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "http_") || !strings.Contains(l, "{") {
			continue
		}
		labels := l[strings.Index(l, "{"):strings.LastIndex(l, "}")]
		for _, raw := range []string{"111", "222", "333", "999", "/no/such"} {
			require.NotContains(t, labels, raw)
		}
	}
}

func TestDomainErrors(t *testing.T) {
	e := newEnv(t, nil)
	want := map[gatehouse.Code]int{
		gatehouse.CodeInvalidToken: 400, gatehouse.CodeUnauthorized: 401, gatehouse.CodeInvalidCredentials: 401,
		gatehouse.CodeInvalidRefreshToken: 401, gatehouse.CodeRefreshTokenReused: 401, gatehouse.CodeMFAInvalidCode: 401,
		gatehouse.CodePermissionDenied: 403, gatehouse.CodeRecentAuthRequired: 403, gatehouse.CodeNotFound: 404,
		gatehouse.CodeEmailTaken: 409, gatehouse.CodeSystemRole: 409, gatehouse.CodeLastLoginMethod: 409,
		gatehouse.CodeConflict: 409, gatehouse.CodeValidationFailed: 422, gatehouse.CodeWeakPassword: 422,
		gatehouse.CodeAccountLocked: 423, gatehouse.CodeRateLimited: 429, gatehouse.CodeBadRequest: 400,
		httpapi.CodeMalformedJSON: 400, httpapi.CodeMethodNotAllowed: 405, httpapi.CodePayloadTooLarge: 413,
		httpapi.CodeUnsupportedMedia: 415, gatehouse.CodeUnavailable: 503, gatehouse.CodeInternal: 500,
	}
	for code, status := range want {
		require.Equal(t, status, httpapi.HTTPStatus(code), code)
		req := httptest.NewRequest(http.MethodGet, "/api/v1/test/domain/"+string(code), nil)
		req.Header.Set("X-Request-ID", "rid-"+string(code))
		rec := e.do(req)
		p := requireProblem(t, rec, status, code)
		if code == gatehouse.CodeInternal {
			require.Equal(t, "internal error; request id rid-internal_error", p.Detail)
		} else {
			require.Equal(t, "message for "+string(code), p.Detail)
		}
		require.NotContains(t, rec.Body.String(), "cause-", "the cause is never shown")
	}
	// An unknown code is a bug: 500, generic.
	require.Equal(t, 500, httpapi.HTTPStatus("made_up"))
	requireProblem(t, e.get("/api/v1/test/domain/made_up"), 500, gatehouse.CodeInternal)
}

func TestUnknownErrorIsGeneric500(t *testing.T) {
	e := newEnv(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/test/unknown", nil)
	req.Header.Set("X-Request-ID", "rid-unknown")
	rec := e.do(req)
	p := requireProblem(t, rec, http.StatusInternalServerError, gatehouse.CodeInternal)
	require.Equal(t, "internal error; request id rid-unknown", p.Detail)
	require.NotContains(t, rec.Body.String(), "hunter2")
	require.NotContains(t, rec.Body.String(), "10.1.2.3")

	logged := e.logs.find(t, "internal error")
	require.Equal(t, "rid-unknown", logged["request_id"])
	require.Contains(t, logged["error"], "hunter2")
}

func TestHijackAndFlushPassThrough(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.Mux().HandleFunc("GET /api/v1/test/stream", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: one\n\n"))
		w.(http.Flusher).Flush()
	})
	e.srv.Mux().HandleFunc("GET /api/v1/test/upgrade", func(w http.ResponseWriter, _ *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhello")
		_ = brw.Flush()
	})
	ts := httptest.NewServer(e.h)
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/api/v1/test/stream")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "data: one\n\n", string(b))

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /api/v1/test/upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"))
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, status, "101")

	require.Eventually(t, func() bool {
		return strings.Contains(e.logs.String(), `"status":101`)
	}, 5*time.Second, 10*time.Millisecond)
}

func TestClientIPInContext(t *testing.T) {
	var got netip.Addr
	e := newEnv(t, func(d *httpapi.Deps) { d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	e.srv.Mux().HandleFunc("GET /api/v1/test/ip", func(w http.ResponseWriter, r *http.Request) {
		got = httpapi.ClientIPFrom(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/test/ip", nil)
	req.RemoteAddr = "10.0.0.1:1234"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	e.do(req)
	require.Equal(t, netip.MustParseAddr("198.51.100.7"), got)

	require.False(t, httpapi.ClientIPFrom(context.Background()).IsValid())
}

func TestNewHTTPServer(t *testing.T) {
	h := http.NotFoundHandler()
	s := httpapi.NewHTTPServer(":0", h)
	require.Equal(t, ":0", s.Addr)
	require.NotNil(t, s.Handler)
	require.Equal(t, 10*time.Second, s.ReadHeaderTimeout)
	require.Equal(t, 30*time.Second, s.ReadTimeout)
	require.Equal(t, 60*time.Second, s.WriteTimeout)
	require.Equal(t, 120*time.Second, s.IdleTimeout)
	require.Equal(t, 64<<10, s.MaxHeaderBytes)
}

func TestZeroDeps(t *testing.T) {
	s := httpapi.New(httpapi.Deps{})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/health", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var body httpapi.HealthBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, gatehouse.Version(), body.Version)
	require.Equal(t, "ok", body.Status)
	require.NotNil(t, s.API())

	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
}

// JSON bodies are read strictly: keys match exactly, once per object, and
// a body must say it is JSON. Operations without a body, and empty bodies,
// are answered as before.
func TestStrictJSONBodies(t *testing.T) {
	e := newEnv(t, nil)
	post := func(body, contentType string, length int64) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/test/echo", io.NopCloser(strings.NewReader(body)))
		req.ContentLength = length
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return e.do(req)
	}
	valid := `{"email":"a@example.com","name":"Al"}`

	t.Run("a key differing only in case is not the property", func(t *testing.T) {
		for _, body := range []string{
			`{"email":"a@example.com","Name":"Al"}`,
			`{"Email":"a@example.com","name":"Al"}`,
			`{"email":"a@example.com","name":"Al","NAME":"Bob"}`,
		} {
			p := requireProblem(t, e.postJSON("/api/v1/test/echo", body), http.StatusUnprocessableEntity, gatehouse.CodeValidationFailed)
			require.NotEmpty(t, p.Errors, body)
		}
	})

	t.Run("a repeated key is malformed", func(t *testing.T) {
		rec := e.postJSON("/api/v1/test/echo", `{"email":"a@example.com","name":"Al","name":"Bob"}`)
		p := requireProblem(t, rec, http.StatusBadRequest, httpapi.CodeMalformedJSON)
		require.Equal(t, []gatehouse.FieldError{{Location: "body.name", Message: p.Detail}}, p.Errors)
		p = requireProblem(t, e.postJSON("/api/v1/test/echo", `{"email":"a@example.com","name":"Al","n\u0061me":"Bob"}`),
			http.StatusBadRequest, httpapi.CodeMalformedJSON)
		require.Equal(t, "body.name", p.Errors[0].Location, "an escaped spelling is the same key")
	})

	t.Run("a body must be declared JSON", func(t *testing.T) {
		for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/cbor", "not a media type"} {
			requireProblem(t, post(valid, ct, int64(len(valid))), http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMedia)
			requireProblem(t, post(valid, ct, -1), http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMedia)
		}
		for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
			rec := post(valid, ct, -1)
			require.Equal(t, http.StatusOK, rec.Code, "%s: %s", ct, rec.Body.String())
			require.JSONEq(t, valid, rec.Body.String())
		}
	})

	t.Run("empty bodies and operations without a body are as before", func(t *testing.T) {
		requireProblem(t, post("", "", 0), http.StatusBadRequest, gatehouse.CodeBadRequest)
		requireProblem(t, post("", "", -1), http.StatusBadRequest, gatehouse.CodeBadRequest)
		req := httptest.NewRequest(http.MethodGet, "/api/v1/test/users/7", strings.NewReader(`{"x":1,"x":2}`))
		rec := e.do(req)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		// A body on a plain handler is the handler's business.
		req = httptest.NewRequest(http.MethodPost, "/api/v1/test/raw", strings.NewReader(`{"x":1,"x":2}`))
		require.Equal(t, http.StatusNoContent, e.do(req).Code)
	})
}

// Every request body is a closed schema: an object refuses properties it
// does not name, so with Huma's strict casing a key matching a property
// only case-insensitively is refused rather than decoded into it.
func TestRequestBodySchemasAreClosed(t *testing.T) {
	api := httpapi.New(httpapi.Deps{}).API()
	oapi := api.OpenAPI()
	registry := oapi.Components.Schemas
	var walk func(where string, s *huma.Schema, seen map[*huma.Schema]bool)
	walk = func(where string, s *huma.Schema, seen map[*huma.Schema]bool) {
		for s != nil && s.Ref != "" {
			s = registry.SchemaFromRef(s.Ref)
		}
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		if len(s.Properties) > 0 {
			require.Equal(t, false, s.AdditionalProperties, "%s is open to properties it does not name", where)
		}
		for name, p := range s.Properties {
			walk(where+"."+name, p, seen)
		}
		walk(where+"[]", s.Items, seen)
	}
	bodies := 0
	for path, item := range oapi.Paths {
		for method, op := range map[string]*huma.Operation{"POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete, "GET": item.Get} {
			if op == nil || op.RequestBody == nil {
				continue
			}
			mt := op.RequestBody.Content["application/json"]
			require.NotNil(t, mt, "%s %s takes a body that is not JSON", method, path)
			walk(method+" "+path+" body", mt.Schema, map[*huma.Schema]bool{})
			bodies++
		}
	}
	require.Greater(t, bodies, 20)
}
