package device

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// CookieName is the long-lived cookie that keeps a browser's fingerprint
// (set Secure, HttpOnly, SameSite=Lax, Path=/ by the HTTP layer).
const CookieName = "__Host-gh_device"

// CookieMaxAge is how long the device cookie lives in the browser.
const CookieMaxAge = 400 * 24 * 60 * 60 // seconds: the longest browsers keep

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
// client's own device id when it sends one; else from the device cookie
// when it carries a valid fingerprint; else from the User-Agent's browser
// family, OS family and platform. A client id is hashed, so the raw value
// is stored nowhere.
func Fingerprint(clientID, cookie, userAgent string) string {
	switch {
	case clientID != "":
		return digest("id", clientID)
	case ValidCookie(cookie):
		return cookie
	}
	u := ParseUA(userAgent)
	return digest("ua", u.Browser+"\x00"+u.OS+"\x00"+u.Platform)
}

// ValidCookie reports whether a device cookie value has a fingerprint's
// shape (64 lower-case hex digits); anything else is ignored.
func ValidCookie(v string) bool {
	if len(v) != 64 {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

type cookieKey struct{}

// WithCookie returns ctx carrying the request's device cookie value, for
// sign-ins to read (see CookieFrom).
func WithCookie(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, cookieKey{}, v)
}

// CookieFrom returns the device cookie of the request in ctx ("" when none).
func CookieFrom(ctx context.Context) string {
	v, _ := ctx.Value(cookieKey{}).(string)
	return v
}
