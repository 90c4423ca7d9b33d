package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// DefaultResealBatch is how many rows one transaction of Reseal covers.
const DefaultResealBatch = 100

// ResealOptions tune Reseal.
type ResealOptions struct {
	// Batch is how many rows one transaction covers (DefaultResealBatch
	// when 0).
	Batch int
	// CheckOnly opens every value and changes nothing: it counts what a
	// rotation would do, and what no key opens.
	CheckOnly bool
	// Progress, when set, hears the totals so far after each batch.
	Progress func(ResealStats)
}

// ResealStats counts what a pass over one column found and did.
type ResealStats struct {
	// Rows is how many rows were visited.
	Rows int
	// Values is how many sealed values they held.
	Values int
	// Current is how many were already sealed under the current key (a
	// rotation skips them without opening them; CheckOnly opens them).
	Current int
	// Resealed is how many a rotation sealed again under the current key;
	// with CheckOnly, how many it would (they open under an older key).
	Resealed int
	// Failed lists the ids of rows holding a value no key of the Box opens
	// (never the values). They are left as they are.
	Failed []string
}

// Reseal visits every row of col, in id order and batches, each batch in
// its own transaction, and seals each value under box's current key again
// when it is not already. Rows whose values no key opens are reported in
// Failed and left unchanged, so a run can be repeated (it is then quick:
// values already under the current key are skipped without decrypting).
// On PostgreSQL a batch's rows are locked (FOR UPDATE) between read and
// write, and on SQLite a write transaction excludes other writers, so a
// server changing a row at the same time cannot be overwritten.
func (d *DB) Reseal(ctx context.Context, col secret.Column, box *secret.Box, opts ResealOptions) (ResealStats, error) {
	batch := opts.Batch
	if batch <= 0 {
		batch = DefaultResealBatch
	}
	var (
		total ResealStats
		after any // the last id seen; nil before the first batch
	)
	for {
		var (
			got  ResealStats
			last any
			n    int
		)
		err := d.InTx(ctx, func(ctx context.Context, tx store.Tx) (err error) {
			got, last, n, err = d.resealBatch(ctx, tx, col, box, opts.CheckOnly, after, batch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("reseal %s: %w", col, err)
		}
		total.Rows += got.Rows
		total.Values += got.Values
		total.Current += got.Current
		total.Resealed += got.Resealed
		total.Failed = append(total.Failed, got.Failed...)
		if opts.Progress != nil && n > 0 {
			opts.Progress(total)
		}
		if n < batch {
			return total, nil
		}
		after = last
	}
}

// sealedRow is one row read by resealBatch.
type sealedRow struct {
	id     any      // as the driver returned it, to be passed back
	text   []string // id then the context columns, as text
	stored []byte
}

// resealBatch reads up to batch rows after the id after and re-seals them.
// It reports the batch's counts, the last id read and how many rows came.
func (d *DB) resealBatch(ctx context.Context, tx store.Tx, col secret.Column, box *secret.Box, checkOnly bool, after any, batch int) (ResealStats, any, int, error) {
	var st ResealStats
	rows, err := d.readSealedRows(ctx, tx, col, after, batch, !checkOnly)
	if err != nil || len(rows) == 0 {
		return st, nil, 0, err
	}
	value := "?"
	if col.JSON && d.dialect == store.SQLite {
		value = "jsonb(?)" // River keeps SQLite's binary JSON
	}
	update := rebind(d.dialect, "UPDATE "+col.Table+" SET "+col.Name+" = "+value+" WHERE "+col.ID+" = ?")
	for _, r := range rows {
		st.Rows++
		resealed, failed := 0, false
		out, err := col.Rewrite(r.stored, r.text, func(sealed, ad []byte) ([]byte, error) {
			st.Values++
			if checkOnly {
				if _, err := box.Open(sealed, ad); err != nil {
					failed = true
					return sealed, nil
				}
				if box.IsCurrent(sealed) {
					st.Current++
				} else {
					st.Resealed++
				}
				return sealed, nil
			}
			v, changed, err := box.Reseal(sealed, ad)
			switch {
			case errors.Is(err, secret.ErrOpen):
				failed = true
				return sealed, nil
			case err != nil:
				return nil, err
			case changed:
				resealed++
			default:
				st.Current++
			}
			return v, nil
		})
		if err != nil {
			return st, nil, 0, fmt.Errorf("row %s: %w", r.text[0], err)
		}
		if failed {
			st.Failed = append(st.Failed, r.text[0])
			continue // leave the whole row as it is
		}
		if resealed == 0 || checkOnly {
			continue
		}
		if _, err := tx.SQLTx().ExecContext(ctx, update, out, r.id); err != nil {
			return st, nil, 0, fmt.Errorf("row %s: %w", r.text[0], classify(err))
		}
		st.Resealed += resealed
	}
	return st, rows[len(rows)-1].id, len(rows), nil
}

// readSealedRows reads one page of col's rows after the id after (all from
// the start when nil), locking them on PostgreSQL when lock is set.
func (d *DB) readSealedRows(ctx context.Context, tx store.Tx, col secret.Column, after any, batch int, lock bool) ([]sealedRow, error) {
	var conds []string
	var args []any
	if col.Where != "" {
		conds = append(conds, "("+col.Where+")")
	}
	if after != nil {
		conds = append(conds, col.ID+" > ?")
		args = append(args, after)
	}
	value := col.Name
	if col.JSON && d.dialect == store.SQLite {
		value = "json(" + col.Name + ")"
	}
	q := "SELECT " + strings.Join(append(append([]string{col.ID}, col.Context...), value), ", ") + " FROM " + col.Table
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY %s LIMIT %d", col.ID, batch)
	if lock && d.dialect == store.Postgres {
		q += " FOR UPDATE"
	}
	rs, err := tx.SQLTx().QueryContext(ctx, rebind(d.dialect, q), args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rs.Close()
	var out []sealedRow
	for rs.Next() {
		r := sealedRow{text: make([]string, 1+len(col.Context))}
		dest := []any{&r.id}
		for i := range col.Context {
			dest = append(dest, &r.text[1+i])
		}
		dest = append(dest, &r.stored)
		if err := rs.Scan(dest...); err != nil {
			return nil, classify(err)
		}
		if b, ok := r.id.([]byte); ok {
			r.id = string(b) // the driver may reuse the buffer
		}
		r.text[0] = fmt.Sprint(r.id)
		out = append(out, r)
	}
	return out, classify(rs.Err())
}
