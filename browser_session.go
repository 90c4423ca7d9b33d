package gatehouse

import "time"

// BrowserSession is a browser signed in through the hosted pages: the
// Gatehouse session its cookie refers to, as of the request. The pages
// (internal/web) produce it; the OpenID Provider reads it to know who is
// signed in on the browser that opened its authorize endpoint.
type BrowserSession struct {
	// UserID is the signed-in user.
	UserID string
	// SessionID is the normal Gatehouse session behind the browser's
	// cookie: it is listed with the user's sessions, and revoking it signs
	// the browser out.
	SessionID string
	// AuthTime is when the user last proved who they are in this session
	// (OIDC auth_time).
	AuthTime time.Time
	// AMR lists the authentication methods used (RFC 8176: pwd, otp, sms,
	// hwk, swk, email ...).
	AMR []string
	// MFA is true when two factors were proven.
	MFA bool
}
