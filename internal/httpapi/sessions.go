package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
)

// TagSessions groups session operations.
const TagSessions = "Sessions"

// Session is the API's view of a session.
type Session struct {
	ID           string    `json:"id"`
	CreatedAt    time.Time `json:"created_at"`
	LastActiveAt time.Time `json:"last_active_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	IPAddress    string    `json:"ip_address"`
	UserAgent    string    `json:"user_agent"`
	DeviceID     *string   `json:"device_id"`
	Location     *string   `json:"location"`
	TrustScore   int       `json:"trust_score" minimum:"0" maximum:"100"`
	Current      bool      `json:"current" doc:"True for the session of the access token making the request."`
	MFA          bool      `json:"mfa" doc:"True when the session was started with a second factor."`
}

func sessionBody(s gatehouse.Session, current string) Session {
	out := Session{ID: s.ID, CreatedAt: s.CreatedAt.UTC(), LastActiveAt: s.LastActiveAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
		IPAddress: s.IPAddress, UserAgent: s.UserAgent, TrustScore: s.TrustScore, Current: s.ID == current, MFA: s.MFA}
	if s.DeviceID != "" {
		d := s.DeviceID
		out.DeviceID = &d
	}
	if s.Location != "" {
		l := s.Location
		out.Location = &l
	}
	return out
}

type sessionList struct {
	Body struct {
		Items      []Session `json:"items"`
		NextCursor *string   `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

type revokedOutput struct {
	Body struct {
		Revoked int `json:"revoked" doc:"How many sessions ended."`
	}
}

func (s *Server) registerSessions() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "list-sessions", Method: http.MethodGet, Path: "/sessions", Tags: []string{TagSessions},
		Summary: "List my sessions",
		Description: "Live sessions, most recently active first (ties by id), a page at a time; the caller's own is marked current. " +
			"A cursor whose session has ended since is 422 validation_failed: start again without it.",
	}), func(ctx context.Context, in *pageInput) (*sessionList, error) {
		p := mustPrincipal(ctx)
		list, err := s.sessions.List(ctx, p.UserID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &sessionList{}
		out.Body.Items, out.Body.NextCursor, err = pageList(list, in,
			func(sess gatehouse.Session) Session { return sessionBody(sess, p.SessionID) },
			func(sess gatehouse.Session) string { return sess.ID })
		if err != nil {
			return nil, Problem(err)
		}
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "revoke-session", Method: http.MethodDelete, Path: "/sessions/{id}", Tags: []string{TagSessions},
		Summary:       "End one of my sessions",
		Description:   "Its access and refresh tokens stop working at once. 404 for an unknown id or somebody else's.",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"64"`
	}) (*noContent, error) {
		p := mustPrincipal(ctx)
		if err := s.sessions.Revoke(ctx, p.UserID, in.ID, "revoked_by_user"); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "revoke-other-sessions", Method: http.MethodDelete, Path: "/sessions", Tags: []string{TagSessions},
		Summary: "End every session but this one",
	}), func(ctx context.Context, _ *struct{}) (*revokedOutput, error) {
		p := mustPrincipal(ctx)
		n, err := s.sessions.RevokeOthers(ctx, p.UserID, p.SessionID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &revokedOutput{}
		out.Body.Revoked = n
		return out, nil
	})
}
