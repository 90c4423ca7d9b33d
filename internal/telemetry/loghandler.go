package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// ContextHandler adds to every record what its context knows about the
// work in flight: request_id and user_id (from the RequestInfo the HTTP
// layer puts there) and trace_id and span_id (from the span). Any code
// that logs with the request's context (slog's *Context methods or
// LogAttrs) thus gets them, whichever logger it holds, and a line is
// never stamped with ids of another request, which a logger captured with
// With could do.
type ContextHandler struct {
	next slog.Handler
}

// NewContextHandler wraps next.
func NewContextHandler(next slog.Handler) *ContextHandler { return &ContextHandler{next: next} }

// Enabled implements slog.Handler.
func (h *ContextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		var attrs [4]slog.Attr
		n := 0
		if info := RequestInfoFrom(ctx); info != nil {
			if info.RequestID != "" {
				attrs[n] = slog.String("request_id", info.RequestID)
				n++
			}
			if uid := info.UserID(); uid != "" {
				attrs[n] = slog.String("user_id", uid)
				n++
			}
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			attrs[n] = slog.String("trace_id", sc.TraceID().String())
			attrs[n+1] = slog.String("span_id", sc.SpanID().String())
			n += 2
		}
		if n > 0 {
			r = r.Clone()
			r.AddAttrs(attrs[:n]...)
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *ContextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ContextHandler{next: h.next.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	return &ContextHandler{next: h.next.WithGroup(name)}
}

// SampleKey is the attribute that marks a log line as repetitive and
// high-volume (a rate-limited request, an overload answer): the
// SamplingHandler passes at most N such lines a second per message and
// key value, then writes one summary with the count it dropped.
const SampleKey = "sample"

// Sample marks a line for sampling under key (added to the message to
// make the sampling key, so one message may be sampled per status, say).
func Sample(key string) slog.Attr { return slog.String(SampleKey, key) }

// SamplingHandler passes unmarked lines through and samples the lines
// marked with Sample: per (level, message, key) at most perSecond in each
// one-second window; the rest are counted, and one summary line ("log
// lines dropped by sampling", with the message, key and count) follows
// the window, written when the next line of that key arrives or by a
// timer when none does.
type SamplingHandler struct {
	next      slog.Handler
	perSecond int
	state     *sampleState
}

type sampleState struct {
	mu        sync.Mutex
	windows   map[sampleKey]*sampleWindow
	now       func() time.Time
	afterFunc func(time.Duration, func())
}

type sampleKey struct {
	level   slog.Level
	message string
	key     string
}

type sampleWindow struct {
	start   time.Time
	passed  int
	dropped int
	timer   bool // a flush is scheduled
	next    slog.Handler
}

// window is the sampling window.
const window = time.Second

// NewSamplingHandler wraps next; perSecond <= 0 passes every line.
func NewSamplingHandler(next slog.Handler, perSecond int) *SamplingHandler {
	return &SamplingHandler{next: next, perSecond: perSecond, state: &sampleState{
		windows:   map[sampleKey]*sampleWindow{},
		now:       time.Now,
		afterFunc: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
	}}
}

// Enabled implements slog.Handler.
func (h *SamplingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *SamplingHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.perSecond <= 0 || r.NumAttrs() == 0 {
		return h.next.Handle(ctx, r)
	}
	var key string
	var marked bool
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == SampleKey {
			key, marked = a.Value.String(), true
			return false
		}
		return true
	})
	if !marked {
		return h.next.Handle(ctx, r)
	}
	k := sampleKey{level: r.Level, message: r.Message, key: key}
	s := h.state
	s.mu.Lock()
	now := s.now()
	w := s.windows[k]
	var summary *slog.Record
	var summaryTo slog.Handler
	if w != nil && now.Sub(w.start) >= window {
		if w.dropped > 0 {
			rec := summaryRecord(k, w, now)
			summary, summaryTo = &rec, w.next
		}
		delete(s.windows, k)
		w = nil
	}
	if w == nil {
		w = &sampleWindow{start: now, next: h.next}
		s.windows[k] = w
	}
	pass := w.passed < h.perSecond
	if pass {
		w.passed++
	} else {
		w.dropped++
		if !w.timer {
			w.timer = true
			s.afterFunc(window-now.Sub(w.start), func() { h.flush(k, w) })
		}
	}
	s.mu.Unlock()
	if summary != nil {
		_ = summaryTo.Handle(context.Background(), *summary)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// flush writes the summary of window w of k if it is still the current one
// with drops (a later line may have written it already).
func (h *SamplingHandler) flush(k sampleKey, w *sampleWindow) {
	s := h.state
	s.mu.Lock()
	if s.windows[k] != w || w.dropped == 0 {
		s.mu.Unlock()
		return
	}
	delete(s.windows, k)
	rec := summaryRecord(k, w, s.now())
	s.mu.Unlock()
	_ = w.next.Handle(context.Background(), rec)
}

func summaryRecord(k sampleKey, w *sampleWindow, now time.Time) slog.Record {
	level := k.level
	if level < slog.LevelInfo {
		level = slog.LevelInfo
	}
	r := slog.NewRecord(now, level, "log lines dropped by sampling", 0)
	r.AddAttrs(
		slog.String("sampled_message", k.message),
		slog.String(SampleKey, k.key),
		slog.Int("dropped", w.dropped),
		slog.Int("passed", w.passed),
		slog.Time("window_start", w.start),
	)
	return r
}

// WithAttrs implements slog.Handler. The derived handler shares the
// sampling state: a line counts the same whichever logger wrote it.
func (h *SamplingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &SamplingHandler{next: h.next.WithAttrs(as), perSecond: h.perSecond, state: h.state}
}

// WithGroup implements slog.Handler.
func (h *SamplingHandler) WithGroup(name string) slog.Handler {
	return &SamplingHandler{next: h.next.WithGroup(name), perSecond: h.perSecond, state: h.state}
}

// WithContextIDs returns l stamping its lines with the context's ids: l
// itself when its handler is already one of this package's (NewLogger's
// stack), otherwise l with a ContextHandler in front. Nil stays nil.
func WithContextIDs(l *slog.Logger) *slog.Logger {
	if l == nil {
		return nil
	}
	switch l.Handler().(type) {
	case *ContextHandler, *SamplingHandler:
		return l
	}
	return slog.New(NewContextHandler(l.Handler()))
}
