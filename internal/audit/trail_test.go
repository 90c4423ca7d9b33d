package audit_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// trail returns the user's audit rows, oldest first.
func trail(t *testing.T, e *apptest.Env, userID string) []gatehouse.AuditLog {
	t.Helper()
	rows, err := e.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: userID, Limit: 1000})
	require.NoError(t, err)
	slices.Reverse(rows)
	return rows
}

func find(t *testing.T, rows []gatehouse.AuditLog, action string) gatehouse.AuditLog {
	t.Helper()
	for _, r := range rows {
		if r.Action == action {
			return r
		}
	}
	t.Fatalf("no %s row among %d", action, len(rows))
	return gatehouse.AuditLog{}
}

// TestTrailThroughTheAPI: registration, login, a failed login, logout and
// a refused admin call each leave their row, with the client's IP and user
// agent in their columns, and the chain verifies.
func TestTrailThroughTheAPI(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, nil)
			id := e.Register("alice@example.com", apptest.StrongPassword)
			tok := e.Login("alice@example.com", apptest.StrongPassword)
			bad := e.Do("POST", "/auth/login", map[string]any{"email": "alice@example.com", "password": "wrong-password-1"}, "")
			require.Equal(t, http.StatusUnauthorized, bad.Status)
			denied := e.Do("GET", "/admin/audit-logs", nil, tok.Access)
			require.Equal(t, http.StatusForbidden, denied.Status)
			require.Equal(t, http.StatusNoContent, e.Do("POST", "/auth/logout", nil, tok.Access).Status)

			rows := trail(t, e, id)
			var actions []string
			for _, r := range rows {
				actions = append(actions, r.Action)
				require.Equal(t, "127.0.0.1", r.IPAddress, r.Action)
				require.Equal(t, "apptest/1.0", r.UserAgent, r.Action)
				require.NotContains(t, r.Metadata, "ip_address")
				require.NotContains(t, r.Metadata, "user_agent")
			}
			require.Equal(t, []string{"user.registered", "user.login", "user.login_failed", audit.ActionDenied, "session.revoked"}, actions)

			reg := find(t, rows, "user.registered")
			require.Equal(t, id, reg.ActorID)
			require.Equal(t, "user:"+id, reg.Resource)
			require.Equal(t, "alice@example.com", reg.Metadata["email"])
			require.NotEmpty(t, reg.Metadata["event_id"])

			login := find(t, rows, "user.login")
			require.Equal(t, "session:"+tok.SessionID, login.Resource)
			require.Equal(t, "password", login.Metadata["method"])

			failed := find(t, rows, "user.login_failed")
			require.NotEmpty(t, failed.Metadata["reason"])
			require.Empty(t, failed.ActorID, "nobody was signed in")

			d := find(t, rows, audit.ActionDenied)
			require.Equal(t, id, d.ActorID)
			require.Equal(t, "audit:read", d.Metadata["permission"])
			require.Equal(t, "permission:audit:read", d.Resource)
			require.Equal(t, "GET /api/v1/admin/audit-logs", d.Metadata["route"])

			out := find(t, rows, "session.revoked")
			require.Equal(t, id, out.ActorID, "the signed-in caller is the actor")
			require.Equal(t, "session:"+tok.SessionID, out.Resource)

			rep := verify(t, e.App.DB, 2)
			require.True(t, rep.OK(), "%v", rep.Break)
			require.GreaterOrEqual(t, rep.Checked, int64(len(rows)))
		})
	}
}

// TestRolledBackChangeLeavesNoAuditRow: the row is written in the
// change's transaction, so a change that rolls back leaves neither event
// nor audit row, and the chain has no gap.
func TestRolledBackChangeLeavesNoAuditRow(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, nil)
			ctx := t.Context()
			user := gatehouse.NewID()
			errRollback := errors.New("roll back")
			err := e.App.DB.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				if _, err := e.App.Bus.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserPasswordChanged, UserID: user}); err != nil {
					return err
				}
				if err := e.App.Audit.Record(ctx, tx, gatehouse.AuditLog{Action: "test.explicit", UserID: user}); err != nil {
					return err
				}
				require.Len(t, trailIn(t, ctx, tx, user), 2, "visible inside the transaction")
				return errRollback
			})
			require.ErrorIs(t, err, errRollback)
			require.Empty(t, trail(t, e, user))

			// The next change commits, with its row right after the head.
			require.NoError(t, e.App.DB.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := e.App.Bus.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserPasswordChanged, UserID: user})
				return err
			}))
			require.Len(t, trail(t, e, user), 1)
			require.True(t, verify(t, e.App.DB, 0).OK())
		})
	}
}

func trailIn(t *testing.T, ctx context.Context, tx store.Tx, userID string) []gatehouse.AuditLog {
	t.Helper()
	rows, err := tx.ListAuditLogs(ctx, store.AuditQuery{UserID: userID, Limit: 100})
	require.NoError(t, err)
	return rows
}
