package audit

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
)

// PruneArgs is the periodic job that exports audit rows older than the
// retention and then deletes them.
type PruneArgs struct{}

// Kind implements river.JobArgs.
func (PruneArgs) Kind() string { return "audit.prune" }

// InsertOpts puts pruning on the maintenance queue, one at a time.
func (PruneArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
}

// PrunePeriodic schedules pruning hourly (and once at start).
func PrunePeriodic() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return PruneArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

// PruneStore is what pruning needs from the database.
type PruneStore interface {
	ChainReader
	PruneAuditLogs(ctx context.Context, throughSeq int64) (int64, error)
}

// DefaultPruneBatch is the most rows one run exports and deletes; the next
// run goes on where it stopped.
const DefaultPruneBatch = 100_000

// PruneWorker runs PruneArgs.
type PruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	Store PruneStore
	// Dir receives the export files (created 0700 when missing).
	Dir string
	// Retention is how long rows are kept; 0 or less keeps them forever.
	Retention time.Duration
	// Batch caps the rows per run; 0 means DefaultPruneBatch.
	Batch  int
	Now    func() time.Time
	Logger *slog.Logger
}

// Timeout gives a large batch time to be written and deleted.
func (w *PruneWorker) Timeout(*river.Job[PruneArgs]) time.Duration { return 15 * time.Minute }

// Work prunes once.
func (w *PruneWorker) Work(ctx context.Context, _ *river.Job[PruneArgs]) error {
	res, err := w.Prune(ctx)
	if err != nil {
		return err
	}
	if w.Logger != nil && res.Rows > 0 {
		w.Logger.InfoContext(ctx, "audit rows exported and pruned", "rows", res.Rows, "through_seq", res.ThroughSeq, "file", res.File)
	}
	return nil
}

// PruneResult is what one run did.
type PruneResult struct {
	// File is the export written ("" when nothing was old enough).
	File string
	// Rows is how many rows were exported and deleted.
	Rows int64
	// ThroughSeq is the last seq deleted.
	ThroughSeq int64
}

// Prune exports the rows created before now - Retention to a gzip JSON
// Lines file in Dir, fsyncs it, and only then deletes exactly those rows.
// It takes rows from the front of the chain in seq order and stops at the
// first one that is not old enough (or at Batch rows), so what remains is
// always an unbroken tail that Verify checks from its first row. The file
// is named by the seq range it holds and written under a temporary name
// first: a run that fails after exporting leaves a complete file, and the
// next run writes the same rows to the same name.
func (w *PruneWorker) Prune(ctx context.Context) (PruneResult, error) {
	if w.Retention <= 0 {
		return PruneResult{}, nil
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	cutoff := now().UTC().Add(-w.Retention)
	batch := w.Batch
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	if err := os.MkdirAll(w.Dir, 0o700); err != nil {
		return PruneResult{}, fmt.Errorf("audit prune: %w", err)
	}
	tmp, err := os.CreateTemp(w.Dir, ".audit-export-*.tmp")
	if err != nil {
		return PruneResult{}, fmt.Errorf("audit prune: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone already once renamed
	defer tmp.Close()

	first, last, n, err := w.export(ctx, tmp, cutoff, batch)
	if err != nil || n == 0 {
		return PruneResult{}, err
	}
	if err := tmp.Sync(); err != nil {
		return PruneResult{}, fmt.Errorf("audit prune: sync export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return PruneResult{}, fmt.Errorf("audit prune: close export: %w", err)
	}
	name := filepath.Join(w.Dir, fmt.Sprintf("audit-%012d-%012d.jsonl.gz", first, last))
	if err := os.Rename(tmp.Name(), name); err != nil {
		return PruneResult{}, fmt.Errorf("audit prune: %w", err)
	}
	if err := syncDir(w.Dir); err != nil {
		return PruneResult{}, err
	}
	deleted, err := w.Store.PruneAuditLogs(ctx, last)
	if err != nil {
		return PruneResult{}, fmt.Errorf("audit prune: exported to %s, then: %w", name, err)
	}
	return PruneResult{File: name, Rows: deleted, ThroughSeq: last}, nil
}

// export writes the prunable rows to f and returns their seq range and
// count.
func (w *PruneWorker) export(ctx context.Context, f *os.File, cutoff time.Time, batch int) (first, last, n int64, err error) {
	zw := gzip.NewWriter(f)
	enc := json.NewEncoder(zw)
	var after int64
	for n < int64(batch) {
		page, err := w.Store.ListAuditLogsBySeq(ctx, after, min(DefaultPageSize, batch-int(n)))
		if err != nil {
			return 0, 0, 0, fmt.Errorf("audit prune: %w", err)
		}
		for _, l := range page {
			if !l.CreatedAt.Before(cutoff) {
				return first, last, n, closeGzip(zw, n)
			}
			if err := enc.Encode(exportRowOf(l)); err != nil {
				return 0, 0, 0, fmt.Errorf("audit prune: write export: %w", err)
			}
			if n == 0 {
				first = l.Seq
			}
			last, n = l.Seq, n+1
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].Seq
	}
	return first, last, n, closeGzip(zw, n)
}

func closeGzip(zw *gzip.Writer, n int64) error {
	if err := zw.Close(); err != nil && n > 0 {
		return fmt.Errorf("audit prune: write export: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit prune: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("audit prune: sync %s: %w", dir, err)
	}
	return nil
}

// ExportRow is one line of an export file: the row with its chain fields,
// so an export can be checked against the hashes it carries.
type ExportRow struct {
	Seq       int64          `json:"seq"`
	ID        string         `json:"id"`
	ActorID   string         `json:"actor_id,omitempty"`
	UserID    string         `json:"user_id,omitempty"`
	Action    string         `json:"action"`
	Resource  string         `json:"resource,omitempty"`
	IPAddress string         `json:"ip_address,omitempty"`
	UserAgent string         `json:"user_agent,omitempty"`
	Metadata  map[string]any `json:"metadata"`
	RiskScore int            `json:"risk_score"`
	CreatedAt time.Time      `json:"created_at"`
	PrevHash  string         `json:"prev_hash"`
	Hash      string         `json:"hash"`
}

func exportRowOf(l gatehouse.AuditLog) ExportRow {
	return ExportRow{
		Seq: l.Seq, ID: l.ID, ActorID: l.ActorID, UserID: l.UserID, Action: l.Action, Resource: l.Resource,
		IPAddress: l.IPAddress, UserAgent: l.UserAgent, Metadata: l.Metadata, RiskScore: l.RiskScore,
		CreatedAt: l.CreatedAt.UTC(), PrevHash: l.PrevHash, Hash: l.Hash,
	}
}
