package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- OpenID Provider: clients, authorization requests, consents, grants ---

var _ store.Clients = (*queries)(nil)

const clientColumns = `id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, ` +
	`public, first_party, created_at, updated_at`

// encodeLists encodes each list as a JSON array, or fails naming op.
func encodeLists(op string, lists ...[]string) ([]string, error) {
	out := make([]string, len(lists))
	for i, l := range lists {
		s, err := encodeStrings(l)
		if err != nil {
			return nil, fmt.Errorf("%s: encode list: %w", op, err)
		}
		out[i] = s
	}
	return out, nil
}

// CreateClient inserts c. ErrConflict when the id exists.
func (q *queries) CreateClient(ctx context.Context, c gatehouse.Client) error {
	l, err := encodeLists("create client", c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes, c.Scopes)
	if err != nil {
		return err
	}
	_, err = q.exec(ctx, `INSERT INTO oidc_clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, nilBytes(c.SecretHash), l[0], l[1], l[2], l[3], c.Public, c.FirstParty,
		timeArg(q.dialect, c.CreatedAt), timeArg(q.dialect, c.UpdatedAt))
	return translate("create client", err)
}

// nilBytes stores an empty hash as NULL.
func nilBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// GetClient returns one client. ErrNotFound.
func (q *queries) GetClient(ctx context.Context, id string) (gatehouse.Client, error) {
	c, err := scanClient(q.queryRow(ctx, `SELECT `+clientColumns+` FROM oidc_clients WHERE id = ?`, id))
	return c, translate(fmt.Sprintf("get client %q", id), err)
}

// ListClients returns a page of clients in id order.
func (q *queries) ListClients(ctx context.Context, cq store.ClientQuery) ([]gatehouse.Client, error) {
	if cq.Limit < 1 {
		return nil, fmt.Errorf("list clients: limit must be at least 1, got %d", cq.Limit)
	}
	rows, err := q.query(ctx, `SELECT `+clientColumns+` FROM oidc_clients WHERE id > ? ORDER BY id LIMIT ?`, cq.After, cq.Limit)
	if err != nil {
		return nil, translate("list clients", err)
	}
	out, err := collect(rows, scanClient)
	return out, translate("list clients", err)
}

// UpdateClient writes the mutable fields. ErrNotFound.
func (q *queries) UpdateClient(ctx context.Context, c gatehouse.Client) error {
	op := fmt.Sprintf("update client %q", c.ID)
	l, err := encodeLists(op, c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes, c.Scopes)
	if err != nil {
		return err
	}
	res, err := q.exec(ctx, `UPDATE oidc_clients SET name = ?, redirect_uris = ?, post_logout_redirect_uris = ?, `+
		`grant_types = ?, scopes = ?, first_party = ?, updated_at = ? WHERE id = ?`,
		c.Name, l[0], l[1], l[2], l[3], c.FirstParty, timeArg(q.dialect, c.UpdatedAt), c.ID)
	return requireOneRow(op, res, err)
}

// SetClientSecret replaces the secret's hash. ErrNotFound.
func (q *queries) SetClientSecret(ctx context.Context, id string, hash []byte, now time.Time) error {
	res, err := q.exec(ctx, `UPDATE oidc_clients SET secret_hash = ?, updated_at = ? WHERE id = ?`,
		nilBytes(hash), timeArg(q.dialect, now), id)
	return requireOneRow(fmt.Sprintf("set secret of client %q", id), res, err)
}

// DeleteClient removes the client and, by cascade, what hangs on it.
func (q *queries) DeleteClient(ctx context.Context, id string) error {
	res, err := q.exec(ctx, `DELETE FROM oidc_clients WHERE id = ?`, id)
	return requireOneRow(fmt.Sprintf("delete client %q", id), res, err)
}

func scanClient(r row) (gatehouse.Client, error) {
	var (
		c                        gatehouse.Client
		redirects, post, gr, scp []byte
		created, updated         timeScanner
	)
	if err := r.Scan(&c.ID, &c.Name, &c.SecretHash, &redirects, &post, &gr, &scp, &c.Public, &c.FirstParty,
		&created, &updated); err != nil {
		return gatehouse.Client{}, err
	}
	var err error
	for _, f := range []struct {
		dst *[]string
		src []byte
	}{{&c.RedirectURIs, redirects}, {&c.PostLogoutRedirectURIs, post}, {&c.GrantTypes, gr}, {&c.Scopes, scp}} {
		if *f.dst, err = decodeStrings(f.src); err != nil {
			return gatehouse.Client{}, fmt.Errorf("decode client %q: %w", c.ID, err)
		}
	}
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	c.CreatedAt, c.UpdatedAt = created.Time, updated.Time
	return c, nil
}

// --- authorization requests and codes ---

const authRequestColumns = `id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode, ` +
	`code_challenge, code_challenge_method, prompt, max_age, login_hint, created_at, expires_at, login_at, ` +
	`user_id, session_id, auth_time, amr, code_hash, code_expires_at, used_at, grant_session_id`

// CreateAuthRequest inserts r. ErrConflict when the id exists; ErrNotFound
// when the client does not.
func (q *queries) CreateAuthRequest(ctx context.Context, r gatehouse.AuthRequest) error {
	l, err := encodeLists("create auth request", r.Scopes, r.Prompt, r.AMR)
	if err != nil {
		return err
	}
	var maxAge any
	if r.MaxAge != nil {
		maxAge = int64(*r.MaxAge)
	}
	_, err = q.exec(ctx, `INSERT INTO oidc_auth_requests (`+authRequestColumns+`) VALUES `+
		`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ClientID, r.RedirectURI, l[0], r.State, r.Nonce, r.ResponseType, r.ResponseMode,
		r.CodeChallenge, r.CodeChallengeMethod, l[1], maxAge, r.LoginHint,
		timeArg(q.dialect, r.CreatedAt), timeArg(q.dialect, r.ExpiresAt), nullTimeArg(q.dialect, r.LoginAt),
		nullString(r.UserID), r.SessionID, nullTimeArg(q.dialect, r.AuthTime), l[2], nilBytes(r.CodeHash),
		nullTimeArg(q.dialect, r.CodeExpiresAt), nullTimeArg(q.dialect, r.UsedAt), r.GrantSessionID)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("create auth request: client %q or user: %w", r.ClientID, store.ErrNotFound)
	}
	return translate("create auth request", err)
}

