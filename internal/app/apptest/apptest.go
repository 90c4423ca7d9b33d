// Package apptest starts the whole Gatehouse server in-process for API and
// end-to-end tests: real stores (SQLite, or PostgreSQL when
// GATEHOUSE_TEST_POSTGRES_URL is set), the real job workers, an in-process
// SMTP server capturing the emails, light Argon2 parameters, signing keys
// made once per test binary and a clock the test moves.
package apptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail/mailtest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
)

// Clock is the settable clock shared by every service of an Env.
type Clock = testclock.Clock

// Env is a running server.
type Env struct {
	T testing.TB
	// Engine is the database engine it runs on: "sqlite" or "postgres".
	Engine string
	App    *app.App
	Server *httptest.Server
	Mail   *mailtest.Server
	Clock  *Clock
	URL    string // base URL of the API, ending in /api/v1
	// Header is added to every request Do sends (X-Forwarded-For ...).
	Header http.Header

	emitted *emitted
}

// emitted records every event the server emits, as its emit hooks see
// them (events nobody fans out are not stored anywhere else).
type emitted struct {
	mu     sync.Mutex
	events []gatehouse.Event
}

func (r *emitted) record(_ context.Context, _ store.Tx, e gatehouse.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// Events returns every event emitted so far, in emit order, including
// those of transactions that rolled back afterwards.
func (e *Env) Events() []gatehouse.Event {
	e.emitted.mu.Lock()
	defer e.emitted.mu.Unlock()
	return slices.Clone(e.emitted.events)
}

// Engines lists the database engines tests should run on.
func Engines(t testing.TB) []string {
	names := []string{}
	for _, e := range sqltest.Engines(t) {
		names = append(names, e.Name)
	}
	return names
}

// New starts a server on the named engine ("sqlite" or "postgres"). extra
// overrides configuration variables (full GATEHOUSE_* names).
func New(t testing.TB, engine string, extra map[string]string) *Env {
	t.Helper()
	return NewLogged(t, engine, extra, io.Discard)
}

// NewLogged is New with the server's log written to logs as JSON lines,
// from warnings up, for tests about what an operator reads there.
func NewLogged(t testing.TB, engine string, extra map[string]string, logs io.Writer) *Env {
	t.Helper()
	level := slog.LevelWarn
	return NewWith(t, engine, Options{Extra: extra, Logs: logs, LogLevel: &level})
}

// Options are NewWith's choices beyond the engine.
type Options struct {
	// Extra overrides configuration variables (full GATEHOUSE_* names).
	Extra map[string]string
	// Logs receives the server's log as JSON lines (nil: discarded), from
	// LogLevel up (nil: warnings), through the production handler (request
	// and trace ids from the context, sampling of repetitive lines).
	Logs     io.Writer
	LogLevel *slog.Level
	// TracerProvider records the server's spans (for example one with a
	// tracetest.InMemoryExporter); nil: none.
	TracerProvider trace.TracerProvider
}

// NewWith starts a server on the named engine with o.
func NewWith(t testing.TB, engine string, o Options) *Env {
	t.Helper()
	extra, logs := o.Extra, o.Logs
	if logs == nil {
		logs = io.Discard
	}
	smtp := mailtest.Start(t)
	vars := map[string]string{
		"GATEHOUSE_DATA_DIR":           t.TempDir(),
		"GATEHOUSE_SECRET_KEY":         strings.Repeat("test-secret-", 4),
		"GATEHOUSE_SMTP_URL":           smtp.URL(),
		"GATEHOUSE_ARGON2_MEMORY_KIB":  "64",
		"GATEHOUSE_ARGON2_ITERATIONS":  "1",
		"GATEHOUSE_ARGON2_PARALLELISM": "1",
		"GATEHOUSE_LOG_LEVEL":          "error",
		"GATEHOUSE_PUBLIC_URL":         "http://gatehouse.test",
		// Suites sign in from 127.0.0.1 far more often than the limits
		// allow; rate-limit tests turn them back on through extra.
		"GATEHOUSE_RATE_LIMIT_ENABLED": "false",
		// Test processes share one Redis: each Env keeps to its own keys,
		// so counters (rate limits, risk) never leak between tests.
		"GATEHOUSE_REDIS_PREFIX": "test:" + gatehouse.NewID() + ":",
	}
	// New jobs do not wait for the poll: every inserting transaction wakes
	// the queue's workers (LISTEN/NOTIFY on PostgreSQL, River's notification
	// table on SQLite). Only a retry or snooze due within River's scheduler
	// interval (5 s), such as a webhook retried at once, waits for the next
	// poll. Polls cost: on SQLite they hold its one connection (an idle
	// SELECT 1 waited 100 ms at 50 ms polls); on PostgreSQL six queues
	// polling every 50 ms kept an idle server at 7.5% of a core under -race
	// (its database working too), at 250 ms about 3%.
	poll := 250 * time.Millisecond
	switch engine {
	case "postgres":
		vars["GATEHOUSE_DATABASE_URL"] = sqltest.MigratedPostgresURL(t)
	default:
		vars["GATEHOUSE_DATABASE_URL"] = "sqlite://" + sqltest.SQLitePath(t)
		poll = time.Second
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := config.FromMap(vars)
	if err != nil {
		t.Fatalf("apptest: config: %v", err)
	}
	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	log := slog.New(slog.DiscardHandler)
	if logs != io.Discard {
		level := slog.LevelWarn
		if o.LogLevel != nil {
			level = *o.LogLevel
		}
		log = telemetry.NewLoggerWith(logs, telemetry.LogOptions{Level: level, SamplePerSecond: cfg.LogSamplePerSecond})
	}
	ctx := context.Background()
	a, err := app.Build(ctx, cfg, log, app.Options{Migrate: true, Jobs: true, PollInterval: poll, Now: clock.Now,
		TracerProvider: o.TracerProvider, GenerateKey: signingKeys.next()})
	if err != nil {
		t.Fatalf("apptest: build: %v", err)
	}
	rec := &emitted{}
	a.Bus.OnEmit(rec.record) // before anything can emit
	if err := a.Worker.Start(ctx); err != nil {
		t.Fatalf("apptest: start jobs: %v", err)
	}
	srv := httptest.NewServer(a.HTTP.Handler())
	t.Cleanup(func() {
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Worker.Stop(sctx)
		a.Close(sctx)
	})
	return &Env{T: t, Engine: engine, App: a, Server: srv, Mail: smtp, Clock: clock, URL: srv.URL + "/api/v1", emitted: rec}
}

// signingKeys hands out RSA keys made once per test binary: a 2048-bit key
// takes a quarter of a second under -race, and every Env makes one.
var signingKeys keyPool

// keyPool holds the keys made so far, by size.
type keyPool struct {
	mu   sync.Mutex
	made map[int][]*rsa.PrivateKey
}

// next returns a generator for one server: its first key is the pool's
// first of that size, a rotation's the second, and so on, so the keys of
// one server are distinct while servers share them.
func (p *keyPool) next() func(bits int) (*rsa.PrivateKey, error) {
	var n atomic.Int64
	return func(bits int) (*rsa.PrivateKey, error) {
		i := int(n.Add(1) - 1)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.made == nil {
			p.made = map[int][]*rsa.PrivateKey{}
		}
		for len(p.made[bits]) <= i {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				return nil, err
			}
			p.made[bits] = append(p.made[bits], k)
		}
		return p.made[bits][i], nil
	}
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

// Expect fails t unless r has status and, when code is not empty, that
// problem+json code. The body goes into the failure message, after
// msgAndArgs (a message, or a format and its arguments).
func Expect[C ~string](t require.TestingT, r *Response, status int, code C, msgAndArgs ...any) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	msg := message(msgAndArgs)
	require.Equal(t, status, r.Status, "%sbody: %s", msg, r.Raw)
	if code != "" {
		require.Equal(t, string(code), r.Code(), "%sbody: %s", msg, r.Raw)
	}
}

// message renders testify-style msgAndArgs (a message, or a format and
// its arguments) as a prefix.
func message(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return fmt.Sprintf(format, msgAndArgs[1:]...) + ": "
	}
	return fmt.Sprint(msgAndArgs...) + ": "
}

