package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
// always an unbroken tail that Verify checks from its first row. It never
// takes the chain's head (the row with the highest seq), however old: the
// store links each new row to the head it finds in the table, so pruning
// every row would restart the chain at seq 1 with an empty anchor, and a
// truncated trail would verify as complete.
//
// The file is named by the seq range it holds and written under a
// temporary name first, then linked to its name, which never replaces an
// existing file: a run that fails after exporting leaves a complete file,
// and the next run, writing the same rows to the same name, accepts it
// when its rows are identical; a different file of that name fails the
// prune (ErrExportExists) and deletes nothing.
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
	defer func() { _ = os.Remove(tmp.Name()) }() // linked to its name, or given up
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
	if err := os.Link(tmp.Name(), name); errors.Is(err, fs.ErrExist) {
		same, err := sameExport(tmp.Name(), name)
		if err != nil {
			return PruneResult{}, fmt.Errorf("audit prune: compare with existing %s: %w", name, err)
		}
		if !same {
			return PruneResult{}, fmt.Errorf("audit prune: %w: %s holds other rows than seq %d to %d now hold; move it away to go on", ErrExportExists, name, first, last)
		}
	} else if err != nil {
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
// count. A row is written only once a later row is seen, so the chain's
// head is never exported (nor pruned).
func (w *PruneWorker) export(ctx context.Context, f *os.File, cutoff time.Time, batch int) (first, last, n int64, err error) {
	zw := gzip.NewWriter(f)
	enc := json.NewEncoder(zw)
	var (
		after   int64
		pending *gatehouse.AuditLog // old enough, written once it is not the head
	)
	for n < int64(batch) {
		// One row more than the batch needs, to see past the last one.
		page, err := w.Store.ListAuditLogsBySeq(ctx, after, min(DefaultPageSize, batch-int(n)+1))
		if err != nil {
			return 0, 0, 0, fmt.Errorf("audit prune: %w", err)
		}
		for i := range page {
			if pending != nil {
				if err := enc.Encode(exportRowOf(*pending)); err != nil {
					return 0, 0, 0, fmt.Errorf("audit prune: write export: %w", err)
				}
				if n == 0 {
					first = pending.Seq
				}
				last, n, pending = pending.Seq, n+1, nil
				if n == int64(batch) {
					return first, last, n, closeGzip(zw, n)
				}
			}
			if !page[i].CreatedAt.Before(cutoff) {
				return first, last, n, closeGzip(zw, n)
			}
			pending = &page[i]
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].Seq
	}
	return first, last, n, closeGzip(zw, n)
}

// ErrExportExists is returned by Prune when an export file of the name it
// needs already exists with different rows; nothing is deleted then.
var ErrExportExists = errors.New("a different export file of that name exists")

// sameExport reports whether the existing file holds the same rows as the
// export just written (their decompressed bytes are equal, however each
// was compressed). An existing file that is not readable gzip differs.
func sameExport(written, existing string) (bool, error) {
	fw, err := os.Open(written)
	if err != nil {
		return false, err
	}
	defer fw.Close()
	rw, err := gzip.NewReader(fw)
	if err != nil {
		return false, err
	}
	fe, err := os.Open(existing)
	if err != nil {
		return false, err
	}
	defer fe.Close()
	re, err := gzip.NewReader(fe)
	if err != nil {
		return false, nil
	}
	bufW, bufE := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		nw, errW := io.ReadFull(rw, bufW)
		ne, errE := io.ReadFull(re, bufE)
		if !bytes.Equal(bufW[:nw], bufE[:ne]) {
			return false, nil
		}
		endW := errors.Is(errW, io.EOF) || errors.Is(errW, io.ErrUnexpectedEOF)
		endE := errors.Is(errE, io.EOF) || errors.Is(errE, io.ErrUnexpectedEOF)
		switch {
		case errW != nil && !endW:
			return false, errW
		case errE != nil && !endE:
			return false, nil
		case endW || endE:
			return endW && endE, nil
		}
	}
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
