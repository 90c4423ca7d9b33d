// Package store declares the persistence contract of Gatehouse: the Store
// and Tx interfaces every SQL dialect implements, and the two errors callers
// may branch on. Capability packages declare the smaller interfaces they
// consume; this package states the whole surface and its error contract.
package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-auth/gatehouse"
)

// ErrNotFound means the row asked for does not exist (or is not visible to
// the caller). Implementations translate driver "no rows" into it.
var ErrNotFound = errors.New("store: not found")

// ErrConflict means a uniqueness or foreign-key constraint refused the
// write. Implementations translate driver error codes into it.
var ErrConflict = errors.New("store: conflict")

// Dialect names a SQL engine. It is a string (an alias, not a type of its
// own) so that infrastructure below the store, such as the job queue, can
// speak of it without importing this package.
type Dialect = string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// SigningKeys persists the token signing key ring.
type SigningKeys interface {
	// CreateSigningKey inserts k. ErrConflict when k.ID exists.
	CreateSigningKey(ctx context.Context, k gatehouse.SigningKey) error
	// ListSigningKeys returns every key, newest first.
	ListSigningKeys(ctx context.Context) ([]gatehouse.SigningKey, error)
	// RetireSigningKey marks the key as no longer signing and sets when it
	// leaves the JWKS. ErrNotFound when there is no such active key.
	RetireSigningKey(ctx context.Context, id string, retiredAt, expiresAt time.Time) error
	// DeleteExpiredSigningKeys removes retired keys whose ExpiresAt is
	// before now and reports how many went.
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int64, error)
}

// Events persists the event log that the event worker fans out.
type Events interface {
	// CreateEvent inserts e. ErrConflict when e.ID exists.
	CreateEvent(ctx context.Context, e gatehouse.Event) error
	// GetEvent returns one event. ErrNotFound when it does not exist.
	GetEvent(ctx context.Context, id string) (gatehouse.Event, error)
	// DeleteEvent removes a fanned-out event (its audit row stays).
	// ErrNotFound when it does not exist.
	DeleteEvent(ctx context.Context, id string) error
}

// Users persists accounts and their role assignments.
type Users interface {
	// CreateUser inserts u (without roles). ErrConflict when the email (already
	// normalised) or id exists.
	CreateUser(ctx context.Context, u gatehouse.User) error
	// GetUser returns the user with Roles filled (role names, sorted in
	// byte order; nil when it has none). NotificationPreferences reads back
	// nil when none are set (nil and empty are stored alike); MFAMethods is
	// the methods of the active factors, each once, when MFAEnabled.
	// ErrNotFound when there is none.
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
	// GetUserForUpdate is GetUser that, inside a transaction on PostgreSQL,
	// locks the row (SELECT ... FOR UPDATE) so read-modify-write of counters
	// such as FailedLogins cannot lose updates. SQLite transactions already
	// hold the write lock.
	GetUserForUpdate(ctx context.Context, id string) (gatehouse.User, error)
	// GetUserByEmail finds by normalised email. ErrNotFound when none.
	GetUserByEmail(ctx context.Context, email gatehouse.Email) (gatehouse.User, error)
	// UpdateUser writes every mutable field of u (all but ID, CreatedAt and
	// Roles). ErrNotFound when there is no such user; ErrConflict when the
	// new email is taken.
	UpdateUser(ctx context.Context, u gatehouse.User) error
	// DeleteUser removes the user and, by cascade, everything it owns
	// (sessions, refresh tokens, one-time tokens, role assignments).
	// ErrNotFound when there is none.
	DeleteUser(ctx context.Context, id string) error
	// SetUserRoles replaces the user's roles with the named ones (duplicates
	// ignored; none removes every role). ErrNotFound when the user or any
	// role name does not exist, checked before anything is written.
	SetUserRoles(ctx context.Context, userID string, roles []string) error
}

