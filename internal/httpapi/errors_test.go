package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

func TestProblemHelper(t *testing.T) {
	require.NoError(t, httpapi.Problem(nil))

	// Wrapped domain errors keep their code; fields become errors[].
	err := fmt.Errorf("register: %w", gatehouse.InvalidField("body.email", "email is already taken"))
	var p *httpapi.ProblemDetails
	require.ErrorAs(t, httpapi.Problem(err), &p)
	require.Equal(t, 422, p.GetStatus())
	require.Equal(t, gatehouse.CodeValidationFailed, p.Code)
	require.Equal(t, []gatehouse.FieldError{{Location: "body.email", Message: "email is already taken"}}, p.Errors)
	require.Equal(t, "application/problem+json", p.ContentType("application/json"))
	require.Equal(t, "application/cbor", p.ContentType("application/cbor"))
	require.Contains(t, p.Error(), "validation_failed")

	// A problem passes through unchanged.
	require.Same(t, p, httpapi.Problem(p))

	// The cause is kept for errors.Is but not shown.
	cause := errors.New("smtp down")
	p2 := httpapi.Problem(gatehouse.WrapError(gatehouse.CodeUnavailable, cause, "mail is unavailable")).(*httpapi.ProblemDetails)
	require.ErrorIs(t, p2, cause)
	require.Equal(t, 503, p2.Status)
	require.Equal(t, "mail is unavailable", p2.Detail)

	// A domain error without a message gets one from its code.
	p3 := httpapi.Problem(&gatehouse.Error{Code: gatehouse.CodeEmailTaken}).(*httpapi.ProblemDetails)
	require.Equal(t, "email taken", p3.Detail)

	// Oversized bodies.
	p4 := httpapi.Problem(fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10})).(*httpapi.ProblemDetails)
	require.Equal(t, 413, p4.Status)
	require.Equal(t, httpapi.CodePayloadTooLarge, p4.Code)

	// Unknown errors.
	p5 := httpapi.Problem(errors.New("boom")).(*httpapi.ProblemDetails)
	require.Equal(t, 500, p5.Status)
	require.Equal(t, gatehouse.CodeInternal, p5.Code)
	require.NotContains(t, p5.Detail, "boom")

	// A hand-made Huma error keeps a 4xx status, hides a 5xx text.
	p6 := httpapi.Problem(&huma.ErrorModel{Status: 404, Detail: "no widget"}).(*httpapi.ProblemDetails)
	require.Equal(t, gatehouse.CodeNotFound, p6.Code)
	require.Equal(t, "no widget", p6.Detail)
	p7 := httpapi.Problem(&huma.ErrorModel{Status: 502, Detail: "upstream 10.0.0.1"}).(*httpapi.ProblemDetails)
	require.Equal(t, 500, p7.Status)
	require.NotContains(t, p7.Detail, "10.0.0.1")
}

func TestHumaErrorsAreProblems(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		err    error
		status int
		code   gatehouse.Code
	}{
		{huma.Error400BadRequest("bad"), 400, gatehouse.CodeBadRequest},
		{huma.Error401Unauthorized("who"), 401, gatehouse.CodeUnauthorized},
		{huma.Error403Forbidden("no"), 403, gatehouse.CodePermissionDenied},
		{huma.Error404NotFound("gone"), 404, gatehouse.CodeNotFound},
		{huma.Error409Conflict("dup"), 409, gatehouse.CodeConflict},
		{huma.Error406NotAcceptable("accept"), 406, gatehouse.CodeBadRequest},
		{huma.Error422UnprocessableEntity("bad field", &huma.ErrorDetail{Location: "query.limit", Message: "too big", Value: 1000}), 422, gatehouse.CodeValidationFailed},
		{huma.Error423Locked("locked"), 423, gatehouse.CodeAccountLocked},
		{huma.Error429TooManyRequests("slow down"), 429, gatehouse.CodeRateLimited},
		{huma.Error503ServiceUnavailable("try later"), 503, gatehouse.CodeUnavailable},
		{huma.Error500InternalServerError("db at 10.0.0.1 failed", errors.New("x")), 500, gatehouse.CodeInternal},
		{huma.Error502BadGateway("upstream"), 500, gatehouse.CodeInternal},
		{huma.ErrorWithHeaders(gatehouse.Errorf(gatehouse.CodeRateLimited, "too many requests"),
			http.Header{"Retry-After": {"30"}}), 429, gatehouse.CodeRateLimited},
	}
	for i, tc := range cases {
		path := "/herr/" + strconv.Itoa(i)
		huma.Register(e.srv.API(), huma.Operation{OperationID: "herr-" + strconv.Itoa(i), Method: http.MethodGet, Path: path},
			func(context.Context, *struct{}) (*struct{}, error) { return nil, tc.err })
		rec := e.get("/api/v1" + path)
		p := requireProblem(t, rec, tc.status, tc.code)
		if tc.status == 500 {
			require.NotContains(t, p.Detail, "10.0.0.1")
		}
		if tc.status == 422 {
			require.Equal(t, []gatehouse.FieldError{{Location: "query.limit", Message: "too big"}}, p.Errors)
			require.NotContains(t, rec.Body.String(), "1000")
		}
		if tc.code == gatehouse.CodeRateLimited && i == len(cases)-1 {
			require.Equal(t, "30", rec.Header().Get("Retry-After"))
			require.Equal(t, "too many requests", p.Detail)
		}
	}
}

