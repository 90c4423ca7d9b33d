// Package audit writes the audit trail: one row for every security-relevant
// action, in the transaction of the change it records, appended to a hash
// chain the store keeps (see gatehouse.AuditLog). Domain events become rows
// through RecordEvent, hooked to the event bus; actions that are not
// events (authorization failures) call Record or RecordDenied. Verify walks
// the chain; the prune job exports old rows and then removes them.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Meta is what the HTTP layer knows of the request behind an action.
type Meta struct {
	IP        string
	UserAgent string
	// ActorID is the signed-in caller, when there is one.
	ActorID string
}

type metaKey struct{}

// WithRequest returns ctx carrying m, for Record to fill what an entry
// leaves empty.
func WithRequest(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// WithActor returns ctx with the request's ActorID set, keeping its IP and
// user agent.
func WithActor(ctx context.Context, actorID string) context.Context {
	m := RequestFrom(ctx)
	m.ActorID = actorID
	return WithRequest(ctx, m)
}

// RequestFrom returns the request metadata in ctx (zero when none).
func RequestFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}

// Store is what the recorder needs from the database.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
	ListAuditLogs(ctx context.Context, q store.AuditQuery) ([]gatehouse.AuditLog, error)
}

// Recorder writes audit rows.
type Recorder struct {
	store Store
	now   func() time.Time
}

// New makes a Recorder; a nil now means time.Now.
func New(st Store, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{store: st, now: now}
}

// Record appends e in tx. It fills an empty ID and zero CreatedAt, and
// takes ActorID, IPAddress and UserAgent from the request in ctx (see
// WithRequest) when e leaves them empty. The store assigns the chain.
func (r *Recorder) Record(ctx context.Context, tx store.Tx, e gatehouse.AuditLog) error {
	if e.ID == "" {
		e.ID = gatehouse.NewID()
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = r.now()
	}
	e.CreatedAt = e.CreatedAt.UTC()
	m := RequestFrom(ctx)
	e.ActorID = cmpOr(e.ActorID, m.ActorID)
	e.IPAddress = cmpOr(e.IPAddress, m.IP)
	e.UserAgent = cmpOr(e.UserAgent, m.UserAgent)
	e.RiskScore = min(max(e.RiskScore, 0), 100)
	if err := tx.CreateAuditLog(ctx, e); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// RecordEvent records a domain event as an audit row in the event's
// transaction; it is the event bus's emit hook. The action is the event
// type; the resource the session or role it names, else the user; the
// metadata is the event's data (with event_id added) except ip_address and
// user_agent, which go to their columns, and risk_score, which goes to its
// own.
func (r *Recorder) RecordEvent(ctx context.Context, tx store.Tx, ev gatehouse.Event) error {
	e := gatehouse.AuditLog{
		Action: string(ev.Type), UserID: ev.UserID, ActorID: ev.ActorID, CreatedAt: ev.CreatedAt,
		Metadata: make(map[string]any, len(ev.Data)+1),
	}
	for k, v := range ev.Data {
		switch k {
		case "ip_address":
			e.IPAddress, _ = v.(string)
		case "user_agent":
			e.UserAgent, _ = v.(string)
		case "risk_score":
			e.RiskScore = intOf(v)
		default:
			e.Metadata[k] = v
		}
	}
	e.Metadata["event_id"] = ev.ID
	e.Resource = resourceOf(ev)
	return r.Record(ctx, tx, e)
}

// resourceOf names what an event was done to.
func resourceOf(ev gatehouse.Event) string {
	for _, ref := range []struct{ key, kind string }{{"session_id", "session"}, {"role_id", "role"}, {"device_id", "device"}, {"passkey_id", "passkey"}, {"webhook_id", "webhook"}} {
		if id, ok := ev.Data[ref.key].(string); ok && id != "" {
			return ref.kind + ":" + id
		}
	}
	if ev.UserID != "" {
		return "user:" + ev.UserID
	}
	return ""
}

func intOf(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

// ActionDenied is the action of an authorization failure.
const ActionDenied = "authz.denied"

// RecordDenied records that userID was refused permission, in a short
// transaction of its own: a refusal has no transaction to join. route says
// what was asked for (e.g. "GET /api/v1/admin/users").
func (r *Recorder) RecordDenied(ctx context.Context, userID, permission, route string) error {
	return r.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return r.Record(ctx, tx, gatehouse.AuditLog{
			Action: ActionDenied, UserID: userID, ActorID: userID, Resource: "permission:" + permission,
			Metadata: map[string]any{"permission": permission, "route": route},
		})
	})
}

// ListAuditLogs reads the trail, so that one value serves the HTTP API's
// audit reads and its denial records.
func (r *Recorder) ListAuditLogs(ctx context.Context, q store.AuditQuery) ([]gatehouse.AuditLog, error) {
	return r.store.ListAuditLogs(ctx, q)
}