// UserQuery selects a page of users.
type UserQuery struct {
	// After is the id of the last user of the previous page ("" for the
	// first page); users come in id order, which is creation order.
	After string
	// Limit is the page size (≥ 1; ListUsers refuses less with an error
	// that is neither ErrNotFound nor ErrConflict).
	Limit int
	// Search, when not empty, keeps users whose email or name contains it,
	// case-insensitively (for ASCII on every engine); it is plain text, so
	// '%', '_' and '\' match only themselves.
	Search string
}

// Roles persists roles and their permissions.
type Roles interface {
	// ListRoles returns every role, system roles included, ordered by name
	// in byte order.
	ListRoles(ctx context.Context) ([]gatehouse.Role, error)
	// GetRole returns one role by id; empty permissions read back nil.
	// ErrNotFound when there is none.
	GetRole(ctx context.Context, id string) (gatehouse.Role, error)
	// CreateRole inserts r (nil permissions are stored as none).
	// ErrConflict when its name or id exists.
	CreateRole(ctx context.Context, r gatehouse.Role) error
	// UpdateRole writes r's description, permissions and updated_at (never
	// its name or system flag). ErrNotFound when there is no such role.
	UpdateRole(ctx context.Context, r gatehouse.Role) error
	// DeleteRole removes the role and its assignments. ErrNotFound.
	DeleteRole(ctx context.Context, id string) error
	// CountUsersWithRoleForUpdate returns how many users hold the role
	// named name (0 when there is no such role). Inside a transaction it
	// first locks the role against the same call in other transactions
	// until this one ends, so transactions that count and then assign the
	// role run one after the other, each counting what the ones before it
	// committed (the first administrator is made once).
	CountUsersWithRoleForUpdate(ctx context.Context, name string) (int, error)
	// UserPermissions returns the permissions of every role the user holds
	// (possibly with repeats); empty when the user has no roles or does not
	// exist.
	UserPermissions(ctx context.Context, userID string) ([]string, error)
	// ListUsers returns a page of users per q, in ascending id order, with
	// Roles filled as GetUser fills them; empty when none is left.
	ListUsers(ctx context.Context, q UserQuery) ([]gatehouse.User, error)
}

// Sessions persists signed-in clients.
type Sessions interface {
	// CreateSession inserts s. ErrConflict when the id exists; ErrNotFound
	// when the user does not.
	CreateSession(ctx context.Context, s gatehouse.Session) error
	// GetSession returns the session whatever its state (an empty AMR reads
	// back nil). ErrNotFound.
	GetSession(ctx context.Context, id string) (gatehouse.Session, error)
	// GetSessionClient is GetSession that also returns the id of the
	// OpenID Provider client the session was granted to (its ClientGrant),
	// "" when it was not, in one statement. ErrNotFound.
	GetSessionClient(ctx context.Context, id string) (gatehouse.Session, string, error)
	// ListSessions returns the user's sessions that are not revoked and
	// whose ExpiresAt is after now, most recently active first.
	ListSessions(ctx context.Context, userID string, now time.Time) ([]gatehouse.Session, error)
	// TouchSession records activity: LastActiveAt = now, and the client's
	// current IP and user agent when non-empty. ErrNotFound.
	TouchSession(ctx context.Context, id string, now time.Time, ip, userAgent string) error
	// TouchSessionTrust is TouchSession that also sets the TrustScore
	// (0-100, as SetSessionTrust), in one statement: a refresh's.
	TouchSessionTrust(ctx context.Context, id string, now time.Time, ip, userAgent string, score int) error
	// RevokeSession sets RevokedAt = now when the session is not revoked yet,
	// and reports whether this call did it. ErrNotFound when there is none.
	RevokeSession(ctx context.Context, id string, now time.Time) (bool, error)
	// RevokeUserSessions revokes every unrevoked session of the user except
	// exceptID (may be empty) and returns the ids it revoked.
	RevokeUserSessions(ctx context.Context, userID, exceptID string, now time.Time) ([]string, error)
	// DeleteStaleSessions deletes sessions that expired or were revoked
	// before cutoff (and their refresh tokens) and reports how many went.
	DeleteStaleSessions(ctx context.Context, cutoff time.Time) (int64, error)
	// CountActiveSessions counts every user's sessions that are not revoked
	// and whose ExpiresAt is after now (the sessions ListSessions would
	// list), for the active sessions gauge; an index serves it.
	CountActiveSessions(ctx context.Context, now time.Time) (int64, error)
}

