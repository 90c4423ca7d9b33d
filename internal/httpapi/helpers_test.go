package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// syncBuffer is a log sink safe for the goroutines a request may use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Reset forgets what was logged so far.
func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// lines returns the JSON log records.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

// find returns the first log record with the message.
func (b *syncBuffer) find(t *testing.T, msg string) map[string]any {
	t.Helper()
	for _, m := range b.lines(t) {
		if m["msg"] == msg {
			return m
		}
	}
	t.Fatalf("no log record %q in:\n%s", msg, b.String())
	return nil
}

type testEnv struct {
	srv  *httpapi.Server
	h    http.Handler
	logs *syncBuffer
}

// newEnv builds a server with debug JSON logs captured, lets mutate adjust
// the dependencies, and registers the test-only operations.
func newEnv(t *testing.T, mutate func(*httpapi.Deps)) *testEnv {
	t.Helper()
	logs := &syncBuffer{}
	deps := httpapi.Deps{
		Logger:       telemetry.NewLogger(logs, "debug", "json", 0),
		Metrics:      telemetry.NewMetrics(),
		Version:      "1.2.3",
		PublicURL:    "http://localhost:8080",
		MaxBodyBytes: 1024,
	}
	if mutate != nil {
		mutate(&deps)
	}
	s := httpapi.New(deps)
	registerTestOps(s)
	return &testEnv{srv: s, h: s.Handler(), logs: logs}
}

func (e *testEnv) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func (e *testEnv) get(path string) *httptest.ResponseRecorder {
	return e.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (e *testEnv) postJSON(path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return e.do(req)
}

type problem struct {
	Type   string                 `json:"type"`
	Title  string                 `json:"title"`
	Status int                    `json:"status"`
	Detail string                 `json:"detail"`
	Code   string                 `json:"code"`
	Errors []gatehouse.FieldError `json:"errors"`
}

// requireProblem checks the answer is problem+json with status and code.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code gatehouse.Code) problem {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	for _, k := range []string{"type", "title", "status", "detail", "code"} {
		require.Contains(t, raw, k, "problem member %q", k)
	}
	var p problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Equal(t, status, p.Status)
	require.Equal(t, string(code), p.Code)
	require.Equal(t, http.StatusText(status), p.Title)
	require.NotEmpty(t, p.Detail)
	return p
}

type echoInput struct {
	Body struct {
		Email string `json:"email" format:"email"`
		Name  string `json:"name" minLength:"2"`
		Age   int    `json:"age,omitempty" minimum:"0"`
	}
}

type echoOutput struct {
	Body struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
}

type codeInput struct {
	Code string `path:"code"`
}

type userInput struct {
	ID    string `path:"id"`
	Token string `query:"token"`
}

type userOutput struct {
	Body struct {
		ID string `json:"id"`
	}
}

// registerTestOps adds operations that exist only in tests, on the real
// API, the way resource files will.
func registerTestOps(s *httpapi.Server) {
	api := s.API()
	huma.Register(api, huma.Operation{OperationID: "test-echo", Method: http.MethodPost, Path: "/test/echo"},
		func(_ context.Context, in *echoInput) (*echoOutput, error) {
			out := &echoOutput{}
			out.Body.Email, out.Body.Name = in.Body.Email, in.Body.Name
			return out, nil
		})
	huma.Register(api, huma.Operation{OperationID: "test-panic", Method: http.MethodGet, Path: "/test/panic"},
		func(context.Context, *struct{}) (*struct{}, error) {
			panic("boom: secret-in-panic")
		})
	huma.Register(api, huma.Operation{OperationID: "test-domain", Method: http.MethodGet, Path: "/test/domain/{code}"},
		func(_ context.Context, in *codeInput) (*struct{}, error) {
			return nil, &gatehouse.Error{Code: gatehouse.Code(in.Code), Message: "message for " + in.Code,
				Err: errors.New("cause-" + in.Code)}
		})
	huma.Register(api, huma.Operation{OperationID: "test-unknown", Method: http.MethodGet, Path: "/test/unknown"},
		func(context.Context, *struct{}) (*struct{}, error) {
			return nil, errors.New("dial tcp 10.1.2.3:5432: password=hunter2")
		})
	huma.Register(api, huma.Operation{OperationID: "test-user", Method: http.MethodGet, Path: "/test/users/{id}"},
		func(ctx context.Context, in *userInput) (*userOutput, error) {
			telemetry.SetUserID(ctx, "user-"+in.ID)
			out := &userOutput{}
			out.Body.ID = in.ID
			return out, nil
		})

	// A plain handler, not a Huma operation.
	s.Mux().HandleFunc("POST "+httpapi.BasePath+"/test/raw", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			httpapi.WriteProblem(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.Mux().HandleFunc("GET "+httpapi.BasePath+"/test/partial", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("half"))
		panic("after the headers")
	})
}
