package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- webhooks ---

var _ store.Webhooks = (*queries)(nil)

const webhookColumns = `id, user_id, url, events, description, active, secret_enc, all_users, failing_since, created_at, updated_at`

// CreateWebhook inserts w; nil Events are stored as []. ErrConflict when
// the id exists or the owner does not (foreign key).
func (q *queries) CreateWebhook(ctx context.Context, w gatehouse.Webhook) error {
	events, err := encodeStrings(w.Events)
	if err != nil {
		return fmt.Errorf("create webhook: encode events: %w", err)
	}
	_, err = q.exec(ctx,
		`INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.UserID, w.URL, events, w.Description, w.Active, w.SecretEnc, w.AllUsers,
		nullTimeArg(q.dialect, w.FailingSince), timeArg(q.dialect, w.CreatedAt), timeArg(q.dialect, w.UpdatedAt))
	return translate("create webhook", err)
}

// GetWebhook returns one webhook. ErrNotFound when there is none.
func (q *queries) GetWebhook(ctx context.Context, id string) (gatehouse.Webhook, error) {
	w, err := scanWebhook(q.queryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	if err != nil {
		return gatehouse.Webhook{}, translate(fmt.Sprintf("get webhook %q", id), err)
	}
	return w, nil
}

// ListWebhooks returns a page of the user's webhooks in id order.
func (q *queries) ListWebhooks(ctx context.Context, userID, after string, limit int) ([]gatehouse.Webhook, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list webhooks: limit must be at least 1, got %d", limit)
	}
	return q.listWebhooks(ctx, "list webhooks",
		`SELECT `+webhookColumns+` FROM webhooks WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?`, userID, after, limit)
}

// ListSubscribers returns the active webhooks of userID and every active
// all-users webhook, in id order. It runs for every event, so each half
// reads its own index: SQLite uses neither for "user_id = ? OR all_users",
// and matches its partial index only by the literal "all_users = 1".
func (q *queries) ListSubscribers(ctx context.Context, userID string) ([]gatehouse.Webhook, error) {
	allUsers := "all_users = 1"
	if q.dialect == store.Postgres {
		allUsers = "all_users"
	}
	return q.listWebhooks(ctx, "list webhook subscribers",
		`SELECT `+webhookColumns+` FROM webhooks WHERE active AND user_id = ?
		 UNION ALL
		 SELECT `+webhookColumns+` FROM webhooks WHERE active AND `+allUsers+` AND user_id <> ?
		 ORDER BY id`, userID, userID)
}

func (q *queries) listWebhooks(ctx context.Context, op, query string, args ...any) ([]gatehouse.Webhook, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, translate(op, err)
	}
	out, err := collect(rows, scanWebhook)
	return out, translate(op, err)
}

// collect scans every row with scan and closes rows; the slice is empty,
// not nil, when there are none.
func collect[T any](rows *sql.Rows, scan func(row) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanWebhook(r row) (gatehouse.Webhook, error) {
	var (
		w                         gatehouse.Webhook
		events                    []byte
		failing, created, updated timeScanner
	)
	if err := r.Scan(&w.ID, &w.UserID, &w.URL, &events, &w.Description, &w.Active, &w.SecretEnc, &w.AllUsers,
		&failing, &created, &updated); err != nil {
		return gatehouse.Webhook{}, err
	}
	var err error
	if w.Events, err = decodeStrings(events); err != nil {
		return gatehouse.Webhook{}, fmt.Errorf("decode events of webhook %q: %w", w.ID, err)
	}
	if w.Events == nil {
		w.Events = []string{}
	}
	w.FailingSince, w.CreatedAt, w.UpdatedAt = failing.ptr(), created.Time, updated.Time
	return w, nil
}

// UpdateWebhook writes the fields a user may change. ErrNotFound.
func (q *queries) UpdateWebhook(ctx context.Context, w gatehouse.Webhook) error {
	op := fmt.Sprintf("update webhook %q", w.ID)
	events, err := encodeStrings(w.Events)
	if err != nil {
		return fmt.Errorf("%s: encode events: %w", op, err)
	}
	res, err := q.exec(ctx,
		`UPDATE webhooks SET url = ?, events = ?, description = ?, active = ?, all_users = ?, updated_at = ? WHERE id = ?`,
		w.URL, events, w.Description, w.Active, w.AllUsers, timeArg(q.dialect, w.UpdatedAt), w.ID)
	return requireOneRow(op, res, err)
}

// DeleteWebhook deletes the webhook; deliveries and attempts cascade.
func (q *queries) DeleteWebhook(ctx context.Context, id string) error {
	res, err := q.exec(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	return requireOneRow(fmt.Sprintf("delete webhook %q", id), res, err)
}

// MarkWebhookFailing keeps the first failure time of the current run.
func (q *queries) MarkWebhookFailing(ctx context.Context, id string, now time.Time) (time.Time, error) {
	var since timeScanner
	err := q.queryRow(ctx,
		`UPDATE webhooks SET failing_since = COALESCE(failing_since, ?) WHERE id = ? RETURNING failing_since`,
		timeArg(q.dialect, now), id).Scan(&since)
	if err != nil {
		return time.Time{}, translate(fmt.Sprintf("mark webhook %q failing", id), err)
	}
	return since.Time, nil
}

// ClearWebhookFailing ends the run of failures.
func (q *queries) ClearWebhookFailing(ctx context.Context, id string) error {
	_, err := q.exec(ctx, `UPDATE webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`, id)
	return translate(fmt.Sprintf("clear webhook %q failing", id), err)
}

// DisableWebhook deactivates an active webhook, once.
func (q *queries) DisableWebhook(ctx context.Context, id string, now time.Time) (bool, error) {
	op := fmt.Sprintf("disable webhook %q", id)
	res, err := q.exec(ctx,
		`UPDATE webhooks SET active = ?, updated_at = ? WHERE id = ? AND active`, false, timeArg(q.dialect, now), id)
	n, err := rowsAffected(op, res, err)
	if err != nil || n > 0 {
		return n > 0, err
	}
	if _, err := q.GetWebhook(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}

// --- deliveries ---

const deliveryColumns = `id, webhook_id, event_id, event_type, payload, status, attempts, response_status, last_error, created_at, next_attempt_at, delivered_at`

// CreateWebhookDelivery inserts d. ErrConflict when the id exists or the
// webhook does not.
func (q *queries) CreateWebhookDelivery(ctx context.Context, d gatehouse.WebhookDelivery) error {
	_, err := q.exec(ctx,
		`INSERT INTO webhook_deliveries (`+deliveryColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.WebhookID, d.EventID, d.EventType, string(d.Payload), d.Status, d.Attempts, nullInt(d.ResponseStatus),
		d.LastError, timeArg(q.dialect, d.CreatedAt), nullTimeArg(q.dialect, d.NextAttemptAt), nullTimeArg(q.dialect, d.DeliveredAt))
	return translate("create webhook delivery", err)
}

// GetWebhookDelivery returns one delivery with its attempts.
func (q *queries) GetWebhookDelivery(ctx context.Context, id string) (gatehouse.WebhookDelivery, error) {
	op := fmt.Sprintf("get webhook delivery %q", id)
	d, err := scanDelivery(q.queryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = ?`, id))
	if err != nil {
		return gatehouse.WebhookDelivery{}, translate(op, err)
	}
	list := []gatehouse.WebhookDelivery{d}
	if err := q.fillHistory(ctx, list); err != nil {
		return gatehouse.WebhookDelivery{}, translate(op, err)
	}
	return list[0], nil
}