// RefreshTokens persists refresh-token families (one family per session).
type RefreshTokens interface {
	// CreateRefreshToken inserts t. ErrConflict when the id or hash exists,
	// or when the session or user does not (a foreign key refuses it).
	CreateRefreshToken(ctx context.Context, t gatehouse.RefreshToken) error
	// GetRefreshTokenByHash returns the token whatever its state.
	// ErrNotFound when there is none.
	GetRefreshTokenByHash(ctx context.Context, hash []byte) (gatehouse.RefreshToken, error)
	// UseRefreshToken atomically sets UsedAt = now on the token when it is
	// unused (UPDATE ... WHERE used_at IS NULL) and reports whether this
	// call did it: of concurrent callers exactly one gets true. False, not an
	// error, for an unknown id.
	UseRefreshToken(ctx context.Context, id string, now time.Time) (bool, error)
	// ConsumeRefreshToken marks the unused token with this hash used
	// (UsedAt = now) and returns it, in one UPDATE ... RETURNING: of
	// concurrent callers exactly one gets it. Expiry is not checked (the
	// caller checks ExpiresAt, and rolls back to refuse). ErrNotFound when
	// no unused token has the hash: unknown, or used already (read it with
	// GetRefreshTokenByHash to tell which).
	ConsumeRefreshToken(ctx context.Context, hash []byte, now time.Time) (gatehouse.RefreshToken, error)
}

// OneTimeTokens persists single-use secrets sent by email.
type OneTimeTokens interface {
	// CreateOneTimeToken inserts t. ErrConflict when the id or hash exists,
	// or when the user does not (a foreign key refuses it).
	CreateOneTimeToken(ctx context.Context, t gatehouse.OneTimeToken) error
	// ConsumeOneTimeToken atomically marks the token with this purpose and
	// hash used, if it is unused and ExpiresAt is after now, and returns it.
	// Of concurrent callers exactly one succeeds. ErrNotFound when the token
	// is unknown, used, superseded or expired.
	ConsumeOneTimeToken(ctx context.Context, purpose gatehouse.OneTimePurpose, hash []byte, now time.Time) (gatehouse.OneTimeToken, error)
	// SupersedeOneTimeTokens marks every unused token of the user with this
	// purpose as used, so only a token made after it works.
	SupersedeOneTimeTokens(ctx context.Context, userID string, purpose gatehouse.OneTimePurpose, now time.Time) error
	// DeleteStaleOneTimeTokens deletes tokens that expired or were used
	// before cutoff and reports how many went.
	DeleteStaleOneTimeTokens(ctx context.Context, cutoff time.Time) (int64, error)
}

// AuditQuery selects audit rows, newest first. A zero field does not
// filter (nor does MinRisk ≤ 0).
type AuditQuery struct {
	UserID, Action string     // exact matches when non-empty
	From, To       *time.Time // created_at >= From, < To (at microsecond precision)
	MinRisk        int        // risk_score >= MinRisk
	Before         string     // id of the last row of the previous page ("" first page); only smaller ids follow
	Limit          int        // ≥ 1; less is an error that is neither ErrNotFound nor ErrConflict
}

