package fingerprint_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/fingerprint"
)

const (
	firefoxLinux   = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	firefoxLinuxV2 = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
	chromeWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	safariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	safariMac      = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
	edgeWindows    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
	chromeAndroid  = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
	androidTablet  = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

func TestParseUA(t *testing.T) {
	for ua, want := range map[string]fingerprint.UA{
		firefoxLinux:  {Browser: "Firefox", OS: "Linux", Platform: "desktop"},
		chromeWindows: {Browser: "Chrome", OS: "Windows", Platform: "desktop"},
		safariIPhone:  {Browser: "Safari", OS: "iOS", Platform: "mobile"},
		safariMac:     {Browser: "Safari", OS: "macOS", Platform: "desktop"},
		edgeWindows:   {Browser: "Edge", OS: "Windows", Platform: "desktop"},
		chromeAndroid: {Browser: "Chrome", OS: "Android", Platform: "mobile"},
		androidTablet: {Browser: "Chrome", OS: "Android", Platform: "tablet"},
		"curl/8.5.0":  {Browser: "curl", OS: "Other", Platform: "desktop"},
		"":            {Browser: "Other", OS: "Other", Platform: "desktop"},
	} {
		require.Equal(t, want, fingerprint.ParseUA(ua), ua)
	}
	require.Equal(t, "Firefox on Linux", fingerprint.ParseUA(firefoxLinux).Name())
}

var agents = []string{firefoxLinux, firefoxLinuxV2, chromeWindows, safariIPhone, safariMac, edgeWindows, chromeAndroid, androidTablet, "curl/8.5.0"}

// Property 80: a fingerprint is made from the client's device id when it
// sends one (whatever the cookie), else from a valid device cookie, else
// from the User-Agent's browser family, OS family and platform; only the
// last is weak: only it matches ByUserAgent. Every one is a hex SHA-256,
// and never the cookie itself (only its hash is stored).
func TestProperty80_FingerprintComposition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := rapid.StringMatching(`[A-Za-z0-9._:-]{1,128}`).Draw(t, "device_id")
		cookie := fingerprint.NewCookie()
		other := fingerprint.NewCookie()
		junk := rapid.StringMatching(`[A-Za-z0-9]{0,70}`).Draw(t, "junk_cookie")
		ua := rapid.SampledFrom(agents).Draw(t, "ua")
		ua2 := rapid.SampledFrom(agents).Draw(t, "ua2")

		fp := func(id, cookie, ua string, strong bool) string {
			f := fingerprint.Fingerprint(id, cookie, ua)
			require.Regexp(t, `^[0-9a-f]{64}$`, f)
			require.Equal(t, !strong, fingerprint.ByUserAgent(f, ua))
			return f
		}
		// The client id wins over the cookie and the User-Agent.
		require.Equal(t, fp(id, cookie, ua, true), fp(id, "", ua2, true))
		require.Equal(t, fp(id, other, ua, true), fp(id, junk+"x", ua, true))
		// A valid cookie is hashed and wins over the User-Agent; a
		// different cookie is a different fingerprint.
		require.NotEqual(t, cookie, fp("", cookie, ua, true))
		require.Equal(t, fp("", cookie, ua, true), fp("", cookie, ua2, true))
		require.NotEqual(t, fp("", cookie, ua, true), fp("", other, ua, true))
		require.NotEqual(t, fp("", cookie, ua, true), fp(cookie, "", ua, true), "an id and a cookie never collide")
		// Else the User-Agent's families, versions aside.
		if !fingerprint.ValidCookie(junk) {
			require.Equal(t, fp("", junk, ua, false), fp("", "", ua, false))
		}
		sameFamily := fingerprint.ParseUA(ua) == fingerprint.ParseUA(ua2)
		require.Equal(t, sameFamily, fp("", "", ua, false) == fp("", "", ua2, false))
	})
}

// Device cookies are 32 random bytes, base64url: never two alike, and
// only that shape is valid. The public User-Agent hash earlier versions
// set (64 hex digits) is not.
func TestDeviceCookieShape(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		c := fingerprint.NewCookie()
		require.Len(t, c, 43)
		require.True(t, fingerprint.ValidCookie(c), c)
		require.False(t, seen[c])
		seen[c] = true
	}
	for _, bad := range []string{"", "not-a-fingerprint", strings.Repeat("a", 64), strings.Repeat("a", 42),
		strings.Repeat("a", 44), strings.Repeat("a", 42) + "=", strings.Repeat("a", 42) + "+", strings.Repeat("a", 42) + "B"} {
		require.False(t, fingerprint.ValidCookie(bad), bad)
	}
}
