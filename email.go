package gatehouse

import (
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Email is a normalised email address: trimmed, lower-cased, a single
// RFC 5322 addr-spec without display name, at most 254 octets with a local
// part of at most 64. Two spellings that differ only in case are one Email,
// so they are one account.
type Email string

// ParseEmail validates and normalises s.
func ParseEmail(s string) (Email, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", InvalidField("body.email", "email is required")
	}
	if len(s) > 254 {
		return "", InvalidField("body.email", "email must be at most 254 characters")
	}
	if !utf8.ValidString(s) || strings.ContainsAny(s, "<>\"() ,;:\\[]\r\n\t") {
		return "", InvalidField("body.email", "email is not a valid address")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", InvalidField("body.email", "email is not a valid address")
	}
	local, domain, ok := strings.Cut(addr.Address, "@")
	if !ok || local == "" || len(local) > 64 || !strings.Contains(domain, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", InvalidField("body.email", "email is not a valid address")
	}
	return Email(strings.ToLower(addr.Address)), nil
}

// String returns the address.
func (e Email) String() string { return string(e) }

// Domain returns the part after the @.
func (e Email) Domain() string {
	_, d, _ := strings.Cut(string(e), "@")
	return d
}

// Local returns the part before the @.
func (e Email) Local() string {
	l, _, _ := strings.Cut(string(e), "@")
	return l
}