// AuditLogs persists the audit trail. Rows name users by id without a
// foreign key: they may name users that no longer exist.
type AuditLogs interface {
	// CreateAuditLog inserts l. ErrConflict when its id exists. A
	// RiskScore outside 0..100 is refused with an error that is neither
	// ErrConflict nor ErrNotFound.
	//
	// It appends l to the hash chain: it ignores l's Seq, PrevHash and
	// Hash, and the row gets the next seq, the current head's hash and
	// l.ChainHash() — at once on SQLite, right after the transaction
	// commits on PostgreSQL (until then it reads back with Seq 0 and no
	// hashes). On the Store it runs in a transaction of its own.
	CreateAuditLog(ctx context.Context, l gatehouse.AuditLog) error
	// ListAuditLogsBySeq returns up to limit rows with seq > afterSeq in
	// ascending seq (chain) order, Seq, PrevHash and Hash filled; empty
	// when none are left. A limit below 1 is an error that is neither
	// ErrNotFound nor ErrConflict.
	ListAuditLogsBySeq(ctx context.Context, afterSeq int64, limit int) ([]gatehouse.AuditLog, error)
	// PruneAuditLogs deletes the rows with seq ≤ throughSeq, the only
	// deletion the database's append-only triggers allow, and reports how
	// many went. Callers export the rows first. On the Store it runs in a
	// transaction of its own.
	PruneAuditLogs(ctx context.Context, throughSeq int64) (int64, error)
	// ListAuditLogs returns rows matching q, newest first (id descending;
	// ids are UUIDv7, so creation order); empty when none match. Metadata
	// reads back as an empty map, never nil, when none was stored.
	ListAuditLogs(ctx context.Context, q AuditQuery) ([]gatehouse.AuditLog, error)
}

// Webhooks persists webhook subscriptions, their deliveries and attempts.
type Webhooks interface {
	// CreateWebhook inserts w. ErrConflict when the id exists or the owner
	// does not.
	CreateWebhook(ctx context.Context, w gatehouse.Webhook) error
	// GetWebhook returns one webhook (Events never nil). ErrNotFound.
	GetWebhook(ctx context.Context, id string) (gatehouse.Webhook, error)
	// ListWebhooks returns up to limit (≥ 1) of the user's webhooks with
	// ids after after ("" for the first page), in id (creation) order.
	ListWebhooks(ctx context.Context, userID, after string, limit int) ([]gatehouse.Webhook, error)
	// ListSubscribers returns the active webhooks that may receive an event
	// about userID: the user's own and every all-users one. Event-type
	// filtering is the caller's.
	ListSubscribers(ctx context.Context, userID string) ([]gatehouse.Webhook, error)
	// UpdateWebhook writes URL, Events, Description, Active, AllUsers and
	// UpdatedAt (not the secret nor FailingSince). ErrNotFound.
	UpdateWebhook(ctx context.Context, w gatehouse.Webhook) error
	// DeleteWebhook removes the webhook with its deliveries. ErrNotFound.
	DeleteWebhook(ctx context.Context, id string) error
	// MarkWebhookFailing sets FailingSince to now unless it is set already
	// and returns its value. ErrNotFound.
	MarkWebhookFailing(ctx context.Context, id string, now time.Time) (time.Time, error)
	// ClearWebhookFailing sets FailingSince to nil; no error for an unknown id.
	ClearWebhookFailing(ctx context.Context, id string) error
	// DisableWebhook sets Active false if it is true and reports whether
	// this call did it. ErrNotFound when there is no such webhook.
	DisableWebhook(ctx context.Context, id string, now time.Time) (bool, error)
	// CreateWebhookDelivery inserts d (History ignored). ErrConflict when
	// the id exists or the webhook does not.
	CreateWebhookDelivery(ctx context.Context, d gatehouse.WebhookDelivery) error
	// GetWebhookDelivery returns one delivery with its History. ErrNotFound.
	GetWebhookDelivery(ctx context.Context, id string) (gatehouse.WebhookDelivery, error)
	// ListWebhookDeliveries returns up to limit (≥ 1) deliveries of the
	// webhook with ids below before ("" for the first page), newest first,
	// each with its History.
	ListWebhookDeliveries(ctx context.Context, webhookID, before string, limit int) ([]gatehouse.WebhookDelivery, error)
	// UpdateWebhookDelivery writes Status, Attempts, ResponseStatus,
	// LastError, NextAttemptAt and DeliveredAt. ErrNotFound.
	UpdateWebhookDelivery(ctx context.Context, d gatehouse.WebhookDelivery) error
	// CreateWebhookAttempt inserts a. ErrConflict when that attempt number
	// exists for the delivery, or the delivery does not.
	CreateWebhookAttempt(ctx context.Context, a gatehouse.WebhookAttempt) error
}

