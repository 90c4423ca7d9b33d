package mfa

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// newTOTPKey makes a fresh 160-bit TOTP secret and its Key URI
// (otpauth://totp/<issuer>:<account>?secret=...&issuer=...). The label's
// two parts are separated by the one unescaped colon, so each is
// percent-encoded with its own colons too: the library leaves them as they
// are, and an issuer such as "Acme: Staging" would otherwise make
// authenticator apps split the label in the wrong place.
func newTOTPKey(issuer, account string) (*otp.Key, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, SecretSize: 20})
	if err != nil {
		return nil, err
	}
	generated, err := url.Parse(key.URL())
	if err != nil {
		return nil, fmt.Errorf("totp key uri: %w", err)
	}
	// The query (secret, issuer, period, algorithm, digits) is encoded
	// with %20 for spaces, which apps read more reliably than '+'; only the
	// issuer can hold a colon, legal in a query but encoded too, so no app
	// that looks for the label's colon in the whole URL is misled.
	query := strings.ReplaceAll(generated.RawQuery, ":", "%3A")
	return otp.NewKeyFromURL("otpauth://totp/" + labelEscape(issuer) + ":" + labelEscape(account) + "?" + query)
}

// labelEscape percent-encodes one part of a Key URI label: what a path
// segment needs, and the colon that separates issuer from account.
func labelEscape(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}