// ListWebhookDeliveries returns a page of deliveries, newest first, with
// their attempts: two statements whatever the page size.
func (q *queries) ListWebhookDeliveries(ctx context.Context, webhookID, before string, limit int) ([]gatehouse.WebhookDelivery, error) {
	const op = "list webhook deliveries"
	if limit < 1 {
		return nil, fmt.Errorf("%s: limit must be at least 1, got %d", op, limit)
	}
	query, args := `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE webhook_id = ?`, []any{webhookID}
	if before != "" {
		query, args = query+` AND id < ?`, append(args, before)
	}
	rows, err := q.query(ctx, query+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, translate(op, err)
	}
	out, err := collect(rows, scanDelivery) // closed before the next statement: SQLite has one connection
	if err != nil {
		return nil, translate(op, err)
	}
	return out, translate(op, q.fillHistory(ctx, out))
}

func scanDelivery(r row) (gatehouse.WebhookDelivery, error) {
	var (
		d                        gatehouse.WebhookDelivery
		payload                  string
		status                   sql.NullInt64
		created, next, delivered timeScanner
	)
	if err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &payload, &d.Status, &d.Attempts, &status,
		&d.LastError, &created, &next, &delivered); err != nil {
		return gatehouse.WebhookDelivery{}, err
	}
	d.Payload, d.ResponseStatus = []byte(payload), int(status.Int64)
	d.CreatedAt, d.NextAttemptAt, d.DeliveredAt = created.Time, next.ptr(), delivered.ptr()
	return d, nil
}