func TestQueryValidationNamesLocation(t *testing.T) {
	e := newEnv(t, nil)
	type listInput struct {
		Limit int `query:"limit" minimum:"1" maximum:"200" default:"50"`
	}
	huma.Register(e.srv.API(), huma.Operation{OperationID: "test-list", Method: http.MethodGet, Path: "/test/list"},
		func(context.Context, *listInput) (*struct{}, error) { return nil, nil })
	for _, q := range []string{"limit=1000", "limit=abc"} {
		p := requireProblem(t, e.get("/api/v1/test/list?"+q), 422, gatehouse.CodeValidationFailed)
		require.Len(t, p.Errors, 1)
		require.Equal(t, "query.limit", p.Errors[0].Location)
	}
}

// Services name fields plainly; the operation says where each was sent.
func TestServiceFieldNamesArePlacedByTheOperation(t *testing.T) {
	e := newEnv(t, nil)
	shared := gatehouse.InvalidField("events[2]", "unknown event type")
	type input struct {
		ID          string `path:"id"`
		RedirectURI string `query:"redirect_uri"`
		Body        struct {
			Events []string `json:"events,omitempty"`
		}
	}
	answers := map[string]error{
		"redirect_uri": gatehouse.InvalidField("redirect_uri", "not allowed"),
		"id":           gatehouse.InvalidField("id", "no such thing"),
		"events":       shared,
		"nested": &gatehouse.Error{Code: gatehouse.CodeValidationFailed, Message: "bad", Fields: []gatehouse.FieldError{
			{Location: "notification_preferences.security.new_device", Message: "unknown channel"},
			{Location: "body.already", Message: "kept"},
			{Message: "no location"},
		}},
	}
	huma.Register(e.srv.API(), huma.Operation{OperationID: "test-locate", Method: http.MethodPost, Path: "/test/locate/{id}"},
		func(_ context.Context, in *input) (*struct{}, error) { return nil, answers[in.ID] })
	locations := func(id string) []string {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/test/locate/"+id+"?redirect_uri=x", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		p := requireProblem(t, e.do(req), http.StatusUnprocessableEntity, gatehouse.CodeValidationFailed)
		var out []string
		for _, f := range p.Errors {
			out = append(out, f.Location)
		}
		return out
	}
	require.Equal(t, []string{"query.redirect_uri"}, locations("redirect_uri"))
	require.Equal(t, []string{"path.id"}, locations("id"))
	require.Equal(t, []string{"body.events[2]"}, locations("events"))
	require.Equal(t, []string{"body.events[2]"}, locations("events"), "placed twice")
	require.Equal(t, "events[2]", shared.Fields[0].Location, "the shared error value is not changed")
	require.Equal(t, []string{"body.notification_preferences.security.new_device", "body.already", ""}, locations("nested"))
}

// The answers depend on three strings of Huma's: when an upgrade changes
// one, this fails rather than the answers silently losing their codes and
// field names.
func TestHumaMessagesWeDependOnArePinned(t *testing.T) {
	e := newEnv(t, nil)
	type input struct {
		Body struct {
			Email string `json:"email"`
		}
	}
	huma.Register(e.srv.API(), huma.Operation{OperationID: "test-pinned", Method: http.MethodPost, Path: "/test/pinned"},
		func(context.Context, *input) (*struct{}, error) {
			return nil, gatehouse.Errorf(gatehouse.CodeConflict, "taken")
		})
	post := func(body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/test/pinned", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return e.do(req)
	}
	// "expected required property email to be present" at "body".
	p := requireProblem(t, post(`{}`), http.StatusUnprocessableEntity, gatehouse.CodeValidationFailed)
	require.Equal(t, []gatehouse.FieldError{{Location: "body.email", Message: "expected required property email to be present"}}, p.Errors)
	// "validation failed" with a 400 for a body that is not JSON.
	requireProblem(t, post(`{"email":`), http.StatusBadRequest, httpapi.CodeMalformedJSON)
	// "unexpected error occurred" around a handler's own (domain) error.
	requireProblem(t, post(`{"email":"a@b.c"}`), http.StatusConflict, gatehouse.CodeConflict)
}

func TestResolverDomainErrorsBecomeFields(t *testing.T) {
	e := newEnv(t, nil)
	huma.Register(e.srv.API(), huma.Operation{OperationID: "test-resolve", Method: http.MethodPost, Path: "/test/resolve"},
		func(context.Context, *resolveInput) (*struct{}, error) { return nil, nil })
	p := requireProblem(t, e.postJSON("/api/v1/test/resolve", `{"a":"x","b":"y"}`), 422, gatehouse.CodeValidationFailed)
	require.ElementsMatch(t, []gatehouse.FieldError{
		{Location: "body.b", Message: "b must equal a"},
		{Message: "plain domain error"},
	}, p.Errors)
}