// GetAuthRequest returns one request. ErrNotFound.
func (q *queries) GetAuthRequest(ctx context.Context, id string) (gatehouse.AuthRequest, error) {
	r, err := scanAuthRequest(q.queryRow(ctx, `SELECT `+authRequestColumns+` FROM oidc_auth_requests WHERE id = ?`, id))
	return r, translate(fmt.Sprintf("get auth request %q", id), err)
}

// SetAuthRequestLogin sets LoginAt. ErrNotFound.
func (q *queries) SetAuthRequestLogin(ctx context.Context, id string, at time.Time) error {
	res, err := q.exec(ctx, `UPDATE oidc_auth_requests SET login_at = ? WHERE id = ?`, timeArg(q.dialect, at), id)
	return requireOneRow(fmt.Sprintf("set login of auth request %q", id), res, err)
}

// CompleteAuthRequest records the sign-in on a request without a code.
func (q *queries) CompleteAuthRequest(ctx context.Context, r gatehouse.AuthRequest) error {
	op := fmt.Sprintf("complete auth request %q", r.ID)
	if r.UserID == "" || r.AuthTime == nil {
		return fmt.Errorf("%s: user and auth time are required", op)
	}
	amr, err := encodeStrings(r.AMR)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	res, err := q.exec(ctx, `UPDATE oidc_auth_requests SET user_id = ?, session_id = ?, auth_time = ?, amr = ? `+
		`WHERE id = ? AND code_hash IS NULL`,
		r.UserID, r.SessionID, timeArg(q.dialect, *r.AuthTime), amr, r.ID)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("%s: user %q: %w", op, r.UserID, store.ErrNotFound)
	}
	return requireOneRow(op, res, err)
}

// SetAuthRequestCode gives a completed request its code, once.
func (q *queries) SetAuthRequestCode(ctx context.Context, id string, hash []byte, expiresAt time.Time) error {
	if len(hash) == 0 {
		return fmt.Errorf("set code of auth request %q: empty hash", id)
	}
	res, err := q.exec(ctx, `UPDATE oidc_auth_requests SET code_hash = ?, code_expires_at = ? `+
		`WHERE id = ? AND code_hash IS NULL AND user_id IS NOT NULL AND auth_time IS NOT NULL`,
		hash, timeArg(q.dialect, expiresAt), id)
	return requireOneRow(fmt.Sprintf("set code of auth request %q", id), res, err)
}

