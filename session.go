package gatehouse

import "time"

// Session is one signed-in client. Access tokens carry its id (sid), so
// revoking it stops them at once; its refresh tokens form one family.
type Session struct {
	ID           string
	UserID       string
	CreatedAt    time.Time
	LastActiveAt time.Time
	// ExpiresAt is the absolute end, whatever the activity.
	ExpiresAt time.Time
	IPAddress string
	UserAgent string
	DeviceID  string
	// DeviceRef is the id of the device record the session is from (see
	// internal/device); empty when none. DeviceID is the client's own id.
	DeviceRef  string
	Location   string
	TrustScore int
	// AMR lists the authentication methods used (RFC 8176: pwd, otp, sms,
	// hwk, swk, email ...).
	AMR []string
	MFA bool
	// AuthTime is when the user last proved who they are in this session
	// (login or step-up); recent-auth checks read it.
	AuthTime  time.Time
	RevokedAt *time.Time
}

// Active reports whether the session still admits requests at now, given
// the idle timeout (zero disables it).
func (s *Session) Active(now time.Time, idle time.Duration) bool {
	if s.RevokedAt != nil || !now.Before(s.ExpiresAt) {
		return false
	}
	return idle <= 0 || now.Sub(s.LastActiveAt) < idle
}

// RefreshToken is one link of a session's refresh-token family. Only the
// SHA-256 of the token is stored.
type RefreshToken struct {
	ID        string
	SessionID string
	UserID    string
	Hash      []byte
	CreatedAt time.Time
	// ExpiresAt is the family's absolute end (GATEHOUSE_REFRESH_TOKEN_TTL
	// from the session's start); rotation never extends it.
	ExpiresAt time.Time
	// UsedAt is set when the token was rotated; presenting it again is
	// reuse, and revokes the family.
	UsedAt *time.Time
}

// OneTimePurpose names what a one-time token proves.
type OneTimePurpose string

// The one-time token purposes.
const (
	PurposeVerifyEmail   OneTimePurpose = "verify_email"
	PurposeResetPassword OneTimePurpose = "reset_password"
	PurposeMagicLink     OneTimePurpose = "magic_link"
	// PurposeChangeEmail proves the new address of an email change; the
	// token's Data is that address.
	PurposeChangeEmail OneTimePurpose = "change_email"
)

// OneTimeToken is a single-use secret sent to the user (email link). Only
// its SHA-256 is stored; it is consumed atomically.
type OneTimeToken struct {
	ID        string
	UserID    string
	Purpose   OneTimePurpose
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
	// Data is what the token carries besides the user, for purposes that
	// need it (the new address of an email change); "" for most.
	Data string
}
