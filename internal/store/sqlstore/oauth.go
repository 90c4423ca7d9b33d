package sqlstore

import (
	"context"
	"fmt"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- linked external accounts (social login) ---

var _ store.OAuthAccounts = (*queries)(nil)

const oauthAccountColumns = `id, user_id, provider, subject, email, created_at`

// CreateOAuthAccount inserts a. ErrConflict when the id or (provider,
// subject) exists; ErrNotFound when the user does not.
func (q *queries) CreateOAuthAccount(ctx context.Context, a gatehouse.OAuthAccount) error {
	_, err := q.exec(ctx, `INSERT INTO oauth_accounts (`+oauthAccountColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, a.UserID, a.Provider, a.Subject, a.Email, timeArg(q.dialect, a.CreatedAt))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("create oauth account: user %q: %w", a.UserID, store.ErrNotFound)
	}
	return translate("create oauth account", err)
}

// GetOAuthAccount finds the link of a provider's subject.
func (q *queries) GetOAuthAccount(ctx context.Context, provider, subject string) (gatehouse.OAuthAccount, error) {
	a, err := scanOAuthAccount(q.queryRow(ctx,
		`SELECT `+oauthAccountColumns+` FROM oauth_accounts WHERE provider = ? AND subject = ?`, provider, subject))
	return a, translate("get oauth account", err)
}

// ListOAuthAccounts returns the user's links in id (creation) order.
func (q *queries) ListOAuthAccounts(ctx context.Context, userID string) ([]gatehouse.OAuthAccount, error) {
	rows, err := q.query(ctx, `SELECT `+oauthAccountColumns+` FROM oauth_accounts WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, translate("list oauth accounts", err)
	}
	out, err := collect(rows, scanOAuthAccount)
	return out, translate("list oauth accounts", err)
}

// DeleteOAuthAccount removes the user's link.
func (q *queries) DeleteOAuthAccount(ctx context.Context, userID, id string) error {
	res, err := q.exec(ctx, `DELETE FROM oauth_accounts WHERE id = ? AND user_id = ?`, id, userID)
	return requireOneRow(fmt.Sprintf("delete oauth account %q", id), res, err)
}

func scanOAuthAccount(r row) (gatehouse.OAuthAccount, error) {
	var (
		a       gatehouse.OAuthAccount
		created timeScanner
	)
	if err := r.Scan(&a.ID, &a.UserID, &a.Provider, &a.Subject, &a.Email, &created); err != nil {
		return gatehouse.OAuthAccount{}, err
	}
	a.CreatedAt = created.Time
	return a, nil
}
