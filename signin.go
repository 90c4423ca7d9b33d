package gatehouse

import "time"

// ClientInfo describes the client a sign-in or session comes from: its
// address and agent as the HTTP layer saw them, the device it says it is,
// and what the sign-in learned of it on the way (the registered device,
// the location, the trust score the session starts with).
type ClientInfo struct {
	IP        string
	UserAgent string
	// DeviceID is the client's own device id, as sent.
	DeviceID string
	// DeviceName names the client's device for people ("Firefox on
	// Linux"), from its User-Agent.
	DeviceName string `json:",omitempty"`
	// DeviceRef is the registered device (see internal/device) the session is
	// from; Start records it when set.
	DeviceRef string `json:",omitempty"`
	// Fingerprint identifies the device (see internal/device), fixed when the
	// sign-in begins so a later step (an MFA challenge) keeps it.
	Fingerprint string `json:",omitempty"`
	// Location is where IP is ("Berlin, DE"), when known.
	Location string `json:",omitempty"`
	// TrustScore is the new session's trust score (1-100); 0 means not
	// scored, and Start uses 50.
	TrustScore int `json:",omitempty"`
}

// Principal is who an access token speaks for, once verified.
type Principal struct {
	UserID    string
	SessionID string
	AMR       []string
	AuthTime  time.Time
	TokenID   string
	ExpiresAt time.Time
	// TrustScore is the session's trust score (0-100) as of its last
	// sign-in or refresh, carried in the cache's "alive" mark, so reading
	// it costs no database query.
	TrustScore int
}

// SignInResult is what a sign-in answers: a signed-in session's
// credentials, or the challenge it must meet first.
//
// When the account has a second factor, a first-factor sign-in answers
// only User and Challenge: the session starts once the challenge is met.
type SignInResult struct {
	User         User
	Session      Session
	AccessToken  string
	ExpiresIn    int
	RefreshToken string
	Challenge    *MFAChallenge
}

// PendingSignIn is a sign-in whose first factor passed, held while it
// meets a second factor (an MFA challenge) or an emailed confirmation (the
// step-up of a risky sign-in): who signs in, from which client, the
// factors proven so far (RFC 8176 amr values) and how ("password",
// "magic_link", "passkey", "oauth:<provider>", ...).
type PendingSignIn struct {
	UserID string     `json:"user_id"`
	Client ClientInfo `json:"meta"`
	AMR    []string   `json:"amr"`
	Method string     `json:"method"`
}