type resolveInput struct {
	Body struct {
		A string `json:"a"`
		B string `json:"b"`
	}
}

func (in *resolveInput) Resolve(huma.Context) []error {
	if in.Body.A != in.Body.B {
		return []error{
			gatehouse.InvalidField("body.b", "b must equal a"),
			gatehouse.Errorf(gatehouse.CodeValidationFailed, "plain domain error"),
		}
	}
	return nil
}

func TestWriteProblemFromPlainHandler(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.Mux().HandleFunc("GET /api/v1/test/plain", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteProblem(w, r, gatehouse.Errorf(gatehouse.CodePermissionDenied, "needs users:read"))
	})
	p := requireProblem(t, e.get("/api/v1/test/plain"), 403, gatehouse.CodePermissionDenied)
	require.Equal(t, "needs users:read", p.Detail)

	// Outside the middleware (no request id) the generic detail still works.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req = req.WithContext(telemetry.WithLogger(req.Context(), slog.New(slog.DiscardHandler)))
	httpapi.WriteProblem(rec, req, errors.New("x"))
	p = requireProblem(t, rec, 500, gatehouse.CodeInternal)
	require.Equal(t, "internal error", p.Detail)
}

// Failures of a dependency answer 503 with Retry-After, logged at WARN with
// their cause and the request id; a request whose client went away is
// recorded as 499 and logged at debug, never as a 500.
func TestDependencyFailuresAre503AndClientsGoneAre499(t *testing.T) {
	e := newEnv(t, nil)
	logs := e.logs
	cases := []struct {
		name  string
		err   error
		want  int
		code  gatehouse.Code
		retry string
	}{
		{"database down", fmt.Errorf("login: get user: %w", gatehouse.Unavailable(errors.New("dial tcp: connection refused"))), 503, gatehouse.CodeUnavailable, "5"},
		{"deadline", fmt.Errorf("begin transaction: %w", context.DeadlineExceeded), 503, gatehouse.CodeUnavailable, "5"},
		{"own 503 keeps its message", gatehouse.WrapError(gatehouse.CodeUnavailable, gatehouse.Unavailable(errors.New("x")), "texts cannot be sent"), 503, gatehouse.CodeUnavailable, "5"},
	}
	for i, tc := range cases {
		path := "/dep/" + strconv.Itoa(i)
		huma.Register(e.srv.API(), huma.Operation{OperationID: "dep-" + strconv.Itoa(i), Method: http.MethodGet, Path: path},
			func(context.Context, *struct{}) (*struct{}, error) { return nil, tc.err })
		rec := e.get("/api/v1" + path)
		p := requireProblem(t, rec, tc.want, tc.code)
		require.Equal(t, tc.retry, rec.Header().Get("Retry-After"), tc.name)
		require.NotContains(t, p.Detail, "refused", tc.name)
		if i == 2 {
			require.Equal(t, "texts cannot be sent", p.Detail)
		}
	}
	require.Contains(t, logs.String(), `"level":"WARN","msg":"request failed"`)
	require.Contains(t, logs.String(), "connection refused", "the cause is logged")
	require.Contains(t, logs.String(), `"request_id"`)

	// A plain handler's 503 gets Retry-After too.
	e.srv.Mux().HandleFunc("GET /api/v1/test/plain503", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteProblem(w, r, gatehouse.Unavailable(errors.New("redis: i/o timeout")))
	})
	rec := e.get("/api/v1/test/plain503")
	requireProblem(t, rec, 503, gatehouse.CodeUnavailable)
	require.Equal(t, "5", rec.Header().Get("Retry-After"))

	// The client goes away while the handler waits on the database.
	logs.Reset()
	huma.Register(e.srv.API(), huma.Operation{OperationID: "dep-gone", Method: http.MethodGet, Path: "/dep/gone"},
		func(ctx context.Context, _ *struct{}) (*struct{}, error) {
			<-ctx.Done()
			return nil, fmt.Errorf("get user: %w", ctx.Err())
		})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/api/v1/dep/gone", nil).WithContext(ctx)
	rec = httptest.NewRecorder()
	cancel()
	e.srv.Handler().ServeHTTP(rec, req)
	require.Equal(t, httpapi.StatusClientClosedRequest, rec.Code)
	require.Contains(t, logs.String(), `"level":"DEBUG","msg":"client went away"`)
	require.NotContains(t, logs.String(), `"level":"ERROR"`)

	// A cancelled context while the client is still there is a bug, and loud.
	logs.Reset()
	huma.Register(e.srv.API(), huma.Operation{OperationID: "dep-stray", Method: http.MethodGet, Path: "/dep/stray"},
		func(context.Context, *struct{}) (*struct{}, error) { return nil, context.Canceled })
	e.get("/api/v1/dep/stray")
	require.Contains(t, logs.String(), "request failed with a cancelled context while its client is connected")
}
