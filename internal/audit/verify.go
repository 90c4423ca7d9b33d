package audit

import (
	"context"
	"fmt"

	"github.com/gatehouse-auth/gatehouse"
)

// ChainReader reads the chain a page at a time (the SQL store).
type ChainReader interface {
	ListAuditLogsBySeq(ctx context.Context, afterSeq int64, limit int) ([]gatehouse.AuditLog, error)
}

// DefaultPageSize is how many rows Verify reads per query.
const DefaultPageSize = 1000

// Report is what Verify found.
type Report struct {
	// Checked counts the chained rows whose hash and link were checked.
	Checked int64
	// Unchained counts the rows before the chain's first hashed row:
	// written before the chain existed (migration 00004), so not checked.
	Unchained int64
	// FirstSeq and LastSeq bound the chained rows checked (0 when none).
	FirstSeq, LastSeq int64
	// Anchor is the first chained row's prev_hash, trusted as it stands:
	// "" when the chain starts at its beginning, the hash of the last
	// pruned row otherwise.
	Anchor string
	// Head is the last row's hash; writing it down somewhere else lets a
	// later Verify show the rows up to it were not rewritten since.
	Head string
	// Break is the first broken link; nil when the chain is whole.
	Break *Break
}

// OK reports whether the chain is unbroken.
func (r Report) OK() bool { return r.Break == nil }

// Break is a link that does not hold.
type Break struct {
	Seq     int64
	ID      string
	Problem string
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d (id %s): %s", b.Seq, b.ID, b.Problem)
}

// Verify walks the whole chain in seq order, pageSize rows at a time (so
// memory stays bounded whatever the table's size; ≤ 0 means
// DefaultPageSize), and stops at the first row whose seq does not follow
// the previous one, whose prev_hash is not the previous row's hash, or
// whose hash does not match its contents. The first chained row's
// prev_hash is the trusted anchor: after pruning, the rows before it are
// gone. The error is for failing reads; a broken chain is Report.Break.
func Verify(ctx context.Context, st ChainReader, pageSize int) (Report, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	var (
		rep   Report
		after int64
		prev  *gatehouse.AuditLog // the last row checked, a copy
	)
	for {
		page, err := st.ListAuditLogsBySeq(ctx, after, pageSize)
		if err != nil {
			return rep, fmt.Errorf("verify audit chain: %w", err)
		}
		for i := range page {
			l := &page[i]
			if prev == nil && l.Hash == "" {
				rep.Unchained++
				continue
			}
			if problem := checkLink(prev, l); problem != "" {
				rep.Break = &Break{Seq: l.Seq, ID: l.ID, Problem: problem}
				return rep, nil
			}
			if prev == nil {
				rep.FirstSeq, rep.Anchor = l.Seq, l.PrevHash
			}
			rep.Checked++
			rep.LastSeq, rep.Head = l.Seq, l.Hash
			last := *l
			prev = &last
		}
		if len(page) < pageSize {
			return rep, nil
		}
		after = page[len(page)-1].Seq
	}
}

// checkLink says what is wrong with l following prev ("" when nothing);
// prev is nil for the first chained row.
func checkLink(prev, l *gatehouse.AuditLog) string {
	if prev != nil {
		if l.Seq != prev.Seq+1 {
			return fmt.Sprintf("seq %d follows seq %d: rows are missing", l.Seq, prev.Seq)
		}
		if l.PrevHash != prev.Hash {
			return fmt.Sprintf("prev_hash %s is not the hash %s of seq %d", short(l.PrevHash), short(prev.Hash), prev.Seq)
		}
	}
	want, err := l.ChainHash()
	if err != nil {
		return err.Error()
	}
	if want != l.Hash {
		return fmt.Sprintf("stored hash %s does not match the row's contents (%s): the row was changed", short(l.Hash), short(want))
	}
	return ""
}

func short(h string) string {
	if h == "" {
		return `""`
	}
	return h[:min(len(h), 16)] + "…"
}
