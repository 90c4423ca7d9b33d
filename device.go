package gatehouse

import "time"

// Device is a client a user signs in from, told apart by a fingerprint
// (see internal/device). Sessions refer to it (Session.DeviceRef, a plain
// reference that outlives the device's deletion).
type Device struct {
	ID          string
	UserID      string
	Fingerprint string // hex SHA-256, unique per user
	Name        string // e.g. "Firefox on Linux"
	UserAgent   string
	Trusted     bool
	FirstSeenAt time.Time
	LastSeenAt  time.Time
	LastIP      string
}
