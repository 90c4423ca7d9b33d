package gatehouse

import "time"

// The second-factor methods.
const (
	MFAMethodTOTP       = "totp"
	MFAMethodSMS        = "sms"
	MFAMethodBackupCode = "backup_code"
)

// MFAFactor is one second factor of an account: a TOTP secret or a phone
// number for SMS codes. It counts only once ActivatedAt is set, which
// happens when the user proves a code from it.
type MFAFactor struct {
	ID     string
	UserID string
	// Method is MFAMethodTOTP or MFAMethodSMS.
	Method string
	// Secret is the TOTP secret sealed under the master key (empty for SMS).
	Secret []byte
	// PhoneNumber is the E.164 number SMS codes go to (empty for TOTP).
	PhoneNumber string
	// LastUsedStep is the TOTP time step of the last accepted code; a code
	// of this step or an earlier one is refused, so no code works twice.
	LastUsedStep int64
	CreatedAt    time.Time
	ActivatedAt  *time.Time
}

// Active reports whether the factor has been proven and so protects the
// account.
func (f MFAFactor) Active() bool { return f.ActivatedAt != nil }

// MFAChallenge is the open second step of a sign-in whose first factor
// passed: the client proves a code against ID before ExpiresAt.
type MFAChallenge struct {
	ID        string
	Methods   []string
	ExpiresAt time.Time
}

// PurposeMFASMS is the one-time token purpose of SMS codes; the stored
// hash binds each code to the challenge or setup it was sent for.
const PurposeMFASMS OneTimePurpose = "mfa_sms"
