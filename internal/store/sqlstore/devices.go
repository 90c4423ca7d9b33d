package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- devices ---

const deviceColumns = `id, user_id, fingerprint, name, user_agent, trusted, first_seen_at, last_seen_at, last_ip`

// UpsertDevice inserts d or, on the user's existing fingerprint, records
// the sighting, in one statement (ON CONFLICT ... DO UPDATE ... RETURNING,
// on both engines), so concurrent sign-ins from one new device make one
// row. The row came from this call exactly when its id is d.ID.
func (q *queries) UpsertDevice(ctx context.Context, d gatehouse.Device) (gatehouse.Device, bool, error) {
	got, err := scanDevice(q.queryRow(ctx,
		`INSERT INTO devices (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) `+
			`ON CONFLICT (user_id, fingerprint) DO UPDATE SET last_seen_at = excluded.last_seen_at, `+
			`last_ip = excluded.last_ip, user_agent = excluded.user_agent RETURNING `+deviceColumns,
		d.ID, d.UserID, d.Fingerprint, d.Name, d.UserAgent, d.Trusted,
		timeArg(q.dialect, d.FirstSeenAt), timeArg(q.dialect, d.LastSeenAt), d.LastIP))
	if isForeignKeyViolation(err) {
		return gatehouse.Device{}, false, fmt.Errorf("upsert device: user %q: %w", d.UserID, store.ErrNotFound)
	}
	if err != nil {
		return gatehouse.Device{}, false, translate("upsert device", err)
	}
	return got, got.ID == d.ID, nil
}

