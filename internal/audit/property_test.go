package audit_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// TestProperty64_SecurityActionCreatesAuditLog: any event, emitted in any
// change's transaction, leaves exactly one audit row saying what the event
// says: its type as the action, its user and actor, the client's IP and
// user agent in their columns and the rest of its data as metadata.
func TestProperty64_SecurityActionCreatesAuditLog(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, nil)
			value := rapid.OneOf(rapid.Just[any](nil), rapid.Bool().AsAny(), rapid.IntRange(-1000, 1000).AsAny(),
				rapid.StringMatching(`[a-zA-Z0-9 ._:-]{0,20}`).AsAny())
			e.Check(t, func(rt *rapid.T) {
				ev := gatehouse.Event{
					Type:   rapid.SampledFrom(gatehouse.EventTypes).Draw(rt, "type"),
					UserID: gatehouse.NewID(),
					Data:   rapid.MapOf(rapid.StringMatching(`[a-z_]{1,10}`), value).Draw(rt, "data"),
				}
				if rapid.Bool().Draw(rt, "actor") {
					ev.ActorID = gatehouse.NewID()
				}
				ip := rapid.SampledFrom([]string{"", "203.0.113.7", "2001:db8::1"}).Draw(rt, "ip")
				ua := rapid.SampledFrom([]string{"", "Mozilla/5.0 Grüße"}).Draw(rt, "ua")
				data := map[string]any{}
				for k, v := range ev.Data {
					if k != "ip_address" && k != "user_agent" && k != "risk_score" && k != "event_id" {
						data[k] = v
					}
				}
				ev.Data = maps.Clone(data)
				if ip != "" {
					ev.Data["ip_address"] = ip
				}
				if ua != "" {
					ev.Data["user_agent"] = ua
				}
				var emitted gatehouse.Event
				err := e.App.DB.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
					var err error
					emitted, err = e.App.Bus.Emit(ctx, tx, ev)
					return err
				})
				if err != nil {
					rt.Fatalf("emit: %v", err)
				}
				rows, err := e.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: ev.UserID, Limit: 10})
				if err != nil || len(rows) != 1 {
					rt.Fatalf("want one row, got %d (%v)", len(rows), err)
				}
				r := rows[0]
				data["event_id"] = emitted.ID
				want, _ := gatehouse.CanonicalAuditMetadata(data)
				got, _ := gatehouse.CanonicalAuditMetadata(r.Metadata)
				switch {
				case r.Action != string(ev.Type), r.ActorID != ev.ActorID, r.IPAddress != ip, r.UserAgent != ua:
					rt.Fatalf("row %+v for event %+v", r, ev)
				case string(want) != string(got):
					rt.Fatalf("metadata: want %s, got %s", want, got)
				case !r.CreatedAt.Equal(emitted.CreatedAt.UTC().Truncate(time.Microsecond)):
					rt.Fatalf("created_at %s, event %s", r.CreatedAt, emitted.CreatedAt)
				}
			})
			require.True(t, verify(t, e.App.DB, 0).OK())
		})
	}
}

// TestProperty65_AuditLogCompleteness: whatever mix of account actions
// runs, every event emitted has exactly one audit row (linked by
// event_id, with the event's type as its action), every refused admin
// call has its authz.denied row, and the chain stays whole.
func TestProperty65_AuditLogCompleteness(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "false", "GATEHOUSE_LOCKOUT_THRESHOLD": "1000"})
			ctx := t.Context()
			var users []string
			denials := 0
			e.Check(t, func(rt *rapid.T) {
				for range rapid.IntRange(1, 4).Draw(rt, "ops") {
					switch op := rapid.IntRange(0, 3).Draw(rt, "op"); {
					case op == 0 || len(users) == 0:
						email := fmt.Sprintf("member-%d@example.com", len(users))
						e.Register(email, apptest.StrongPassword)
						users = append(users, email)
					case op == 1:
						tok := e.Login(rapid.SampledFrom(users).Draw(rt, "user"), apptest.StrongPassword)
						if rapid.Bool().Draw(rt, "logout") {
							e.Do("POST", "/auth/logout", nil, tok.Access)
						}
					case op == 2:
						e.Do("POST", "/auth/login", map[string]any{"email": rapid.SampledFrom(users).Draw(rt, "user"), "password": "not-the-password"}, "")
					default:
						tok := e.Login(rapid.SampledFrom(users).Draw(rt, "user"), apptest.StrongPassword)
						if e.Do("GET", "/admin/users", nil, tok.Access).Status == http.StatusForbidden {
							denials++
						}
					}
				}
				events := map[string]string{}
				for _, ev := range e.Events() {
					events[ev.ID] = string(ev.Type)
				}
				logs, err := e.App.DB.ListAuditLogsBySeq(ctx, 0, 100_000)
				if err != nil {
					rt.Fatal(err)
				}
				seen, denied := map[string]int{}, 0
				for _, l := range logs {
					if l.Action == "authz.denied" {
						denied++
						continue
					}
					id, _ := l.Metadata["event_id"].(string)
					if events[id] != l.Action {
						rt.Fatalf("audit row %s (%s) names event %q of type %q", l.ID, l.Action, id, events[id])
					}
					seen[id]++
				}
				for id, typ := range events {
					if seen[id] != 1 {
						rt.Fatalf("event %s (%s) has %d audit rows", id, typ, seen[id])
					}
				}
				if denied != denials {
					rt.Fatalf("%d refusals, %d authz.denied rows", denials, denied)
				}
			})
			require.True(t, verify(t, e.App.DB, 0).OK())
		})
	}
}

// TestProperty69_AuditImmutability: no UPDATE or DELETE of any column, on
// any rows, on the pool or in a transaction, changes the table; only the
// prune path removes rows.
func TestProperty69_AuditImmutability(t *testing.T) {
	for _, eng := range sqltest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			record(t, db, 5)
			before, err := db.ListAuditLogsBySeq(t.Context(), 0, 10)
			require.NoError(t, err)
			columns := []string{"id", "actor_id", "user_id", "action", "resource", "ip_address", "user_agent", "risk_score", "seq", "prev_hash", "hash"}
			rapid.Check(t, func(rt *rapid.T) {
				where := rapid.SampledFrom([]string{"", " WHERE seq = 1", " WHERE seq = 5", " WHERE seq <= 3", " WHERE risk_score >= 0"}).Draw(rt, "where")
				var stmt string
				if rapid.Bool().Draw(rt, "delete") {
					stmt = "DELETE FROM audit_logs" + where
				} else {
					col := rapid.SampledFrom(columns).Draw(rt, "column")
					val := "'x'"
					if col == "risk_score" || col == "seq" {
						val = "1"
					}
					stmt = "UPDATE audit_logs SET " + col + " = " + val + where
				}
				var err error
				if rapid.Bool().Draw(rt, "in tx") {
					err = db.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
						_, err := tx.SQLTx().ExecContext(ctx, stmt)
						return err
					})
				} else {
					_, err = db.DB().ExecContext(t.Context(), stmt)
				}
				if err == nil {
					rt.Fatalf("%s was allowed", stmt)
				}
				after, err := db.ListAuditLogsBySeq(t.Context(), 0, 10)
				if err != nil {
					rt.Fatal(err)
				}
				require.Equal(rt, before, after, stmt)
			})
		})
	}
}