// Code is the problem+json code of an error answer ("" otherwise).
func (r *Response) Code() string {
	c, _ := r.JSON["code"].(string)
	return c
}

// Str returns a top-level string field.
func (r *Response) Str(key string) string {
	s, _ := r.JSON[key].(string)
	return s
}

// Do sends a JSON request to path (under /api/v1) with an optional bearer
// token and decodes the answer; a transport error fails the test.
func (e *Env) Do(method, path string, body any, bearer string) *Response {
	e.T.Helper()
	r, err := e.Send(method, path, body, bearer, nil)
	if err != nil {
		e.T.Fatalf("apptest: %s %s: %v", method, path, err)
	}
	return r
}

// Send is Do that reports errors instead of failing the test, so
// goroutines may use it. headers are set after the defaults (User-Agent
// apptest/1.0, then Env.Header).
func (e *Env) Send(method, path string, body any, bearer string, headers map[string]string) (*Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("marshal: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("User-Agent", "apptest/1.0")
	for k, v := range e.Header {
		req.Header[k] = v
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out.JSON); err != nil {
			return nil, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return out, nil
}

// Racers is how many goroutines Race releases at once.
const Racers = 20

// Race runs do(i) for i in [0, Racers) released together and answers the
// responses by i; any error fails the test.
func Race(t testing.TB, do func(i int) (*Response, error)) []*Response {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		out   = make([]*Response, Racers)
		errs  = make([]error, Racers)
	)
	for i := range Racers {
		wg.Go(func() {
			<-start
			out[i], errs[i] = do(i)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	return out
}

// CheckN is rapid.Check with at most n passing cases unless -rapid.checks
// was given: each case of these properties drives a whole server. After a
// failure every case runs, so rapid can still shrink it.
func CheckN(t *testing.T, n int, prop func(*rapid.T)) {
	t.Helper()
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "rapid.checks" {
			n = math.MaxInt
		}
	})
	var (
		passed atomic.Int64
		failed atomic.Bool
	)
	rapid.Check(t, func(rt *rapid.T) {
		if passed.Load() >= int64(n) && !failed.Load() {
			return
		}
		ok := false
		defer func() {
			if !ok {
				failed.Store(true)
			}
		}()
		prop(rt)
		ok = true
		passed.Add(1)
	})
}

// Whole-server property tests run this many passing cases per engine
// (each case drives HTTP requests through a real server); -rapid.checks
// runs the number given instead. PostgreSQL cases cost about twice as
// much, and the SQLite run already explores the inputs.
const (
	SQLiteChecks   = 30
	PostgresChecks = 10
)

// Check runs a whole-server property against e with its engine's case
// budget (SQLiteChecks, PostgresChecks).
func (e *Env) Check(t *testing.T, prop func(*rapid.T)) {
	t.Helper()
	n := SQLiteChecks
	if e.Engine == "postgres" {
		n = PostgresChecks
	}
	CheckN(t, n, prop)
}

// ForEachEngine runs fn as a parallel subtest per engine (Engines), each
// with its own server started with extra configuration.
func ForEachEngine(t *testing.T, extra map[string]string, fn func(t *testing.T, env *Env)) {
	t.Helper()
	for _, eng := range Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			fn(t, New(t, eng, extra))
		})
	}
}

