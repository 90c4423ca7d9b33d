package audit_test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// readExport decodes an export file.
func readExport(t *testing.T, path string) []audit.ExportRow {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	var rows []audit.ExportRow
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var r audit.ExportRow
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		rows = append(rows, r)
	}
	require.NoError(t, sc.Err())
	return rows
}

// TestPruneExportsThenDeletes: rows older than the retention are written
// to a gzip JSON Lines file, then deleted, and what remains still
// verifies, anchored at the last exported row's hash.
func TestPruneExportsThenDeletes(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			record(t, db, 6) // t0, t0+1h, ... t0+5h
			before, err := db.ListAuditLogsBySeq(ctx, 0, 10)
			require.NoError(t, err)
			dir := filepath.Join(t.TempDir(), "audit-export")
			now := t0.Add(24*time.Hour + 150*time.Minute) // cutoff t0+2h30m
			w := &audit.PruneWorker{Store: db, Dir: dir, Retention: 24 * time.Hour, Now: func() time.Time { return now }}

			res, err := w.Prune(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(3), res.Rows)
			require.Equal(t, int64(3), res.ThroughSeq)
			require.Equal(t, filepath.Join(dir, "audit-000000000001-000000000003.jsonl.gz"), res.File)
			exported := readExport(t, res.File)
			require.Len(t, exported, 3)
			for i, r := range exported {
				l := before[i]
				require.Equal(t, l.Seq, r.Seq)
				require.Equal(t, l.ID, r.ID)
				require.Equal(t, l.Hash, r.Hash)
				require.Equal(t, l.PrevHash, r.PrevHash)
				require.Equal(t, l.Metadata, r.Metadata)
				require.True(t, l.CreatedAt.Equal(r.CreatedAt))
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file is left behind")

			rest, err := db.ListAuditLogsBySeq(ctx, 0, 10)
			require.NoError(t, err)
			require.Equal(t, before[3:], rest)
			rep := verify(t, db, 2)
			require.True(t, rep.OK(), "%v", rep.Break)
			require.Equal(t, int64(4), rep.FirstSeq)
			require.Equal(t, before[2].Hash, rep.Anchor)

			// Nothing more is old enough.
			res, err = w.Prune(ctx)
			require.NoError(t, err)
			require.Zero(t, res.Rows)
			require.Empty(t, res.File)

			// A small batch takes the front of the chain a run at a time.
			now = now.Add(10 * time.Hour)
			w.Batch = 2
			res, err = w.Prune(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(2), res.Rows)
			require.Equal(t, int64(5), res.ThroughSeq)
			require.True(t, verify(t, db, 0).OK())
		})
	}
}

func TestPruneOffKeepsEverything(t *testing.T) {
	db := sqltest.SQLite(t)
	record(t, db, 3)
	w := &audit.PruneWorker{Store: db, Dir: t.TempDir(), Now: func() time.Time { return t0.Add(1000 * time.Hour) }}
	res, err := w.Prune(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Rows)
	require.Equal(t, int64(3), verify(t, db, 0).Checked)
}

// The link job links rows a process left unlinked (on PostgreSQL; SQLite
// links as it writes, so there is nothing to do).
func TestLinkWorker(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			db := e.Open(t)
			ctx := t.Context()
			record(t, db, 2)
			if e.Name == "postgres" {
				// As a process that died after committing leaves it.
				_, err := db.DB().ExecContext(ctx, `ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only`)
				require.NoError(t, err)
				_, err = db.DB().ExecContext(ctx, `UPDATE audit_logs SET seq = 0, prev_hash = '', hash = '' WHERE seq = 2`)
				require.NoError(t, err)
				_, err = db.DB().ExecContext(ctx, `ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only`)
				require.NoError(t, err)
				require.EqualValues(t, 1, verify(t, db, 0).Checked)
			}
			require.NoError(t, (&audit.LinkWorker{Store: db}).Work(ctx, nil))
			require.EqualValues(t, 2, verify(t, db, 0).Checked)
		})
	}
}
