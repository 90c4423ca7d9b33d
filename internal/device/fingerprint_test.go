package device_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/device"
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
	for ua, want := range map[string]device.UA{
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
		require.Equal(t, want, device.ParseUA(ua), ua)
	}
	require.Equal(t, "Firefox on Linux", device.ParseUA(firefoxLinux).Name())
}

var agents = []string{firefoxLinux, firefoxLinuxV2, chromeWindows, safariIPhone, safariMac, edgeWindows, chromeAndroid, androidTablet, "curl/8.5.0"}

// Property 80: a fingerprint is made from the client's device id when it
// sends one (whatever the cookie and User-Agent), else from a valid device
// cookie, else from the User-Agent's browser family, OS family and
// platform only: versions do not matter, families do. It always has the
// shape of a valid cookie, so the cookie can carry it.
func TestProperty80_FingerprintComposition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := rapid.StringMatching(`[A-Za-z0-9._:-]{1,128}`).Draw(t, "device_id")
		ua1 := rapid.SampledFrom(agents).Draw(t, "ua1")
		ua2 := rapid.SampledFrom(agents).Draw(t, "ua2")
		cookie := rapid.StringMatching(`[0-9a-f]{64}`).Draw(t, "cookie")
		junk := rapid.StringMatching(`[A-Za-z0-9]{0,70}`).Draw(t, "junk_cookie")

		// The client id wins over cookie and User-Agent.
		require.Equal(t, device.Fingerprint(id, cookie, ua1), device.Fingerprint(id, "", ua2))
		require.NotEqual(t, device.Fingerprint(id, "", ua1), device.Fingerprint("", "", ua1))
		// A valid cookie wins over the User-Agent; a malformed one is ignored.
		require.Equal(t, cookie, device.Fingerprint("", cookie, ua1))
		if !device.ValidCookie(junk) {
			require.Equal(t, device.Fingerprint("", "", ua1), device.Fingerprint("", junk, ua1))
		}
		// The User-Agent counts by families and platform alone.
		same := device.ParseUA(ua1) == device.ParseUA(ua2)
		require.Equal(t, same, device.Fingerprint("", "", ua1) == device.Fingerprint("", "", ua2))
		for _, fp := range []string{device.Fingerprint(id, "", ua1), device.Fingerprint("", "", ua1)} {
			require.True(t, device.ValidCookie(fp), fp)
		}
	})
}
