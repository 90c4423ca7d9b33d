package sqlstore_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// auditBenchEnv + "_ROWS" sets how many rows BenchmarkAuditLogsAtScale
// fills (default a million) on every engine before it reports query
// timings and plans. It takes minutes; CI runs no benchmarks:
//
//	GATEHOUSE_TEST_POSTGRES_URL=... go test -run xxx -bench AuditLogsAtScale \
//	  -benchtime 1x -v -timeout 1h ./internal/store/sqlstore/
const auditBenchEnv = "GATEHOUSE_AUDIT_BENCH"

// Users the rows are spread over; one more, the "heavy" user, gets
// heavyShare of all rows (an account under a credential-stuffing attack).
const (
	benchUsers = 10_000
	heavyShare = 0.02
)

type benchAction struct {
	name   string
	weight int
	// risk draws the row's risk score.
	risk func(r *mrand.Rand) int
}

var benchActions = []benchAction{
	{"user.login", 45, lowRisk},
	{"token.refreshed", 25, lowRisk},
	{"user.login_failed", 15, func(r *mrand.Rand) int { return 20 + r.IntN(81) }},
	{"session.revoked", 6, lowRisk},
	{"user.password_changed", 3, lowRisk},
	{"user.email_verified", 2, lowRisk},
	{"user.mfa_enabled", 2, lowRisk},
	{"user.registered", 1, lowRisk},
	{"user.locked", 1, func(r *mrand.Rand) int { return 60 + r.IntN(41) }},
}

// lowRisk is mostly 0-20, with a 2% tail up to 100.
func lowRisk(r *mrand.Rand) int {
	if r.IntN(50) == 0 {
		return r.IntN(101)
	}
	return r.IntN(21)
}

// uuidv7 is gatehouse.NewID at a given instant.
func uuidv7(t time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[6:])
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(t.UnixMilli()))
	copy(b[0:6], ts[2:8])
	b[6] = (b[6] & 0x0f) | 0x70
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var benchMeta = map[string]any{"method": "password", "country": "CH"}

func benchUserID(i int) string { return fmt.Sprintf("0190a000-0000-7000-8000-%012d", i) }

const heavyUser = "0190a000-0000-7000-8000-999999999999"

// BenchmarkAuditLogsAtScale fills a million audit rows per engine and logs
// query timings and plans. It is a measurement, run by hand:
// go test -run xxx -bench AuditLogsAtScale -benchtime 1x ./internal/store/sqlstore/
func BenchmarkAuditLogsAtScale(t *testing.B) {
	rows := 1_000_000
	if v := os.Getenv(auditBenchEnv + "_ROWS"); v != "" {
		var err error
		rows, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.B) {
			db := e.Open(t)
			start := time.Now()
			fillAudit(t, db, rows)
			t.Logf("%s: inserted %d rows in %s", e.Name, rows, time.Since(start).Round(time.Millisecond))
			start = time.Now()
			rep, err := audit.Verify(t.Context(), db, 0)
			require.NoError(t, err)
			require.True(t, rep.OK(), "%v", rep.Break)
			require.Equal(t, int64(rows), rep.Checked)
			t.Logf("%s: audit verify checked %d rows in %s", e.Name, rep.Checked, time.Since(start).Round(time.Millisecond))
			if e.Name == string(store.SQLite) {
				// What a database that was never analysed does (Gatehouse
				// runs no ANALYZE on SQLite itself).
				reportAuditQueries(t, db, rows, "no statistics")
			}
			// PostgreSQL's autovacuum would get there by itself (insert-only
			// tables are vacuumed since 13); VACUUM also sets the visibility
			// map that index-only scans (the plan choice's counts) rely on.
			stmt := "ANALYZE"
			if e.Name == string(store.Postgres) {
				stmt = "VACUUM ANALYZE audit_logs"
			}
			start = time.Now()
			_, err = db.DB().ExecContext(t.Context(), stmt)
			require.NoError(t, err)
			t.Logf("%s: %s took %s", e.Name, stmt, time.Since(start).Round(time.Millisecond))
			reportAuditQueries(t, db, rows, "after "+stmt)
		})
	}
}

