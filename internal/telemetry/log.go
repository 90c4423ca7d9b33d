package telemetry

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// NewLogger returns a logger writing to w. format is "json" or "text"
// (anything else means json, the production default); level is "debug",
// "info", "warn" or "error" (anything else means info). Config validates
// both at start-up, so the fallbacks only matter to tests and tools. Its
// lines carry the request and trace ids of their context (ContextHandler);
// repetitive lines are sampled at samplePerSecond (0: never).
func NewLogger(w io.Writer, level, format string, samplePerSecond int) *slog.Logger {
	return NewLoggerWith(w, LogOptions{Level: ParseLevel(level), Text: strings.EqualFold(strings.TrimSpace(format), "text"),
		SamplePerSecond: samplePerSecond})
}

// LogOptions configure NewLoggerWith.
type LogOptions struct {
	Level slog.Leveler
	// Text selects logfmt-like text lines instead of JSON.
	Text bool
	// SamplePerSecond caps lines marked with Sample (per message and key)
	// per second; 0 keeps them all.
	SamplePerSecond int
}

// NewLoggerWith returns the production logger stack: JSON (or text) lines,
// the context's ids on every line, sampling of marked repetitive lines.
func NewLoggerWith(w io.Writer, o LogOptions) *slog.Logger {
	opts := &slog.HandlerOptions{Level: o.Level}
	var h slog.Handler
	if o.Text {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewSamplingHandler(NewContextHandler(h), o.SamplePerSecond))
}

// ParseLevel maps a level name to its slog.Level, case-insensitively;
// unknown names mean info.
func ParseLevel(level string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

type loggerKey struct{}

// WithLogger returns a copy of ctx carrying l, so code deep in a request
// logs with the request's attributes (request id, trace id).
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// Logger returns the logger carried by ctx, or slog.Default() when there is
// none, so callers never need a nil check.
func Logger(ctx context.Context) *slog.Logger {
	if ctx != nil {
		if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
			return l
		}
	}
	return slog.Default()
}

// RequestInfo is what the HTTP layer knows about the request in flight. One
// value is put in the context when the request arrives and filled in as the
// request proceeds: the router records the matched route, the auth
// middleware the user id. Its methods are safe on a nil *RequestInfo (they
// do nothing), so code outside a request needs no checks. The access log line and the metrics read it when
// the response is done, which is why the mutable parts sit behind a mutex
// rather than in new contexts (a value added to a child context is not
// visible to the middleware that created the parent).
type RequestInfo struct {
	// RequestID is the X-Request-ID of the request (given or generated).
	RequestID string
	// TraceID is the W3C trace id, hex, or "" when the request has none.
	TraceID string

	mu     sync.Mutex
	userID string
	route  string
}

// SetUserID records the authenticated user of the request.
func (i *RequestInfo) SetUserID(id string) {
	if i == nil {
		return
	}
	i.mu.Lock()
	i.userID = id
	i.mu.Unlock()
}

// UserID returns the authenticated user of the request, or "".
func (i *RequestInfo) UserID() string {
	if i == nil {
		return ""
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.userID
}

// SetRoute records the route pattern that matched the request, such as
// "GET /api/v1/admin/users/{id}". Never a raw path: it labels metrics.
func (i *RequestInfo) SetRoute(pattern string) {
	if i == nil {
		return
	}
	i.mu.Lock()
	i.route = pattern
	i.mu.Unlock()
}

// Route returns the matched route pattern, or "" when nothing matched (yet).
func (i *RequestInfo) Route() string {
	if i == nil {
		return ""
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.route
}

type requestInfoKey struct{}

// WithRequestInfo returns a copy of ctx carrying info.
func WithRequestInfo(ctx context.Context, info *RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

// RequestInfoFrom returns the RequestInfo carried by ctx, or nil outside an
// HTTP request.
func RequestInfoFrom(ctx context.Context) *RequestInfo {
	if ctx == nil {
		return nil
	}
	info, _ := ctx.Value(requestInfoKey{}).(*RequestInfo)
	return info
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	if info := RequestInfoFrom(ctx); info != nil {
		return info.RequestID
	}
	return ""
}

// SetUserID records the authenticated user on the request carried by ctx;
// it does nothing outside an HTTP request.
func SetUserID(ctx context.Context, id string) {
	if info := RequestInfoFrom(ctx); info != nil {
		info.SetUserID(id)
	}
}