// MFA persists second factors and backup codes. SMS codes are one-time
// tokens with purpose gatehouse.PurposeMFASMS.
type MFA interface {
	// CreateMFAFactor inserts f. ErrConflict when the id exists; ErrNotFound
	// when the user does not.
	CreateMFAFactor(ctx context.Context, f gatehouse.MFAFactor) error
	// ListMFAFactors returns the user's factors, active and pending, oldest
	// first; empty when none.
	ListMFAFactors(ctx context.Context, userID string) ([]gatehouse.MFAFactor, error)
	// ActivateMFAFactor sets ActivatedAt = now (and LastUsedStep = step when
	// step is above it) on the user's pending factor. ErrNotFound when there
	// is no such pending factor.
	ActivateMFAFactor(ctx context.Context, userID, id string, step int64, now time.Time) error
	// DeleteMFAFactor removes the user's factor. ErrNotFound.
	DeleteMFAFactor(ctx context.Context, userID, id string) error
	// AdvanceTOTPStep sets LastUsedStep = step when it is below step, and
	// reports whether this call did: of concurrent callers presenting one
	// code exactly one gets true. False, not an error, for an unknown id.
	AdvanceTOTPStep(ctx context.Context, id string, step int64) (bool, error)
	// ReplaceBackupCodes deletes the user's backup codes and stores these
	// hashes as the new, unused set.
	ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error
	// UseBackupCode marks the user's unused code with this hash used and
	// reports whether this call did (exactly one of concurrent callers).
	// False, not an error, when the user has no such unused code.
	UseBackupCode(ctx context.Context, userID string, hash []byte, now time.Time) (bool, error)
	// CountBackupCodes returns how many of the user's codes are unused.
	CountBackupCodes(ctx context.Context, userID string) (int, error)
	// CountMFAUsers returns how many users there are and how many of them
	// have at least one active (activated) factor, for the MFA adoption
	// gauges; an index serves the second count.
	CountMFAUsers(ctx context.Context) (users, withMFA int64, err error)
}

// WebAuthn persists passkeys.
type WebAuthn interface {
	// CreateWebAuthnCredential inserts c. ErrConflict when the id or the
	// credential id exists; ErrNotFound when the user does not.
	CreateWebAuthnCredential(ctx context.Context, c gatehouse.WebAuthnCredential) error
	// ListWebAuthnCredentials returns the user's credentials, oldest first;
	// empty, not nil, when none.
	ListWebAuthnCredentials(ctx context.Context, userID string) ([]gatehouse.WebAuthnCredential, error)
	// CountWebAuthnCredentials returns how many credentials the user has.
	CountWebAuthnCredentials(ctx context.Context, userID string) (int, error)
	// GetWebAuthnCredential returns the user's credential with this id.
	// ErrNotFound when there is none or it belongs to another user.
	GetWebAuthnCredential(ctx context.Context, userID, id string) (gatehouse.WebAuthnCredential, error)
	// GetWebAuthnCredentialByCredentialID finds a credential by the
	// authenticator's credential id. ErrNotFound when none.
	GetWebAuthnCredentialByCredentialID(ctx context.Context, credentialID []byte) (gatehouse.WebAuthnCredential, error)
	// RenameWebAuthnCredential sets the name of the user's credential.
	// ErrNotFound when there is none or it belongs to another user.
	RenameWebAuthnCredential(ctx context.Context, userID, id, name string) error
	// DeleteWebAuthnCredential removes the user's credential. ErrNotFound
	// when there is none or it belongs to another user.
	DeleteWebAuthnCredential(ctx context.Context, userID, id string) error
	// UseWebAuthnCredential records a successful assertion: SignCount =
	// signCount, BackupState = backupState, LastUsedAt = now, but only when
	// signCount is above the stored counter or both are zero (an
	// authenticator without a counter). It reports whether the row was
	// written: false (no error) for a counter that did not move forward,
	// a possible clone, or for an unknown id. Of concurrent callers with
	// one counter value exactly one gets true (unless both are zero).
	UseWebAuthnCredential(ctx context.Context, id string, signCount uint32, backupState bool, now time.Time) (bool, error)
}

