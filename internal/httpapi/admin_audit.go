package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// AuditReader reads the audit trail (the SQL store).
type AuditReader interface {
	// ListAuditLogs returns rows matching q, newest first.
	ListAuditLogs(ctx context.Context, q store.AuditQuery) ([]gatehouse.AuditLog, error)
}

// AuditLog is the API's view of one audit row. Optional strings are null
// when the row has none, never "".
type AuditLog struct {
	ID        string         `json:"id" doc:"Opaque id (UUIDv7); ids order rows by creation."`
	ActorID   *string        `json:"actor_id" doc:"Who did it: the user themself or an administrator; null for the system."`
	UserID    *string        `json:"user_id" doc:"The account it concerns; null when none. The account may since have been deleted."`
	Action    string         `json:"action" doc:"What happened, e.g. user.login, user.locked."`
	Resource  *string        `json:"resource" doc:"What it was done to, e.g. session:<id>; null when nothing beyond the account."`
	IPAddress *string        `json:"ip_address" doc:"Client IP; null when unknown (system actions)."`
	UserAgent *string        `json:"user_agent" doc:"Client user agent; null when unknown."`
	Metadata  map[string]any `json:"metadata" doc:"Details that depend on the action; {} when none."`
	RiskScore int            `json:"risk_score" minimum:"0" maximum:"100" doc:"How risky the action looked, 0 (none) to 100."`
	CreatedAt time.Time      `json:"created_at"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func auditLogBody(l gatehouse.AuditLog) AuditLog {
	out := AuditLog{
		ID: l.ID, ActorID: optString(l.ActorID), UserID: optString(l.UserID), Action: l.Action,
		Resource: optString(l.Resource), IPAddress: optString(l.IPAddress), UserAgent: optString(l.UserAgent),
		Metadata: l.Metadata, RiskScore: l.RiskScore, CreatedAt: l.CreatedAt.UTC(),
	}
	if out.Metadata == nil {
		out.Metadata = map[string]any{}
	}
	return out
}

type auditLogList struct {
	Body struct {
		Items      []AuditLog `json:"items"`
		NextCursor *string    `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

func (s *Server) registerAdminAudit() {
	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-list-audit-logs", Method: http.MethodGet, Path: "/admin/audit-logs", Tags: []string{TagAdmin},
		Summary: "List audit logs",
		Description: "Newest first, a page at a time. Filters combine (AND): user_id and action match exactly, " +
			"from is inclusive and to exclusive (an empty or inverted window matches nothing), min_risk keeps " +
			"risk_score ≥ min_risk. Pages do not shift while rows are added: rows written during paging " +
			"sort before the cursor (ids follow creation time) and show when listing starts again.",
	}, "audit:read"), func(ctx context.Context, in *struct {
		UserID  string    `query:"user_id" maxLength:"64" doc:"Only rows about this account."`
		Action  string    `query:"action" maxLength:"100" doc:"Only rows with this action, e.g. user.login_failed."`
		From    time.Time `query:"from" doc:"RFC 3339; only rows created at or after it."`
		To      time.Time `query:"to" doc:"RFC 3339; only rows created before it."`
		MinRisk int       `query:"min_risk" minimum:"0" maximum:"100" doc:"Only rows with at least this risk_score."`
		Limit   int       `query:"limit" minimum:"1" maximum:"200" default:"50"`
		Cursor  string    `query:"cursor" maxLength:"200"`
	}) (*auditLogList, error) {
		before, err := decodeCursor(in.Cursor)
		if err != nil {
			return nil, Problem(err)
		}
		q := store.AuditQuery{UserID: in.UserID, Action: in.Action, MinRisk: in.MinRisk, Before: before, Limit: in.Limit + 1}
		if !in.From.IsZero() {
			q.From = &in.From
		}
		if !in.To.IsZero() {
			q.To = &in.To
		}
		logs, err := s.audit.ListAuditLogs(ctx, q)
		if err != nil {
			return nil, Problem(err)
		}
		out := &auditLogList{}
		if len(logs) > in.Limit {
			logs = logs[:in.Limit]
			next := encodeCursor(logs[len(logs)-1].ID)
			out.Body.NextCursor = &next
		}
		out.Body.Items = make([]AuditLog, 0, len(logs))
		for _, l := range logs {
			out.Body.Items = append(out.Body.Items, auditLogBody(l))
		}
		return out, nil
	})
}
