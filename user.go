package gatehouse

import "time"

// User is an account. Its methods are the business rules of account state;
// services load a User, call them, and store the result.
type User struct {
	ID            string
	Email         Email
	EmailVerified bool
	Name          string
	PhoneNumber   string // E.164, or empty
	// PasswordHash is an Argon2id PHC string, or empty for accounts that
	// sign in only with passkeys, magic links or a social provider.
	PasswordHash string
	// FailedLogins counts consecutive failed password attempts.
	FailedLogins int
	// LockedUntil is when a temporary lock ends; nil when not locked.
	LockedUntil *time.Time
	// LockedByAdmin locks until an administrator unlocks.
	LockedByAdmin bool
	LockReason    string
	MFAEnabled    bool
	MFAMethods    []string
	Roles         []string
	// NotificationPreferences maps an alert type to the channels it uses.
	NotificationPreferences map[string][]string
	CreatedAt               time.Time
	UpdatedAt               time.Time
	LastLoginAt             *time.Time
}

// Locked reports whether the account refuses sign-in at time now.
func (u *User) Locked(now time.Time) bool {
	return u.LockedByAdmin || (u.LockedUntil != nil && now.Before(*u.LockedUntil))
}

// VerifyEmail marks the address as proven.
func (u *User) VerifyEmail(now time.Time) {
	u.EmailVerified = true
	u.UpdatedAt = now
}

// RecordFailedLogin counts a wrong password. When the count reaches
// threshold the account is locked for duration and the count restarts; it
// reports whether this attempt caused the lock.
func (u *User) RecordFailedLogin(now time.Time, threshold int, duration time.Duration) (lockedNow bool) {
	if u.Locked(now) {
		// Guesses during a lock change nothing: counting them would lock
		// the owner out again at their first typo after the lock ends.
		return false
	}
	if u.LockedUntil != nil {
		u.LockedUntil = nil // an expired lock starts a fresh count
		u.FailedLogins = 0
	}
	u.FailedLogins++
	u.UpdatedAt = now
	if threshold > 0 && u.FailedLogins >= threshold && !u.Locked(now) {
		until := now.Add(duration)
		u.LockedUntil = &until
		u.FailedLogins = 0
		return true
	}
	return false
}

// LockUntil locks the account until t (a temporary lock).
func (u *User) LockUntil(t time.Time, reason string, now time.Time) {
	u.LockedUntil = &t
	u.LockReason = reason
	u.UpdatedAt = now
}

// LockByAdmin locks the account until an administrator unlocks it.
func (u *User) LockByAdmin(reason string, now time.Time) {
	u.LockedByAdmin = true
	u.LockReason = reason
	u.UpdatedAt = now
}

// Unlock lifts every lock and forgets failed attempts.
func (u *User) Unlock(now time.Time) {
	u.LockedByAdmin = false
	u.LockedUntil = nil
	u.LockReason = ""
	u.FailedLogins = 0
	u.UpdatedAt = now
}

// RecordLogin notes a successful sign-in: failures are forgotten.
func (u *User) RecordLogin(now time.Time) {
	u.FailedLogins = 0
	if u.LockedUntil != nil && !now.Before(*u.LockedUntil) {
		u.LockedUntil = nil
	}
	t := now
	u.LastLoginAt = &t
	u.UpdatedAt = now
}

// HasPassword reports whether the account can sign in with a password.
func (u *User) HasPassword() bool { return u.PasswordHash != "" }