// OAuthAccounts persists links to external identity provider accounts.
type OAuthAccounts interface {
	// CreateOAuthAccount inserts a. ErrConflict when the id or (provider,
	// subject) exists; ErrNotFound when the user does not.
	CreateOAuthAccount(ctx context.Context, a gatehouse.OAuthAccount) error
	// GetOAuthAccount finds the link of a provider's subject. ErrNotFound
	// when there is none.
	GetOAuthAccount(ctx context.Context, provider, subject string) (gatehouse.OAuthAccount, error)
	// ListOAuthAccounts returns the user's links, oldest first; empty when
	// none.
	ListOAuthAccounts(ctx context.Context, userID string) ([]gatehouse.OAuthAccount, error)
	// DeleteOAuthAccount removes the user's link. ErrNotFound when there is
	// none or it belongs to another user.
	DeleteOAuthAccount(ctx context.Context, userID, id string) error
}

// Devices persists devices, the risk engine's per-user sign-in profile,
// and the session fields they drive.
type Devices interface {
	// UpsertDevice inserts d, or, when the user already has a device with
	// d's fingerprint, sets its LastSeenAt, LastIP and UserAgent from d.
	// It returns the stored device and whether this call created it (of
	// concurrent calls for one new fingerprint exactly one does).
	// ErrNotFound when the user does not exist.
	UpsertDevice(ctx context.Context, d gatehouse.Device) (gatehouse.Device, bool, error)
	// GetDevice returns one device. ErrNotFound.
	GetDevice(ctx context.Context, id string) (gatehouse.Device, error)
	// GetDeviceByFingerprint returns the user's device with that
	// fingerprint. ErrNotFound.
	GetDeviceByFingerprint(ctx context.Context, userID, fingerprint string) (gatehouse.Device, error)
	// ListDevices returns the user's devices, most recently seen first
	// (ties by id, descending); empty when none.
	ListDevices(ctx context.Context, userID string) ([]gatehouse.Device, error)
	// TouchDevice sets LastSeenAt = now, and LastIP when ip is not empty.
	// ErrNotFound.
	TouchDevice(ctx context.Context, id string, now time.Time, ip string) error
	// SetDeviceTrusted sets Trusted. ErrNotFound.
	SetDeviceTrusted(ctx context.Context, id string, trusted bool) error
	// DeleteDevice removes the device. ErrNotFound.
	DeleteDevice(ctx context.Context, id string) error
	// DeleteStaleDevices removes devices whose LastSeenAt is before cutoff
	// and returns them (ID and UserID only) in id order.
	DeleteStaleDevices(ctx context.Context, cutoff time.Time) ([]gatehouse.Device, error)
	// RevokeDeviceSessions revokes every unrevoked session from the device
	// (Session.DeviceRef) and returns their ids, sorted.
	RevokeDeviceSessions(ctx context.Context, deviceID string, now time.Time) ([]string, error)
	// GetSessionDevice returns the device a session is from. ErrNotFound
	// when the session has none (or does not exist).
	GetSessionDevice(ctx context.Context, sessionID string) (gatehouse.Device, error)
	// TouchSessionDevice is TouchDevice on the session's device, returning
	// the device as it is after the touch, in one statement. ErrNotFound
	// when the session has none (or does not exist).
	TouchSessionDevice(ctx context.Context, sessionID string, now time.Time, ip string) (gatehouse.Device, error)
	// SetSessionTrust sets the session's TrustScore (0-100; anything else
	// is an error that is neither ErrNotFound nor ErrConflict). ErrNotFound.
	SetSessionTrust(ctx context.Context, sessionID string, score int) error
	// GetLoginProfile returns the risk engine's opaque JSON profile of the
	// user's sign-ins. ErrNotFound when none was stored.
	GetLoginProfile(ctx context.Context, userID string) ([]byte, error)
	// PutLoginProfile stores (inserts or replaces) the profile; data must
	// be a JSON object (anything else is an error that is neither
	// ErrNotFound nor ErrConflict). ErrNotFound when the user does not
	// exist.
	PutLoginProfile(ctx context.Context, userID string, data []byte, now time.Time) error
}

