package audit_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// TestPruneKeepsChainHead: however old every row is, pruning leaves the
// row with the highest seq, so rows written afterwards go on from it (not
// from seq 1 with an empty anchor), Verify shows the trail was pruned, and
// the next export gets a file of its own.
func TestPruneKeepsChainHead(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			record(t, db, 3)
			before, err := db.ListAuditLogsBySeq(ctx, 0, 10)
			require.NoError(t, err)
			dir := t.TempDir()
			now := t0.Add(1000 * time.Hour) // every row is old enough
			w := &audit.PruneWorker{Store: db, Dir: dir, Retention: 24 * time.Hour, Now: func() time.Time { return now }}

			res, err := w.Prune(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(2), res.Rows)
			require.Equal(t, int64(2), res.ThroughSeq)
			require.Len(t, readExport(t, res.File), 2)
			rest, err := db.ListAuditLogsBySeq(ctx, 0, 10)
			require.NoError(t, err)
			require.Equal(t, before[2:], rest, "the head stays")

			// Only the head is left: nothing more to prune.
			again, err := w.Prune(ctx)
			require.NoError(t, err)
			require.Zero(t, again.Rows)

			record(t, db, 3)
			rest, err = db.ListAuditLogsBySeq(ctx, 0, 10)
			require.NoError(t, err)
			require.Len(t, rest, 4)
			require.Equal(t, int64(4), rest[1].Seq, "the chain goes on")
			require.Equal(t, before[2].Hash, rest[1].PrevHash)
			rep := verify(t, db, 0)
			require.True(t, rep.OK(), "%v", rep.Break)
			require.Equal(t, int64(3), rep.FirstSeq)
			require.Equal(t, before[1].Hash, rep.Anchor, "the anchor shows rows were pruned")

			res2, err := w.Prune(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(3), res2.Rows)
			require.Equal(t, filepath.Join(dir, "audit-000000000003-000000000005.jsonl.gz"), res2.File)
			require.Len(t, readExport(t, res.File), 2, "the first export is untouched")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 2)
		})
	}
}

// TestPruneNeverOverwritesExport: an export file already named like the
// one a run needs is kept as it is. Holding the same rows (a run that
// exported but failed to delete), even compressed differently, it is
// accepted and the rows are deleted; holding anything else, the prune
// fails with ErrExportExists and deletes nothing.
func TestPruneNeverOverwritesExport(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			record(t, db, 3)
			rows, err := db.ListAuditLogsBySeq(ctx, 0, 10)
			require.NoError(t, err)
			dir := t.TempDir()
			name := filepath.Join(dir, "audit-000000000001-000000000002.jsonl.gz")
			w := &audit.PruneWorker{Store: db, Dir: dir, Retention: 24 * time.Hour, Now: func() time.Time { return t0.Add(1000 * time.Hour) }}

			for _, other := range [][]byte{[]byte("not gzip at all"), gzipRows(t, rows[:1], gzip.BestSpeed)} {
				require.NoError(t, os.WriteFile(name, other, 0o600))
				_, err := w.Prune(ctx)
				require.ErrorIs(t, err, audit.ErrExportExists)
				require.ErrorContains(t, err, name)
				got, err := os.ReadFile(name)
				require.NoError(t, err)
				require.Equal(t, other, got, "the existing file is not replaced")
				left, err := db.ListAuditLogsBySeq(ctx, 0, 10)
				require.NoError(t, err)
				require.Len(t, left, 3, "nothing is deleted")
			}

			same := gzipRows(t, rows[:2], gzip.BestCompression)
			require.NoError(t, os.WriteFile(name, same, 0o600))
			res, err := w.Prune(ctx)
			require.NoError(t, err)
			require.Equal(t, name, res.File)
			require.Equal(t, int64(2), res.Rows)
			got, err := os.ReadFile(name)
			require.NoError(t, err)
			require.Equal(t, same, got)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file is left behind")
		})
	}
}

// gzipRows writes rows as an export file would hold them, at the given
// compression level.
func gzipRows(t *testing.T, rows []gatehouse.AuditLog, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	require.NoError(t, err)
	enc := json.NewEncoder(zw)
	for _, l := range rows {
		require.NoError(t, enc.Encode(audit.ExportRow{
			Seq: l.Seq, ID: l.ID, ActorID: l.ActorID, UserID: l.UserID, Action: l.Action, Resource: l.Resource,
			IPAddress: l.IPAddress, UserAgent: l.UserAgent, Metadata: l.Metadata, RiskScore: l.RiskScore,
			CreatedAt: l.CreatedAt.UTC(), PrevHash: l.PrevHash, Hash: l.Hash,
		}))
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}
