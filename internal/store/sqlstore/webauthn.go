package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- WebAuthn credentials ---

var _ store.WebAuthn = (*queries)(nil)

const webauthnColumns = `id, user_id, credential_id, public_key, attestation_type, aaguid, sign_count, transports, ` +
	`backup_eligible, backup_state, attachment, name, created_at, last_used_at`

// CreateWebAuthnCredential inserts c. ErrConflict when the id or credential
// id exists; ErrNotFound when the user does not.
func (q *queries) CreateWebAuthnCredential(ctx context.Context, c gatehouse.WebAuthnCredential) error {
	transports, err := encodeStrings(c.Transports)
	if err != nil {
		return fmt.Errorf("create webauthn credential: encode transports: %w", err)
	}
	_, err = q.exec(ctx,
		`INSERT INTO webauthn_credentials (`+webauthnColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.UserID, c.CredentialID, c.PublicKey, c.AttestationType, c.AAGUID, int64(c.SignCount), transports,
		c.BackupEligible, c.BackupState, c.Attachment, c.Name,
		timeArg(q.dialect, c.CreatedAt), nullTimeArg(q.dialect, c.LastUsedAt))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("create webauthn credential: user %q: %w", c.UserID, store.ErrNotFound)
	}
	return translate("create webauthn credential", err)
}

// ListWebAuthnCredentials returns the user's credentials in id (creation) order.
func (q *queries) ListWebAuthnCredentials(ctx context.Context, userID string) ([]gatehouse.WebAuthnCredential, error) {
	rows, err := q.query(ctx, `SELECT `+webauthnColumns+` FROM webauthn_credentials WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, translate("list webauthn credentials", err)
	}
	out, err := collect(rows, scanWebAuthnCredential)
	return out, translate("list webauthn credentials", err)
}

// CountWebAuthnCredentials counts the user's credentials.
func (q *queries) CountWebAuthnCredentials(ctx context.Context, userID string) (int, error) {
	var n int
	err := q.queryRow(ctx, `SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?`, userID).Scan(&n)
	return n, translate("count webauthn credentials", err)
}

// GetWebAuthnCredential returns the user's credential by our id.
func (q *queries) GetWebAuthnCredential(ctx context.Context, userID, id string) (gatehouse.WebAuthnCredential, error) {
	c, err := scanWebAuthnCredential(q.queryRow(ctx,
		`SELECT `+webauthnColumns+` FROM webauthn_credentials WHERE id = ? AND user_id = ?`, id, userID))
	return c, translate(fmt.Sprintf("get webauthn credential %q", id), err)
}

// GetWebAuthnCredentialByCredentialID finds a credential by the
// authenticator's credential id.
func (q *queries) GetWebAuthnCredentialByCredentialID(ctx context.Context, credentialID []byte) (gatehouse.WebAuthnCredential, error) {
	c, err := scanWebAuthnCredential(q.queryRow(ctx,
		`SELECT `+webauthnColumns+` FROM webauthn_credentials WHERE credential_id = ?`, credentialID))
	return c, translate("get webauthn credential by credential id", err)
}

// RenameWebAuthnCredential sets the name of the user's credential.
func (q *queries) RenameWebAuthnCredential(ctx context.Context, userID, id, name string) error {
	res, err := q.exec(ctx, `UPDATE webauthn_credentials SET name = ? WHERE id = ? AND user_id = ?`, name, id, userID)
	return requireOneRow(fmt.Sprintf("rename webauthn credential %q", id), res, err)
}

// DeleteWebAuthnCredential removes the user's credential.
func (q *queries) DeleteWebAuthnCredential(ctx context.Context, userID, id string) error {
	res, err := q.exec(ctx, `DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ?`, id, userID)
	return requireOneRow(fmt.Sprintf("delete webauthn credential %q", id), res, err)
}

// UseWebAuthnCredential advances the sign counter with a conditional
// UPDATE, so a counter that does not move forward writes nothing.
func (q *queries) UseWebAuthnCredential(ctx context.Context, id string, signCount uint32, backupState bool, now time.Time) (bool, error) {
	n := int64(signCount)
	// A zero counter moves nothing forward: it is accepted only from an
	// authenticator that has never counted (stored zero too).
	forward := `sign_count < ?`
	if n == 0 {
		forward = `sign_count = ?`
	}
	res, err := q.exec(ctx,
		`UPDATE webauthn_credentials SET sign_count = ?, backup_state = ?, last_used_at = ? WHERE id = ? AND `+forward,
		n, backupState, timeArg(q.dialect, now), id, n)
	affected, err := rowsAffected(fmt.Sprintf("use webauthn credential %q", id), res, err)
	return affected == 1, err
}

func scanWebAuthnCredential(r row) (gatehouse.WebAuthnCredential, error) {
	var (
		c                 gatehouse.WebAuthnCredential
		signCount         int64
		transports        []byte
		created, lastUsed timeScanner
	)
	if err := r.Scan(&c.ID, &c.UserID, &c.CredentialID, &c.PublicKey, &c.AttestationType, &c.AAGUID, &signCount,
		&transports, &c.BackupEligible, &c.BackupState, &c.Attachment, &c.Name, &created, &lastUsed); err != nil {
		return gatehouse.WebAuthnCredential{}, err
	}
	var err error
	if c.Transports, err = decodeStrings(transports); err != nil {
		return gatehouse.WebAuthnCredential{}, fmt.Errorf("decode transports of webauthn credential %q: %w", c.ID, err)
	}
	if c.Transports == nil {
		c.Transports = []string{}
	}
	c.SignCount, c.CreatedAt, c.LastUsedAt = uint32(signCount), created.Time, lastUsed.ptr()
	return c, nil
}