// ClientQuery selects a page of clients, in id order.
type ClientQuery struct {
	After string // id of the last client of the previous page ("" first page)
	Limit int    // ≥ 1; less is an error that is neither ErrNotFound nor ErrConflict
}

// Clients persists the OpenID Provider's registered clients, its
// authorization requests and codes, users' consents, and the grants that
// tie a session to the client it was issued to.
type Clients interface {
	// CreateClient inserts c (nil lists stored as none). ErrConflict when
	// the id exists.
	CreateClient(ctx context.Context, c gatehouse.Client) error
	// GetClient returns one client; empty lists read back nil.
	// ErrNotFound.
	GetClient(ctx context.Context, id string) (gatehouse.Client, error)
	// ListClients returns a page of clients in id order; empty when none
	// is left.
	ListClients(ctx context.Context, q ClientQuery) ([]gatehouse.Client, error)
	// UpdateClient writes Name, the URI lists, GrantTypes, Scopes,
	// FirstParty and UpdatedAt (not the secret nor Public). ErrNotFound.
	UpdateClient(ctx context.Context, c gatehouse.Client) error
	// SetClientSecret replaces the secret's hash. ErrNotFound.
	SetClientSecret(ctx context.Context, id string, hash []byte, now time.Time) error
	// DeleteClient removes the client with its authorization requests,
	// consents and grants. ErrNotFound.
	DeleteClient(ctx context.Context, id string) error

	// CreateAuthRequest inserts r. ErrConflict when the id exists;
	// ErrNotFound when the client does not.
	CreateAuthRequest(ctx context.Context, r gatehouse.AuthRequest) error
	// GetAuthRequest returns one request whatever its state (empty lists
	// read back nil). ErrNotFound.
	GetAuthRequest(ctx context.Context, id string) (gatehouse.AuthRequest, error)
	// SetAuthRequestLogin sets LoginAt. ErrNotFound.
	SetAuthRequestLogin(ctx context.Context, id string, at time.Time) error
	// CompleteAuthRequest records who signed in for the request (UserID,
	// SessionID, AuthTime, AMR) while it has no code yet. ErrNotFound when
	// there is no such request without a code (or the user does not
	// exist).
	CompleteAuthRequest(ctx context.Context, r gatehouse.AuthRequest) error
	// SetAuthRequestCode gives a completed request its code hash and the
	// code's expiry, once: ErrNotFound when the request does not exist,
	// is not completed or has a code already.
	SetAuthRequestCode(ctx context.Context, id string, hash []byte, expiresAt time.Time) error
	// ConsumeAuthCode atomically marks the request with this code hash
	// used, when unused and CodeExpiresAt is after now, and returns it. Of
	// concurrent callers exactly one succeeds. ErrNotFound when the code
	// is unknown, used or expired.
	ConsumeAuthCode(ctx context.Context, hash []byte, now time.Time) (gatehouse.AuthRequest, error)
	// GetAuthRequestByCode returns the request with this code hash,
	// whatever its state. ErrNotFound.
	GetAuthRequestByCode(ctx context.Context, hash []byte) (gatehouse.AuthRequest, error)
	// SetAuthCodeGrant records the session a spent code's exchange
	// started (GrantSessionID). ErrNotFound when there is no such request
	// with a used code.
	SetAuthCodeGrant(ctx context.Context, id, sessionID string) error
	// DeleteStaleAuthRequests deletes requests that expired before cutoff
	// and reports how many went.
	DeleteStaleAuthRequests(ctx context.Context, cutoff time.Time) (int64, error)

	// PutConsent inserts c, or replaces the scopes and UpdatedAt of the
	// user's consent to that client. ErrNotFound when the user or client
	// does not exist.
	PutConsent(ctx context.Context, c gatehouse.Consent) error
	// GetConsent returns the user's consent to the client. ErrNotFound.
	GetConsent(ctx context.Context, userID, clientID string) (gatehouse.Consent, error)
	// ListConsents returns the user's consents in client id order; empty
	// when none.
	ListConsents(ctx context.Context, userID string) ([]gatehouse.Consent, error)
	// DeleteConsent removes the user's consent to the client. ErrNotFound.
	DeleteConsent(ctx context.Context, userID, clientID string) error

	// CreateClientGrant inserts g. ErrConflict when the session has a
	// grant already; ErrNotFound when the session, user or client does
	// not exist.
	CreateClientGrant(ctx context.Context, g gatehouse.ClientGrant) error
	// GetClientGrant returns the grant of a session. ErrNotFound.
	GetClientGrant(ctx context.Context, sessionID string) (gatehouse.ClientGrant, error)
	// ListClientGrants returns the client's grants, only userID's when it
	// is not empty, in session id order; empty when none.
	ListClientGrants(ctx context.Context, clientID, userID string) ([]gatehouse.ClientGrant, error)
}