// StrongPassword is accepted by the default policy.
const StrongPassword = "violet-Anchor-drift-93-Quasar"

// Register creates an account and returns its id.
func (e *Env) Register(email, password string) string {
	e.T.Helper()
	r := e.Do("POST", "/auth/register", map[string]any{"email": email, "password": password}, "")
	if r.Status != http.StatusCreated {
		e.T.Fatalf("apptest: register %s: %d %s", email, r.Status, r.Raw)
	}
	return r.JSON["user"].(map[string]any)["id"].(string)
}

// Tokens are a signed-in session's credentials.
type Tokens struct {
	Access, Refresh, SessionID string
}

// Login signs in and fails the test unless it succeeds.
func (e *Env) Login(email, password string) Tokens {
	e.T.Helper()
	r := e.Do("POST", "/auth/login", map[string]any{"email": email, "password": password}, "")
	if r.Status != http.StatusOK {
		e.T.Fatalf("apptest: login %s: %d %s", email, r.Status, r.Raw)
	}
	return Tokens{Access: r.Str("access_token"), Refresh: r.Str("refresh_token"), SessionID: r.Str("session_id")}
}

// TokenFromLink extracts the token query parameter of the first link in
// the email's text that starts with prefix.
func TokenFromLink(text, prefix string) string {
	link := mailtest.LinkFrom(text, prefix)
	_, tok, ok := strings.Cut(link, "token=")
	if !ok {
		return ""
	}
	tok, _, _ = strings.Cut(tok, "&")
	return tok
}

// Claims decodes an access token's payload without checking its signature
// (the bearer calls a test makes with the token check that).
func Claims(t testing.TB, access string) map[string]any {
	t.Helper()
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("apptest: %q is not a JWT", access)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("apptest: JWT payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("apptest: JWT payload: %v", err)
	}
	return c
}
