package gatehouse

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ParsePhoneNumber accepts a phone number in E.164 form (+ and the country
// code), checks it is a possible and valid number for its region, and
// returns it normalised to E.164. field names the input in errors.
func ParsePhoneNumber(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") {
		return "", InvalidField(field, "phone number must be in E.164 form, starting with + and the country code, e.g. +14155550100")
	}
	if strings.IndexFunc(s[1:], func(r rune) bool { return !strings.ContainsRune("0123456789 -().", r) }) >= 0 {
		return "", InvalidField(field, "phone number may hold only digits, spaces and - ( ) . after the +")
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", InvalidField(field, "phone number is not a valid number; use E.164 form, e.g. +14155550100")
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}