// ConsumeAuthCode spends a code once.
func (q *queries) ConsumeAuthCode(ctx context.Context, hash []byte, now time.Time) (gatehouse.AuthRequest, error) {
	n := timeArg(q.dialect, now)
	r, err := scanAuthRequest(q.queryRow(ctx,
		`UPDATE oidc_auth_requests SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND code_expires_at > ? `+
			`RETURNING `+authRequestColumns, n, hash, n))
	return r, translate("consume authorization code", err)
}

// GetAuthRequestByCode returns the request with this code hash. ErrNotFound.
func (q *queries) GetAuthRequestByCode(ctx context.Context, hash []byte) (gatehouse.AuthRequest, error) {
	if len(hash) == 0 {
		return gatehouse.AuthRequest{}, fmt.Errorf("get auth request by code: %w", store.ErrNotFound)
	}
	r, err := scanAuthRequest(q.queryRow(ctx, `SELECT `+authRequestColumns+` FROM oidc_auth_requests WHERE code_hash = ?`, hash))
	return r, translate("get auth request by code", err)
}

// SetAuthCodeGrant records the session a spent code started.
func (q *queries) SetAuthCodeGrant(ctx context.Context, id, sessionID string) error {
	res, err := q.exec(ctx, `UPDATE oidc_auth_requests SET grant_session_id = ? WHERE id = ? AND used_at IS NOT NULL`, sessionID, id)
	return requireOneRow(fmt.Sprintf("set grant of auth request %q", id), res, err)
}

// DeleteStaleAuthRequests deletes requests that expired before cutoff.
func (q *queries) DeleteStaleAuthRequests(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := q.exec(ctx, `DELETE FROM oidc_auth_requests WHERE expires_at < ?`, timeArg(q.dialect, cutoff))
	return rowsAffected("delete stale auth requests", res, err)
}

func scanAuthRequest(rw row) (gatehouse.AuthRequest, error) {
	var (
		r                                                gatehouse.AuthRequest
		scopes, prompt, amr                              []byte
		maxAge                                           sql.NullInt64
		userID                                           sql.NullString
		created, expires, login, authTime, codeExp, used timeScanner
	)
	if err := rw.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &scopes, &r.State, &r.Nonce, &r.ResponseType, &r.ResponseMode,
		&r.CodeChallenge, &r.CodeChallengeMethod, &prompt, &maxAge, &r.LoginHint, &created, &expires, &login,
		&userID, &r.SessionID, &authTime, &amr, &r.CodeHash, &codeExp, &used, &r.GrantSessionID); err != nil {
		return gatehouse.AuthRequest{}, err
	}
	var err error
	for _, f := range []struct {
		dst *[]string
		src []byte
	}{{&r.Scopes, scopes}, {&r.Prompt, prompt}, {&r.AMR, amr}} {
		if *f.dst, err = decodeStrings(f.src); err != nil {
			return gatehouse.AuthRequest{}, fmt.Errorf("decode auth request %q: %w", r.ID, err)
		}
	}
	if maxAge.Valid {
		v := int(maxAge.Int64)
		r.MaxAge = &v
	}
	if len(r.CodeHash) == 0 {
		r.CodeHash = nil
	}
	r.UserID = userID.String
	r.CreatedAt, r.ExpiresAt, r.LoginAt, r.AuthTime = created.Time, expires.Time, login.ptr(), authTime.ptr()
	r.CodeExpiresAt, r.UsedAt = codeExp.ptr(), used.ptr()
	return r, nil
}

// --- consents ---

const consentColumns = `user_id, client_id, scopes, created_at, updated_at`