// fillHistory reads the attempts of every delivery in ds in one statement.
func (q *queries) fillHistory(ctx context.Context, ds []gatehouse.WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	at := make(map[string]int, len(ds))
	args := make([]any, len(ds))
	for i, d := range ds {
		at[d.ID], args[i] = i, d.ID
		ds[i].History = []gatehouse.WebhookAttempt{}
	}
	rows, err := q.query(ctx,
		`SELECT delivery_id, attempt, started_at, duration_ms, response_status, error FROM webhook_attempts
		 WHERE delivery_id IN (?`+strings.Repeat(", ?", len(ds)-1)+`) ORDER BY delivery_id, attempt`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a       gatehouse.WebhookAttempt
			ms      int64
			status  sql.NullInt64
			started timeScanner
		)
		if err := rows.Scan(&a.DeliveryID, &a.Attempt, &started, &ms, &status, &a.Error); err != nil {
			return err
		}
		a.StartedAt, a.Duration, a.ResponseStatus = started.Time, time.Duration(ms)*time.Millisecond, int(status.Int64)
		i := at[a.DeliveryID]
		ds[i].History = append(ds[i].History, a)
	}
	return rows.Err()
}

// UpdateWebhookDelivery writes the delivery's progress. ErrNotFound.
func (q *queries) UpdateWebhookDelivery(ctx context.Context, d gatehouse.WebhookDelivery) error {
	res, err := q.exec(ctx,
		`UPDATE webhook_deliveries SET status = ?, attempts = ?, response_status = ?, last_error = ?, next_attempt_at = ?, delivered_at = ? WHERE id = ?`,
		d.Status, d.Attempts, nullInt(d.ResponseStatus), d.LastError,
		nullTimeArg(q.dialect, d.NextAttemptAt), nullTimeArg(q.dialect, d.DeliveredAt), d.ID)
	return requireOneRow(fmt.Sprintf("update webhook delivery %q", d.ID), res, err)
}

// CreateWebhookAttempt inserts a. ErrConflict when the attempt number is
// taken or the delivery does not exist.
func (q *queries) CreateWebhookAttempt(ctx context.Context, a gatehouse.WebhookAttempt) error {
	_, err := q.exec(ctx,
		`INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, response_status, error) VALUES (?, ?, ?, ?, ?, ?)`,
		a.DeliveryID, a.Attempt, timeArg(q.dialect, a.StartedAt), a.Duration.Milliseconds(), nullInt(a.ResponseStatus), a.Error)
	return translate("create webhook attempt", err)
}

// nullInt stores 0 as NULL (no HTTP status).
func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

// DeleteWebhookDeliveriesBefore deletes finished (succeeded or failed)
// webhook deliveries created before cutoff, with their attempts, a batch
// at a time so no transaction grows large, and returns how many went.
// Pending ones stay: a job may still be at them.
func (d *DB) DeleteWebhookDeliveriesBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	const batch = 1000
	var total int64
	for {
		res, err := d.exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE created_at < ? AND status <> ? LIMIT ?)`,
			timeArg(d.dialect, cutoff), gatehouse.DeliveryPending, batch)
		n, err := rowsAffected("delete old webhook deliveries", res, err)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}
