// Package fingerprint names the devices clients sign in from: the device
// cookie a browser keeps, the parsed User-Agent, and the fingerprint a
// device is stored under (from the client's own device id, else its
// cookie, else its User-Agent alone, which never counts as a known
// device).
package fingerprint

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// CookieName is the long-lived cookie that names a browser's device (set
// Secure, HttpOnly, SameSite=Lax, Path=/ by the HTTP layer). Its value is
// a random secret the server mints (NewCookie); only its hash is stored.
const CookieName = "__Host-gh_device"

// CookieMaxAge is how long the device cookie lives in the browser.
const CookieMaxAge = 400 * 24 * 60 * 60 // seconds: the longest browsers keep

// cookieBytes is the entropy of a device cookie.
const cookieBytes = 32

// cookieLen is the length of a device cookie: cookieBytes, base64url
// without padding.
var cookieLen = base64.RawURLEncoding.EncodedLen(cookieBytes)

// NewCookie mints a device cookie value: 32 random bytes, base64url
// without padding. It is a bearer secret of the browser that holds it:
// nobody else can compute it, and no two browsers share one.
func NewCookie() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(cookieBytes))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics instead)
	return b
}

// UA is what a fingerprint keeps of a User-Agent: the browser family, the
// OS family and the platform, never versions, so an update is the same
// device.
type UA struct {
	Browser  string // Chrome, Firefox, Safari, Edge, Opera, Samsung Internet, or the product name
	OS       string // Windows, macOS, iOS, Android, ChromeOS, Linux, Other
	Platform string // desktop, mobile, tablet
}

// Name is how the device is shown: "Firefox on Linux".
func (u UA) Name() string { return u.Browser + " on " + u.OS }

// ParseUA reads a User-Agent header, minimally: families only, by the
// tokens browsers have used for years. Anything unknown is "Other", or for
// a non-browser client its product name ("curl").
func ParseUA(s string) UA {
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				return true
			}
		}
		return false
	}
	u := UA{Browser: "Other", OS: "Other", Platform: "desktop"}
	switch {
	case has("Edg/", "Edge/", "EdgA/", "EdgiOS/"):
		u.Browser = "Edge"
	case has("OPR/", "Opera"):
		u.Browser = "Opera"
	case has("SamsungBrowser/"):
		u.Browser = "Samsung Internet"
	case has("Firefox/", "FxiOS/"):
		u.Browser = "Firefox"
	case has("Chrome/", "CriOS/", "Chromium/"):
		u.Browser = "Chrome"
	case has("Safari/") && has("Version/"):
		u.Browser = "Safari"
	case !strings.HasPrefix(s, "Mozilla/"):
		if product, _, _ := strings.Cut(s, "/"); product != "" && len(product) <= 40 && !strings.ContainsAny(product, " ;()") {
			u.Browser = product
		}
	}
	switch {
	case has("iPhone", "iPad", "iPod"):
		u.OS = "iOS"
	case has("Android"):
		u.OS = "Android"
	case has("Windows"):
		u.OS = "Windows"
	case has("CrOS"):
		u.OS = "ChromeOS"
	case has("Macintosh", "Mac OS X"):
		u.OS = "macOS"
	case has("Linux", "X11"):
		u.OS = "Linux"
	}
	switch {
	case has("iPad", "Tablet") || (u.OS == "Android" && !has("Mobile")):
		u.Platform = "tablet"
	case has("Mobile", "iPhone", "iPod"):
		u.Platform = "mobile"
	}
	return u
}

// fingerprintDomain separates these hashes from every other SHA-256 use.
const fingerprintDomain = "gatehouse.device.v1"

func digest(kind, value string) string {
	h := sha256.New()
	h.Write([]byte(fingerprintDomain + "\x00" + kind + "\x00" + value))
	return hex.EncodeToString(h.Sum(nil))
}

// Fingerprint is a device's identity for one user (hex SHA-256): from the
// client's own device id when it sends one, else from the device cookie
// when it has a cookie's shape (see ValidCookie), else from the
// User-Agent's browser family, OS family and platform. The id and the
// cookie are secrets of the client and hashed, so the raw values are
// stored nowhere.
//
// A User-Agent is no secret: anyone can send any, and every browser of a
// family sends the same one. It still tells a client that keeps no cookie
// and sends no id (a script, a server) from its other devices, so such a
// client is not a new device at every sign-in; but a device named only by
// it proves nothing, so it never counts as known or trusted for risk (see
// ByUserAgent).
func Fingerprint(clientID, cookie, userAgent string) string {
	switch {
	case clientID != "":
		return digest("id", clientID)
	case ValidCookie(cookie):
		return digest("cookie", cookie)
	}
	return uaFingerprint(userAgent)
}

func uaFingerprint(userAgent string) string {
	u := ParseUA(userAgent)
	return digest("ua", u.Browser+"\x00"+u.OS+"\x00"+u.Platform)
}

// ByUserAgent reports whether a device's fingerprint comes from its
// User-Agent alone (a client without device id or cookie): such a device
// is recorded, but for risk it is as good as new and never trusted.
func ByUserAgent(fingerprint, userAgent string) bool {
	return fingerprint == uaFingerprint(userAgent)
}

// ValidCookie reports whether a device cookie value has the shape of one
// NewCookie mints (43 base64url characters); anything else is ignored.
//
// Cookies set by earlier versions held the public fingerprint of the
// browser's User-Agent (64 hex digits). Such a value is no longer valid: the browser is given a fresh random cookie at its next sign-in and
// that sign-in is a new device (one new-device alert, and a device trusted
// before must be trusted again). That is deliberate: the old value was
// computable by anyone, so it cannot vouch for a device.
func ValidCookie(v string) bool {
	if len(v) != cookieLen {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil && len(b) == cookieBytes
}

type cookieKey struct{}

// WithCookie returns ctx carrying the request's device cookie value (the
// browser's, or the one just minted for it), for sign-ins to read (see
// CookieFrom).
func WithCookie(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, cookieKey{}, v)
}

// CookieFrom returns the device cookie of the request in ctx ("" when none).
func CookieFrom(ctx context.Context) string {
	v, _ := ctx.Value(cookieKey{}).(string)
	return v
}