// GetDevice returns one device. ErrNotFound.
func (q *queries) GetDevice(ctx context.Context, id string) (gatehouse.Device, error) {
	d, err := scanDevice(q.queryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = ?`, id))
	return d, translate(fmt.Sprintf("get device %q", id), err)
}

// GetDeviceByFingerprint returns the user's device with the fingerprint.
// ErrNotFound.
func (q *queries) GetDeviceByFingerprint(ctx context.Context, userID, fingerprint string) (gatehouse.Device, error) {
	d, err := scanDevice(q.queryRow(ctx,
		`SELECT `+deviceColumns+` FROM devices WHERE user_id = ? AND fingerprint = ?`, userID, fingerprint))
	return d, translate("get device by fingerprint", err)
}

// ListDevices returns the user's devices, most recently seen first.
func (q *queries) ListDevices(ctx context.Context, userID string) ([]gatehouse.Device, error) {
	const op = "list devices"
	rows, err := q.query(ctx,
		`SELECT `+deviceColumns+` FROM devices WHERE user_id = ? ORDER BY last_seen_at DESC, id DESC`, userID)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	out := make([]gatehouse.Device, 0, 4)
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, translate(op, err)
		}
		out = append(out, d)
	}
	return out, translate(op, rows.Err())
}

// TouchDevice sets LastSeenAt, and LastIP unless ip is empty. ErrNotFound.
func (q *queries) TouchDevice(ctx context.Context, id string, now time.Time, ip string) error {
	res, err := q.exec(ctx, `UPDATE devices SET last_seen_at = ?, last_ip = COALESCE(?, last_ip) WHERE id = ?`,
		timeArg(q.dialect, now), nullString(ip), id)
	return requireOneRow(fmt.Sprintf("touch device %q", id), res, err)
}

// SetDeviceTrusted sets Trusted. ErrNotFound.
func (q *queries) SetDeviceTrusted(ctx context.Context, id string, trusted bool) error {
	res, err := q.exec(ctx, `UPDATE devices SET trusted = ? WHERE id = ?`, trusted, id)
	return requireOneRow(fmt.Sprintf("set device %q trusted", id), res, err)
}

// DeleteDevice removes the device. ErrNotFound.
func (q *queries) DeleteDevice(ctx context.Context, id string) error {
	res, err := q.exec(ctx, `DELETE FROM devices WHERE id = ?`, id)
	return requireOneRow(fmt.Sprintf("delete device %q", id), res, err)
}

// DeleteStaleDevices removes devices last seen before cutoff and returns
// them (ID and UserID only), in id order.
func (q *queries) DeleteStaleDevices(ctx context.Context, cutoff time.Time) ([]gatehouse.Device, error) {
	const op = "delete stale devices"
	rows, err := q.query(ctx, `DELETE FROM devices WHERE last_seen_at < ? RETURNING id, user_id`, timeArg(q.dialect, cutoff))
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	out := make([]gatehouse.Device, 0, 4)
	for rows.Next() {
		var d gatehouse.Device
		if err := rows.Scan(&d.ID, &d.UserID); err != nil {
			return nil, translate(op, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	slices.SortFunc(out, func(a, b gatehouse.Device) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RevokeDeviceSessions revokes the device's unrevoked sessions and returns
// their ids, sorted.
func (q *queries) RevokeDeviceSessions(ctx context.Context, deviceID string, now time.Time) ([]string, error) {
	if deviceID == "" {
		return []string{}, nil
	}
	return q.returningIDs(ctx, "revoke device sessions",
		`UPDATE sessions SET revoked_at = ? WHERE device_ref = ? AND revoked_at IS NULL RETURNING id`,
		timeArg(q.dialect, now), deviceID)
}

// GetSessionDevice returns the session's device. ErrNotFound.
func (q *queries) GetSessionDevice(ctx context.Context, sessionID string) (gatehouse.Device, error) {
	d, err := scanDevice(q.queryRow(ctx, `SELECT `+prefixed("d.", deviceColumns)+
		` FROM sessions s JOIN devices d ON d.id = s.device_ref WHERE s.id = ?`, sessionID))
	return d, translate(fmt.Sprintf("get session %q device", sessionID), err)
}

// TouchSessionDevice is TouchDevice for the session's device, returning
// the device as touched, in one UPDATE ... RETURNING. ErrNotFound when the
// session has none (or does not exist).
func (q *queries) TouchSessionDevice(ctx context.Context, sessionID string, now time.Time, ip string) (gatehouse.Device, error) {
	d, err := scanDevice(q.queryRow(ctx, `UPDATE devices SET last_seen_at = ?, last_ip = COALESCE(?, last_ip) `+
		`WHERE id = (SELECT device_ref FROM sessions WHERE id = ?) RETURNING `+deviceColumns,
		timeArg(q.dialect, now), nullString(ip), sessionID))
	return d, translate(fmt.Sprintf("touch session %q device", sessionID), err)
}

// prefixed qualifies each of a comma-separated column list.
func prefixed(p, columns string) string {
	return p + strings.ReplaceAll(columns, ", ", ", "+p)
}

// SetSessionTrust sets the session's trust score. ErrNotFound.
func (q *queries) SetSessionTrust(ctx context.Context, sessionID string, score int) error {
	if err := checkTrustScore(score); err != nil {
		return fmt.Errorf("set session trust: %w", err)
	}
	res, err := q.exec(ctx, `UPDATE sessions SET trust_score = ? WHERE id = ?`, score, sessionID)
	return requireOneRow(fmt.Sprintf("set session %q trust", sessionID), res, err)
}

// checkTrustScore refuses a score outside 0..100.
func checkTrustScore(score int) error {
	if score < 0 || score > 100 {
		return fmt.Errorf("score %d is outside 0..100", score)
	}
	return nil
}

// GetLoginProfile returns the user's stored profile. ErrNotFound.
func (q *queries) GetLoginProfile(ctx context.Context, userID string) ([]byte, error) {
	var data []byte
	err := q.queryRow(ctx, `SELECT data FROM login_profiles WHERE user_id = ?`, userID).Scan(&data)
	return data, translate("get login profile", err)
}

// PutLoginProfile inserts or replaces the user's profile. ErrNotFound when
// the user does not exist.
func (q *queries) PutLoginProfile(ctx context.Context, userID string, data []byte, now time.Time) error {
	var probe map[string]any
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("put login profile: not a JSON object: %w", err)
	}
	if probe == nil { // "null" unmarshals into a map without error
		return errors.New("put login profile: not a JSON object: null")
	}
	_, err := q.exec(ctx,
		`INSERT INTO login_profiles (user_id, data, updated_at) VALUES (?, ?, ?) `+
			`ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
		userID, string(data), timeArg(q.dialect, now))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("put login profile: user %q: %w", userID, store.ErrNotFound)
	}
	return translate("put login profile", err)
}

func scanDevice(r row) (gatehouse.Device, error) {
	var (
		d           gatehouse.Device
		first, last timeScanner
	)
	if err := r.Scan(&d.ID, &d.UserID, &d.Fingerprint, &d.Name, &d.UserAgent, &d.Trusted, &first, &last, &d.LastIP); err != nil {
		return gatehouse.Device{}, err
	}
	d.FirstSeenAt, d.LastSeenAt = first.Time, last.Time
	return d, nil
}
