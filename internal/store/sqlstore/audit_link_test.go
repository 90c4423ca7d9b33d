package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

func auditRow(action string) gatehouse.AuditLog {
	return gatehouse.AuditLog{ID: gatehouse.NewID(), Action: action, UserID: gatehouse.NewID(),
		Metadata: map[string]any{"n": 1}, CreatedAt: time.Now()}
}

// A transaction that wrote an audit row and is still open does not hold
// up another transaction's audit row: on PostgreSQL the chain's lock is
// taken only to link rows after their commit, not across the transaction
// that wrote them. (Before, the second commit waited for the first
// transaction to end.)
func TestAuditWriterDoesNotWaitForAnotherOpenTransaction(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		if e.Name != "postgres" {
			continue // SQLite serializes whole transactions by design
		}
		t.Run(e.Name, func(t *testing.T) {
			db := e.Open(t)
			ctx := t.Context()
			written := make(chan struct{})
			release := make(chan struct{})
			first := make(chan error, 1)
			go func() {
				first <- db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
					if err := tx.CreateAuditLog(ctx, auditRow("first")); err != nil {
						return err
					}
					close(written)
					<-release
					return nil
				})
			}()
			<-written
			short, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			err := db.InTx(short, func(ctx context.Context, tx store.Tx) error {
				return tx.CreateAuditLog(ctx, auditRow("second"))
			})
			close(release)
			require.NoError(t, err, "the second audit row committed while the first transaction was open")
			require.NoError(t, <-first)

			rep, err := audit.Verify(ctx, db, 0)
			require.NoError(t, err)
			require.True(t, rep.OK(), "%+v", rep.Break)
			require.EqualValues(t, 2, rep.Checked)
			rows, err := db.ListAuditLogsBySeq(ctx, 0, 10)
			require.NoError(t, err)
			require.Equal(t, []string{"second", "first"}, []string{rows[0].Action, rows[1].Action},
				"chain order is commit order")
		})
	}
}

// Many transactions writing audit rows at once on both engines: every row
// is linked once, the chain is whole and verifies.
func TestConcurrentAuditWritersMakeOneChain(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			db := e.Open(t)
			ctx := t.Context()
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := range 40 {
				wg.Go(func() {
					errs <- db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
						if err := tx.CreateAuditLog(ctx, auditRow("a")); err != nil {
							return err
						}
						if i%2 == 0 {
							return tx.CreateAuditLog(ctx, auditRow("b"))
						}
						return nil
					})
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			rep, err := audit.Verify(ctx, db, 7)
			require.NoError(t, err)
			require.True(t, rep.OK(), "%+v", rep.Break)
			require.EqualValues(t, 60, rep.Checked)
			require.EqualValues(t, 1, rep.FirstSeq)
			require.EqualValues(t, 60, rep.LastSeq)
			n, err := db.LinkAuditLogs(ctx)
			require.NoError(t, err)
			require.Zero(t, n, "nothing was left to link")
		})
	}
}

// Rows whose writer died between its commit and the linking step (here:
// written while the chain's lock was held elsewhere, so the linker after
// the commit gave up) wait unlinked, are never pruned, cannot be edited,
// and are linked by the next LinkAuditLogs.
func TestUnlinkedAuditRowsAreLinkedLater(t *testing.T) {
	db := sqltest.Postgres(t)
	ctx := t.Context()
	require.NoError(t, db.CreateAuditLog(ctx, auditRow("old")))
	require.NoError(t, db.CreateAuditLog(ctx, auditRow("linked")))

	// Hold the chain's lock so the linker after the next commit times out.
	conn, err := db.DB().Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `SELECT pg_advisory_lock(x'47484155444954'::bigint)`)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = db.InTx(short, func(ctx context.Context, tx store.Tx) error {
		return tx.CreateAuditLog(ctx, auditRow("waiting"))
	})
	cancel()
	require.NoError(t, err, "the change itself committed")
	_, err = conn.ExecContext(ctx, `SELECT pg_advisory_unlock(x'47484155444954'::bigint)`)
	require.NoError(t, err)

	var seq int64
	require.NoError(t, db.DB().QueryRowContext(ctx, `SELECT seq FROM audit_logs WHERE action = 'waiting'`).Scan(&seq))
	require.Zero(t, seq, "still waiting to be linked")
	_, err = db.DB().ExecContext(ctx, `UPDATE audit_logs SET action = 'forged' WHERE action = 'waiting'`)
	require.ErrorContains(t, err, "append-only", "an unlinked row cannot be edited")
	_, err = db.DB().ExecContext(ctx, `UPDATE audit_logs SET seq = 99, hash = 'x' WHERE action = 'linked'`)
	require.ErrorContains(t, err, "append-only", "a linked row cannot be relinked")
	n, err := db.PruneAuditLogs(ctx, 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the old row is pruned, the unlinked one (seq 0) never")

	linked, err := db.LinkAuditLogs(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, linked)
	rows, err := db.ListAuditLogsBySeq(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, "waiting", rows[1].Action)
	require.EqualValues(t, 3, rows[1].Seq)
	require.Equal(t, rows[0].Hash, rows[1].PrevHash)
	rep, err := audit.Verify(ctx, db, 0)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep.Break)
	require.EqualValues(t, 2, rep.Checked)
}

// Transactions that commit audit rows while a link run is under way share
// the next run instead of linking one by one: here the chain's lock is held
// while twenty writers commit, so the first run waits and the others queue
// behind it; once the lock is free, every row is linked (each writer's
// InTx returns only then) by a few linking transactions, not twenty.
func TestConcurrentAuditLinksAreShared(t *testing.T) {
	db := sqltest.Postgres(t)
	ctx := t.Context()
	conn, err := db.DB().Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `SELECT pg_advisory_lock(x'47484155444954'::bigint)`)
	require.NoError(t, err)

	const writers = 20
	before := db.Statements()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			errs <- db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				return tx.CreateAuditLog(ctx, auditRow("shared"))
			})
		})
	}
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRowContext(ctx, `SELECT count(*) FROM audit_logs WHERE action = 'shared' AND seq = 0`).Scan(&n)
		return err == nil && n == writers
	}, 10*time.Second, 5*time.Millisecond, "every writer committed")
	_, err = conn.ExecContext(ctx, `SELECT pg_advisory_unlock(x'47484155444954'::bigint)`)
	require.NoError(t, err)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	var unlinked int
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT count(*) FROM audit_logs WHERE seq = 0`).Scan(&unlinked))
	require.Zero(t, unlinked, "every writer's rows were linked before its InTx returned")
	// Each writer: BEGIN, INSERT, COMMIT. Each link run: BEGIN, the lock,
	// the pending rows, the head, the UPDATE, COMMIT. One by one, twenty
	// runs would be 120 statements; shared, the blocked run and the one
	// after it (a third at most, for a writer that joined late).
	linking := db.Statements() - before - 3*writers
	require.LessOrEqual(t, linking, uint64(3*6), "statements spent linking")
	rep, err := audit.Verify(ctx, db, 0)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep.Break)
}