// PutConsent inserts or replaces the user's consent to a client.
func (q *queries) PutConsent(ctx context.Context, c gatehouse.Consent) error {
	scopes, err := encodeStrings(c.Scopes)
	if err != nil {
		return fmt.Errorf("put consent: %w", err)
	}
	_, err = q.exec(ctx, `INSERT INTO oidc_consents (`+consentColumns+`) VALUES (?, ?, ?, ?, ?) `+
		`ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, scopes, timeArg(q.dialect, c.CreatedAt), timeArg(q.dialect, c.UpdatedAt))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("put consent: user %q or client %q: %w", c.UserID, c.ClientID, store.ErrNotFound)
	}
	return translate("put consent", err)
}

// GetConsent returns the user's consent to the client. ErrNotFound.
func (q *queries) GetConsent(ctx context.Context, userID, clientID string) (gatehouse.Consent, error) {
	c, err := scanConsent(q.queryRow(ctx, `SELECT `+consentColumns+` FROM oidc_consents WHERE user_id = ? AND client_id = ?`,
		userID, clientID))
	return c, translate("get consent", err)
}

// ListConsents returns the user's consents in client id order.
func (q *queries) ListConsents(ctx context.Context, userID string) ([]gatehouse.Consent, error) {
	rows, err := q.query(ctx, `SELECT `+consentColumns+` FROM oidc_consents WHERE user_id = ? ORDER BY client_id`, userID)
	if err != nil {
		return nil, translate("list consents", err)
	}
	out, err := collect(rows, scanConsent)
	return out, translate("list consents", err)
}

// DeleteConsent removes the user's consent to the client. ErrNotFound.
func (q *queries) DeleteConsent(ctx context.Context, userID, clientID string) error {
	res, err := q.exec(ctx, `DELETE FROM oidc_consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
	return requireOneRow(fmt.Sprintf("delete consent to %q", clientID), res, err)
}

func scanConsent(r row) (gatehouse.Consent, error) {
	var (
		c                gatehouse.Consent
		scopes           []byte
		created, updated timeScanner
	)
	if err := r.Scan(&c.UserID, &c.ClientID, &scopes, &created, &updated); err != nil {
		return gatehouse.Consent{}, err
	}
	var err error
	if c.Scopes, err = decodeStrings(scopes); err != nil {
		return gatehouse.Consent{}, fmt.Errorf("decode consent scopes: %w", err)
	}
	c.CreatedAt, c.UpdatedAt = created.Time, updated.Time
	return c, nil
}

// --- grants ---

const clientGrantColumns = `session_id, client_id, user_id, scopes, created_at`

// CreateClientGrant inserts g.
func (q *queries) CreateClientGrant(ctx context.Context, g gatehouse.ClientGrant) error {
	scopes, err := encodeStrings(g.Scopes)
	if err != nil {
		return fmt.Errorf("create client grant: %w", err)
	}
	_, err = q.exec(ctx, `INSERT INTO oidc_grants (`+clientGrantColumns+`) VALUES (?, ?, ?, ?, ?)`,
		g.SessionID, g.ClientID, g.UserID, scopes, timeArg(q.dialect, g.CreatedAt))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("create client grant: session, user or client: %w", store.ErrNotFound)
	}
	return translate("create client grant", err)
}

// GetClientGrant returns the grant of a session. ErrNotFound.
func (q *queries) GetClientGrant(ctx context.Context, sessionID string) (gatehouse.ClientGrant, error) {
	g, err := scanClientGrant(q.queryRow(ctx, `SELECT `+clientGrantColumns+` FROM oidc_grants WHERE session_id = ?`, sessionID))
	return g, translate("get client grant", err)
}

// ListClientGrants returns the client's grants (only userID's when set).
func (q *queries) ListClientGrants(ctx context.Context, clientID, userID string) ([]gatehouse.ClientGrant, error) {
	query, args := `SELECT `+clientGrantColumns+` FROM oidc_grants WHERE client_id = ?`, []any{clientID}
	if userID != "" {
		query, args = query+` AND user_id = ?`, append(args, userID)
	}
	rows, err := q.query(ctx, query+` ORDER BY session_id`, args...)
	if err != nil {
		return nil, translate("list client grants", err)
	}
	out, err := collect(rows, scanClientGrant)
	return out, translate("list client grants", err)
}

func scanClientGrant(r row) (gatehouse.ClientGrant, error) {
	var (
		g       gatehouse.ClientGrant
		scopes  []byte
		created timeScanner
	)
	if err := r.Scan(&g.SessionID, &g.ClientID, &g.UserID, &scopes, &created); err != nil {
		return gatehouse.ClientGrant{}, err
	}
	var err error
	if g.Scopes, err = decodeStrings(scopes); err != nil {
		return gatehouse.ClientGrant{}, fmt.Errorf("decode grant scopes: %w", err)
	}
	g.CreatedAt = created.Time
	return g, nil
}
