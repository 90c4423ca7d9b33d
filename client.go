package gatehouse

import "time"

// Client is an application registered to sign users in "with Gatehouse"
// over OpenID Connect (internal/oidcprovider). Its ID is the OAuth
// client_id. A confidential client proves itself with a secret of which
// only the SHA-256 is stored (the secret has 256 random bits, so the hash
// cannot be reversed by guessing); a public client (a browser or native
// app) has none and must use PKCE.
type Client struct {
	ID   string
	Name string
	// SecretHash is the SHA-256 of the client secret; nil for a public
	// client.
	SecretHash []byte
	// RedirectURIs are matched exactly (RFC 9700 §4.1.3): no prefixes,
	// no wildcards.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where /oauth2/end_session may send the
	// browser back to, matched exactly.
	PostLogoutRedirectURIs []string
	// GrantTypes the client may use: authorization_code, refresh_token,
	// client_credentials.
	GrantTypes []string
	// Scopes the client may ask for: openid, profile, email,
	// offline_access and permission strings ("users:read").
	Scopes []string
	Public bool
	// FirstParty clients are the deployment's own apps: their users are
	// not asked for consent.
	FirstParty bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// The grant types a Client may be allowed.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// AuthRequest is one OpenID Connect authorization request, from the
// moment the client sends the browser to /oauth2/authorize until its
// authorization code is spent: what the client asked for, who signed in
// for it, and the code (stored only as a SHA-256, single use).
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	// Prompt holds the prompt values (none, login, consent).
	Prompt []string
	// MaxAge is the max_age parameter in seconds; nil when not sent.
	MaxAge    *int
	LoginHint string
	CreatedAt time.Time
	// ExpiresAt ends the request, signed in or not.
	ExpiresAt time.Time
	// LoginAt is when the browser was sent to sign in afresh (prompt=login,
	// max_age): a session authenticated before it does not satisfy the
	// request.
	LoginAt *time.Time
	// Set once the user signed in and consented.
	UserID    string
	SessionID string // the browser session (sid)
	AuthTime  *time.Time
	AMR       []string
	// CodeHash is the SHA-256 of the authorization code, set once.
	CodeHash []byte
	// CodeExpiresAt is 60 s after the code was issued.
	CodeExpiresAt *time.Time
	// UsedAt is when the code was exchanged.
	UsedAt *time.Time
	// GrantSessionID is the session the code's exchange started: a replay
	// of the code ends it (RFC 6749 §4.1.2).
	GrantSessionID string
}

// Done reports whether a user signed in for the request.
func (r AuthRequest) Done() bool { return r.UserID != "" && r.AuthTime != nil }

// Consent records that a user allowed a client the scopes listed.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ClientGrant ties a session started for a client (by an authorization
// code exchange) to that client and the scopes granted: its refresh
// tokens are the session's refresh family, and only that client may
// present them.
type ClientGrant struct {
	SessionID string
	ClientID  string
	UserID    string
	Scopes    []string
	CreatedAt time.Time
}
