package gatehouse

import (
	"strings"
	"time"
)

// Role is a named set of permissions. System roles (admin, moderator,
// user) exist from the first start and can be neither deleted nor renamed.
type Role struct {
	ID          string
	Name        string
	Description string
	// Permissions are "resource:action" strings; "*" grants everything and
	// "resource:*" every action on the resource.
	Permissions []string
	System      bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// The system roles.
const (
	RoleAdmin     = "admin"
	RoleModerator = "moderator"
	RoleUser      = "user"
)

// ValidPermission reports whether p is "*", "resource:*" or
// "resource:action", where resource and action are lower-case letters,
// digits, '_', '-' or '.'.
func ValidPermission(p string) bool {
	if p == "*" {
		return true
	}
	res, act, ok := strings.Cut(p, ":")
	if !ok || !validPart(res) {
		return false
	}
	return act == "*" || validPart(act)
}

func validPart(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// ValidRoleName reports whether n can name a role: 1 to 64 lower-case
// letters, digits, '_', '-' or '.'.
func ValidRoleName(n string) bool { return validPart(n) }