// Queries is every data operation; both Store and Tx offer it.
type Queries interface {
	SigningKeys
	Events
	Users
	Sessions
	RefreshTokens
	OneTimeTokens
	Roles
	AuditLogs
	Webhooks
	MFA
	WebAuthn
	OAuthAccounts
	Devices
	Clients
}

// Emitter records a domain event inside tx (an *events.Bus): its audit
// row, and its fan-out to the handlers that want it, commit with tx.
type Emitter interface {
	Emit(ctx context.Context, tx Tx, e gatehouse.Event) (gatehouse.Event, error)
}

// Mailer enqueues a templated email inside tx (gatehouse.MailTemplate*,
// with data under gatehouse.MailKey*): it is sent only if tx commits.
type Mailer interface {
	SendTx(ctx context.Context, tx Tx, to, template string, data map[string]any) error
}

// Tx is a database transaction. Its Queries run inside it; SQLTx exposes the
// underlying *sql.Tx so the job queue can insert jobs atomically with the
// change that causes them.
//
// After one of its methods fails, ErrConflict and ErrNotFound included, a
// Tx may refuse every further statement: PostgreSQL aborts the transaction
// on a failed statement (SQLite does not). Return the error so InTx rolls
// back, and retry, if at all, in a new transaction.
type Tx interface {
	Queries
	SQLTx() *sql.Tx
	// Dialect names the engine the transaction runs on.
	Dialect() Dialect
	// AfterCommit runs fn once the transaction has committed, in the
	// order registered; never when it rolls back (a retried transaction
	// registers afresh on each attempt). For effects outside the
	// database that must not claim a change that did not happen:
	// metrics counters, mainly. fn must be quick and must not fail.
	AfterCommit(fn func())
}

// Store is the database. Queries called on it run outside any transaction.
type Store interface {
	Queries
	// InTx runs fn in a transaction: committed when fn returns nil, rolled
	// back (and fn's error returned) otherwise, and rolled back on panic.
	InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	// LinkAuditLogs links the audit rows still waiting for their place in
	// the chain (written by a process that died between its commit and
	// the linking step; see CreateAuditLog) and reports how many.
	LinkAuditLogs(ctx context.Context) (int, error)
	// Dialect names the engine.
	Dialect() Dialect
	// DB exposes the pool for the job queue and pool metrics.
	DB() *sql.DB
	// Close releases the pool.
	Close() error
}
