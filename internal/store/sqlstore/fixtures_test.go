package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// onEngines runs fn on a fresh database of every engine, in parallel.
func onEngines(t *testing.T, fn func(t *testing.T, db *sqlstore.DB, ctx context.Context)) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, e.Open(t), t.Context())
		})
	}
}

// whT0 dates the fixtures.
var whT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// whUser makes a user with email and answers its id.
func whUser(t *testing.T, db *sqlstore.DB, email string) string {
	t.Helper()
	id := gatehouse.NewID()
	require.NoError(t, db.CreateUser(t.Context(), gatehouse.User{ID: id, Email: gatehouse.Email(email), CreatedAt: whT0, UpdatedAt: whT0}))
	return id
}

// whHook makes a webhook of userID for events.
func whHook(t *testing.T, db *sqlstore.DB, userID string, allUsers bool, events ...string) gatehouse.Webhook {
	t.Helper()
	w := gatehouse.Webhook{ID: gatehouse.NewID(), UserID: userID, URL: "https://example.com/hook", Events: events,
		Description: "d", Active: true, AllUsers: allUsers, SecretEnc: []byte{1, 2, 3}, CreatedAt: whT0, UpdatedAt: whT0}
	require.NoError(t, db.CreateWebhook(t.Context(), w))
	return w
}

// rebindForTest turns "?" into "$n" for PostgreSQL in raw test SQL.
func rebindForTest(db *sqlstore.DB, q string) string {
	if db.Dialect() != store.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