// fillAudit inserts n rows spread over 90 days ending now, ids in time
// order, with multi-row INSERTs in transactions of 50,000 rows.
func fillAudit(t testing.TB, db *sqlstore.DB, n int) {
	ctx := t.Context()
	r := mrand.New(mrand.NewPCG(7, 7))
	totalWeight := 0
	for _, a := range benchActions {
		totalWeight += a.weight
	}
	const perStmt, perTx = 500, 50_000
	end := time.Now().UTC()
	begin := end.Add(-90 * 24 * time.Hour)
	step := end.Sub(begin) / time.Duration(n)
	pg := db.Dialect() == store.Postgres

	var (
		tx       *sql.Tx
		sb       strings.Builder
		args     []any
		prevHash string
	)
	flush := func() {
		if len(args) == 0 {
			return
		}
		_, err := tx.ExecContext(ctx, sb.String(), args...)
		require.NoError(t, err)
		sb.Reset()
		args = args[:0]
	}
	for i := range n {
		if i%perTx == 0 {
			if tx != nil {
				flush()
				require.NoError(t, tx.Commit())
			}
			var err error
			tx, err = db.DB().BeginTx(ctx, nil)
			require.NoError(t, err)
		}
		if len(args) == 0 {
			sb.WriteString(`INSERT INTO audit_logs (id, actor_id, user_id, action, resource, ip_address, user_agent, metadata, risk_score, created_at, seq, prev_hash, hash) VALUES `)
		} else {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range 13 {
			if c > 0 {
				sb.WriteString(", ")
			}
			if pg {
				sb.WriteString("$" + strconv.Itoa(len(args)+c+1))
			} else {
				sb.WriteByte('?')
			}
		}
		sb.WriteByte(')')

		at := begin.Add(time.Duration(i) * step)
		w := r.IntN(totalWeight)
		act := benchActions[0]
		for _, a := range benchActions {
			if w < a.weight {
				act = a
				break
			}
			w -= a.weight
		}
		userID := benchUserID(r.IntN(benchUsers))
		switch x := r.Float64(); {
		case x < heavyShare:
			userID = heavyUser
		case x < heavyShare+0.01:
			userID = "" // a system row about no account
		}
		var user any = userID
		if userID == "" {
			user = nil
		}
		var created any = at
		if !pg {
			created = at.Format("2006-01-02T15:04:05.000000Z")
		}
		// Rows are chained as the store chains them, so Verify can be
		// timed over the whole table.
		l := gatehouse.AuditLog{
			ID: uuidv7(at), ActorID: userID, UserID: userID, Action: act.name, Resource: "session:" + strconv.Itoa(i),
			IPAddress: fmt.Sprintf("198.51.100.%d", r.IntN(256)), UserAgent: "Mozilla/5.0 (bench)",
			Metadata: benchMeta, RiskScore: act.risk(r), CreatedAt: at,
			Seq: int64(i + 1), PrevHash: prevHash,
		}
		var err error
		l.Hash, err = l.ChainHash()
		require.NoError(t, err)
		prevHash = l.Hash
		args = append(args, l.ID, user, user, l.Action, l.Resource, l.IPAddress, l.UserAgent,
			`{"method":"password","country":"CH"}`, l.RiskScore, created, l.Seq, l.PrevHash, l.Hash)
		if len(args) == perStmt*13 {
			flush()
		}
	}
	flush()
	require.NoError(t, tx.Commit())
}

type auditCase struct {
	name string
	q    func(r *mrand.Rand, mid string) store.AuditQuery
}

func reportAuditQueries(t testing.TB, db *sqlstore.DB, rows int, label string) {
	ctx := t.Context()
	// A cursor in the middle of the table, for a deep page.
	var mid string
	require.NoError(t, db.DB().QueryRowContext(ctx, fmt.Sprintf(`SELECT id FROM audit_logs ORDER BY id LIMIT 1 OFFSET %d`, rows/2)).Scan(&mid))
	now := time.Now().UTC()
	day := now.Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour)
	user := func(r *mrand.Rand) string { return benchUserID(r.IntN(benchUsers)) }
	// The handler asks for a page plus one row to know whether more follow.
	const limit = 51
	cases := []auditCase{
		{"user", func(r *mrand.Rand, _ string) store.AuditQuery {
			return store.AuditQuery{UserID: user(r), Limit: limit}
		}},
		{"user+action+min_risk", func(r *mrand.Rand, _ string) store.AuditQuery {
			return store.AuditQuery{UserID: user(r), Action: "user.login_failed", MinRisk: 50, Limit: limit}
		}},
		{"user page 2 (cursor)", func(r *mrand.Rand, mid string) store.AuditQuery {
			return store.AuditQuery{UserID: user(r), Before: mid, Limit: limit}
		}},
		{"heavy user", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{UserID: heavyUser, Limit: limit}
		}},
		{"heavy user+action+min_risk", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{UserID: heavyUser, Action: "user.login_failed", MinRisk: 50, Limit: limit}
		}},
		{"heavy user+rare action", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{UserID: heavyUser, Action: "user.locked", Limit: limit}
		}},
		{"action common", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{Action: "user.login", Limit: limit}
		}},
		{"action rare", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{Action: "user.locked", Limit: limit}
		}},
		{"min_risk 90", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{MinRisk: 90, Limit: limit}
		}},
		{"min_risk 30", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{MinRisk: 30, Limit: limit}
		}},
		{"one-day window 30 days ago", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{From: &day, To: ptrTime(day.Add(24 * time.Hour)), Limit: limit}
		}},
		{"last 30 days (from only)", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{From: ptrTime(now.Add(-30 * 24 * time.Hour)), Limit: limit}
		}},
		{"78-day window ending 7d ago", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{From: ptrTime(now.Add(-85 * 24 * time.Hour)), To: ptrTime(now.Add(-7 * 24 * time.Hour)), Limit: limit}
		}},
		{"60-day window ending 30d ago", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{From: ptrTime(now.Add(-90 * 24 * time.Hour)), To: ptrTime(now.Add(-30 * 24 * time.Hour)), Limit: limit}
		}},
		{"8h window 60d ago + action", func(*mrand.Rand, string) store.AuditQuery {
			from := now.Add(-60 * 24 * time.Hour)
			return store.AuditQuery{Action: "user.login", From: &from, To: ptrTime(from.Add(8 * time.Hour)), Limit: limit}
		}},
		{"unfiltered", func(*mrand.Rand, string) store.AuditQuery {
			return store.AuditQuery{Limit: limit}
		}},
		{"unfiltered deep page", func(_ *mrand.Rand, mid string) store.AuditQuery {
			return store.AuditQuery{Before: mid, Limit: limit}
		}},
	}
	r := mrand.New(mrand.NewPCG(1, 1))
	t.Logf("== %s, %s: ListAuditLogs, limit %d, 100 runs each (random users where a user is named) ==", db.Dialect(), label, limit)
	for _, c := range cases {
		var times []time.Duration
		total := 0
		for range 100 {
			q := c.q(r, mid)
			start := time.Now()
			logs, err := db.ListAuditLogs(ctx, q)
			times = append(times, time.Since(start))
			require.NoError(t, err)
			total += len(logs)
		}
		slices.Sort(times)
		t.Logf("%-28s median %8s  p95 %8s  max %8s  (avg rows %d)", c.name,
			times[50].Round(time.Microsecond), times[95].Round(time.Microsecond), times[99].Round(time.Microsecond), total/100)
	}
	for _, c := range cases {
		t.Logf("-- plan: %s --\n%s", c.name, explainAudit(t, db, c.q(mrand.New(mrand.NewPCG(1, 1)), mid)))
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

func explainAudit(t testing.TB, db *sqlstore.DB, q store.AuditQuery) string {
	ctx := t.Context()
	query, args, err := sqlstore.AuditListSQL(ctx, db, q)
	require.NoError(t, err)
	prefix := "EXPLAIN QUERY PLAN "
	if db.Dialect() == store.Postgres {
		prefix = "EXPLAIN (ANALYZE, BUFFERS) "
	}
	rows, err := db.DB().QueryContext(ctx, prefix+query, args...)
	require.NoError(t, err)
	out := planLines(t, rows)
	return "   " + query + "\n   " + strings.Join(out, "\n   ")
}
