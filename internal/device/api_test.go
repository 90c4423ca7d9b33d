package device_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest/risktest"
	"github.com/gatehouse-auth/gatehouse/internal/device"
	"github.com/gatehouse-auth/gatehouse/internal/fingerprint"
)

// A device is registered on the first sign-in and reused on the next; a
// second device is new: device.new, and an email to the user. Trusting it
// raises its session's trust score at the next refresh; removing a device
// ends its sessions at once.
func TestDeviceLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		email, uid := newUser(t, env)
		firefox, chrome := client{UA: firefoxLinux}, client{UA: chromeWindows}

		s1 := login(t, env, email, firefox)
		list := devicesOf(t, env, s1.Access)
		require.Len(t, list, 1)
		require.Equal(t, "Firefox on Linux", list[0]["name"])
		require.Equal(t, "127.0.0.1", list[0]["last_ip"])
		require.Equal(t, false, list[0]["trusted"])
		require.Equal(t, 0, auditCount(t, env, uid, "device.new"), "an account's first device is no news")

		env.Clock.Advance(time.Minute)
		login(t, env, email, client{UA: firefoxLinuxV2, IP: "198.51.100.7", Browser: firefoxLinux})
		again := devicesOf(t, env, s1.Access)
		require.Len(t, again, 1, "the same browser, updated: same device, by its cookie")
		require.Equal(t, list[0]["id"], again[0]["id"])
		require.Equal(t, "198.51.100.7", again[0]["last_ip"])
		require.Equal(t, list[0]["first_seen_at"], again[0]["first_seen_at"])
		require.NotEqual(t, list[0]["last_seen_at"], again[0]["last_seen_at"])

		s2 := login(t, env, email, chrome)
		require.Len(t, devicesOf(t, env, s1.Access), 2)
		require.Equal(t, 1, auditCount(t, env, uid, "device.new"))
		text := risktest.WaitMail(t, env, email, "New sign-in")
		require.Contains(t, text, "Chrome on Windows")
		require.Contains(t, text, "127.0.0.1")

		var chromeID, firefoxID string
		for _, d := range devicesOf(t, env, s1.Access) {
			if d["name"] == "Chrome on Windows" {
				chromeID = d["id"].(string)
			} else {
				firefoxID = d["id"].(string)
			}
		}

		// Trust raises the score from the next refresh on.
		before := sessionTrust(t, env, s2.Access, s2.SessionID)
		r := env.Do("PUT", "/devices/"+chromeID+"/trust", nil, s2.Access)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Equal(t, true, r.JSON["trusted"])
		r = do(env, chrome, "POST", "/auth/refresh", map[string]any{"refresh_token": s2.Refresh}, "")
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		s2.Access, s2.Refresh = r.Str("access_token"), r.Str("refresh_token")
		after := sessionTrust(t, env, s2.Access, s2.SessionID)
		require.Greater(t, after, before)
		r = env.Do("PUT", "/devices/"+chromeID+"/trust", map[string]any{"trusted": false}, s2.Access)
		require.Equal(t, false, r.JSON["trusted"])

		// Somebody else's device is not found.
		otherEmail, _ := newUser(t, env)
		other := login(t, env, otherEmail, firefox)
		require.Equal(t, http.StatusNotFound, env.Do("PUT", "/devices/"+chromeID+"/trust", nil, other.Access).Status)
		require.Equal(t, http.StatusNotFound, env.Do("DELETE", "/devices/"+chromeID, nil, other.Access).Status)
		require.Len(t, devicesOf(t, env, other.Access), 1)

		// Removing Firefox ends both Firefox sessions at once, not Chrome's.
		r = env.Do("DELETE", "/devices/"+firefoxID, nil, s2.Access)
		require.Equal(t, http.StatusNoContent, r.Status, string(r.Raw))
		require.Equal(t, http.StatusUnauthorized, env.Do("GET", "/devices", nil, s1.Access).Status)
		r = env.Do("POST", "/auth/refresh", map[string]any{"refresh_token": s1.Refresh}, "")
		require.Equal(t, "invalid_refresh_token", r.Code())
		require.Len(t, devicesOf(t, env, s2.Access), 1)
		require.Equal(t, 2, auditCount(t, env, uid, "session.revoked"))
		require.Equal(t, http.StatusNotFound, env.Do("DELETE", "/devices/"+firefoxID, nil, s2.Access).Status)
	})
}

// The client's device_id names the device whatever the browser, and the
// device cookie the server sets keeps a browser's device.
func TestDeviceIDAndCookie(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		email, _ := newUser(t, env)
		a := login(t, env, email, client{UA: firefoxLinux, DeviceID: "phone-1", NoCookie: true})
		login(t, env, email, client{UA: chromeWindows, DeviceID: "phone-1", NoCookie: true})
		require.Len(t, devicesOf(t, env, a.Access), 1)

		safari := &risktest.Browser{UA: safariMac}
		r := safari.Do(env, "POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
		require.Equal(t, http.StatusOK, r.Status)
		cookie := risktest.SetCookie(r)
		require.NotNil(t, cookie, "the sign-in sets the device cookie")
		require.True(t, cookie.Secure && cookie.HttpOnly)
		require.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
		require.Equal(t, "/", cookie.Path)
		require.Equal(t, fingerprint.CookieMaxAge, cookie.MaxAge)
		require.True(t, fingerprint.ValidCookie(cookie.Value), cookie.Value)
		require.Len(t, devicesOf(t, env, a.Access), 2)

		// The same browser after an OS change keeps its device by cookie.
		safari.UA = safariIPhone
		r = safari.Do(env, "POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Empty(t, r.Header.Values("Set-Cookie"), "a valid cookie is kept")
		require.Len(t, devicesOf(t, env, a.Access), 2)
	})
}

// oldCookie is what earlier versions put in the device cookie (and used
// as the device's fingerprint): a public hash of the User-Agent's
// families, which anyone can compute.
func oldCookie(ua string) string {
	u := fingerprint.ParseUA(ua)
	sum := sha256.Sum256([]byte("gatehouse.device.v1\x00ua\x00" + u.Browser + "\x00" + u.OS + "\x00" + u.Platform))
	return hex.EncodeToString(sum[:])
}

// The device cookie is a random secret per browser: two browsers without
// one, with the same User-Agent, get different cookies and are two new
// devices; a sign-in without a cookie (or with one the server never set,
// such as the public value earlier versions used) never passes for a
// known device, even one with the same User-Agent: it is scored as new
// (new_device), announced (device.new, an email) and not trusted. The
// browser that presents its own cookie is recognised, trust and all.
func TestDeviceCookieIsARandomSecret(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		email, uid := newUser(t, env)
		cred := map[string]any{"email": email, "password": apptest.StrongPassword}

		// Two cookieless sign-ins with one User-Agent: two cookies, two devices.
		victim, other := &risktest.Browser{UA: chromeWindows}, &risktest.Browser{UA: chromeWindows}
		r := victim.Do(env, "POST", "/auth/login", cred, "")
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		access := r.Str("access_token")
		require.Equal(t, http.StatusOK, other.Do(env, "POST", "/auth/login", cred, "").Status)
		require.True(t, fingerprint.ValidCookie(victim.Cookie) && fingerprint.ValidCookie(other.Cookie))
		require.NotEqual(t, victim.Cookie, other.Cookie)
		require.NotEqual(t, oldCookie(chromeWindows), victim.Cookie, "not computable from the User-Agent")
		require.Len(t, devicesOf(t, env, access), 2)
		require.Equal(t, 1, auditCount(t, env, uid, "device.new"))
		require.Contains(t, risktest.WaitMail(t, env, email, "New sign-in"), "Chrome on Windows")

		// The victim trusts its browser; presenting the cookie, it is that
		// device: no new_device, no device.new, and the trust shows.
		mine, err := env.App.DB.GetSessionDevice(context.Background(), r.Str("session_id"))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, env.Do("PUT", "/devices/"+mine.ID+"/trust", nil, access).Status)
		env.Clock.Advance(time.Minute)
		r = victim.Do(env, "POST", "/auth/login", cred, "")
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Nil(t, risktest.SetCookie(r), "a valid cookie is kept")
		login := risktest.Audits(t, env, uid, "user.login")[0]
		require.Equal(t, mine.ID, login.Metadata["device_id"])
		require.NotContains(t, factorNames(login), "new_device")
		trustedScore := sessionTrust(t, env, r.Str("access_token"), r.Str("session_id"))
		require.Equal(t, 1, auditCount(t, env, uid, "device.new"))

		// Strangers with the victim's kind of browser: no cookie, a cookie of
		// their own making, the old public value. Each is a new, untrusted
		// device, scored and announced as one.
		for i, c := range []string{"", fingerprint.NewCookie(), oldCookie(chromeWindows)} {
			env.Clock.Advance(time.Minute)
			stranger := &risktest.Browser{UA: chromeWindows, Cookie: c}
			r = stranger.Do(env, "POST", "/auth/login", cred, "")
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.NotEmpty(t, r.Str("access_token"), string(r.Raw))
			login = risktest.Audits(t, env, uid, "user.login")[0]
			require.NotEqual(t, mine.ID, login.Metadata["device_id"])
			require.Contains(t, factorNames(login), "new_device")
			require.Equal(t, 2+i, auditCount(t, env, uid, "device.new"))
			d, err := env.App.DB.GetSessionDevice(context.Background(), r.Str("session_id"))
			require.NoError(t, err)
			require.False(t, d.Trusted)
			require.Less(t, sessionTrust(t, env, r.Str("access_token"), r.Str("session_id")), trustedScore)
			require.Equal(t, c != "" && fingerprint.ValidCookie(c), risktest.SetCookie(r) == nil,
				"a cookie of the right shape is kept, anything else replaced")
		}
	})
}

// factorNames are the risk factors an audit row names.
func factorNames(l gatehouse.AuditLog) []string {
	var out []string
	for _, f := range l.Metadata["risk_factors"].([]any) {
		out = append(out, f.(map[string]any)["name"].(string))
	}
	return out
}

// signIns draws a few sign-ins from a small set of clients.
func signIns(t *rapid.T) []client {
	ids := []string{"", "", "tablet-7", "laptop-2"}
	return rapid.SliceOfN(rapid.Custom(func(t *rapid.T) client {
		return client{UA: rapid.SampledFrom(agents).Draw(t, "ua"), DeviceID: rapid.SampledFrom(ids).Draw(t, "device_id")}
	}), 1, 5).Draw(t, "sign_ins")
}

// Property 76: every sign-in registers its device: a fingerprint the user
// had not signed in from before makes exactly one new device, announced
// by one device.new unless it is the account's first; a known one makes
// none.
func TestProperty76_NewDeviceRegistration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		apptest.CheckN(t, 25, func(rt *rapid.T) {
			email, uid := newUser(rt, env)
			seen := map[string]bool{}
			var tok apptest.Tokens
			for _, c := range signIns(rt) {
				tok = login(rt, env, email, c)
				fp := fingerprint.Fingerprint(c.DeviceID, c.cookie(env), c.UA)
				seen[fp] = true
				require.Len(rt, devicesOf(rt, env, tok.Access), len(seen))
				require.Equal(rt, len(seen)-1, auditCount(rt, env, uid, "device.new"))
			}
		})
	})
}

// Property 77: the device list holds each device the user signed in from
// exactly once, named after its browser and OS, and no one else's.
func TestProperty77_DeviceListCompleteness(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		apptest.CheckN(t, 25, func(rt *rapid.T) {
			email, uid := newUser(rt, env)
			otherEmail, _ := newUser(rt, env)
			login(rt, env, otherEmail, client{UA: chromeAndroid, DeviceID: "someone-else"})
			want := map[string]string{} // fingerprint -> name
			var tok apptest.Tokens
			for _, c := range signIns(rt) {
				tok = login(rt, env, email, c)
				fp := fingerprint.Fingerprint(c.DeviceID, c.cookie(env), c.UA)
				want[fp] = fingerprint.ParseUA(c.UA).Name()
			}
			list := devicesOf(rt, env, tok.Access)
			require.Len(rt, list, len(want))
			stored, err := env.App.DB.ListDevices(context.Background(), uid)
			require.NoError(rt, err)
			ids := map[string]bool{}
			for i, d := range stored {
				require.Equal(rt, uid, d.UserID)
				require.Contains(rt, want, d.Fingerprint)
				require.Equal(rt, d.ID, list[i]["id"], "listed in stored order")
				ids[d.ID] = true
			}
			require.Len(rt, ids, len(want))
		})
	})
}

// Property 78: trusting a device raises the trust score of a session from
// it (at its next refresh); distrusting it brings the score back.
func TestProperty78_DeviceTrustIncreasesScore(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		apptest.CheckN(t, 25, func(rt *rapid.T) {
			email, _ := newUser(rt, env)
			c := client{UA: rapid.SampledFrom(agents).Draw(rt, "ua")}
			tok := login(rt, env, email, c)
			refresh := func() {
				r := do(env, c, "POST", "/auth/refresh", map[string]any{"refresh_token": tok.Refresh}, "")
				require.Equal(rt, http.StatusOK, r.Status, string(r.Raw))
				tok.Access, tok.Refresh = r.Str("access_token"), r.Str("refresh_token")
			}
			refresh()
			base := sessionTrust(rt, env, tok.Access, tok.SessionID)
			id := devicesOf(rt, env, tok.Access)[0]["id"].(string)
			require.Equal(rt, http.StatusOK, env.Do("PUT", "/devices/"+id+"/trust", map[string]any{"trusted": true}, tok.Access).Status)
			refresh()
			require.Greater(rt, sessionTrust(rt, env, tok.Access, tok.SessionID), base)
			require.Equal(rt, http.StatusOK, env.Do("PUT", "/devices/"+id+"/trust", map[string]any{"trusted": false}, tok.Access).Status)
			refresh()
			require.Equal(rt, base, sessionTrust(rt, env, tok.Access, tok.SessionID))
		})
	})
}

// Property 79: removing a device ends exactly the sessions from it, at
// once: their access tokens are refused on the next request.
func TestProperty79_DeviceRemovalTerminatesSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		apptest.CheckN(t, 25, func(rt *rapid.T) {
			email, _ := newUser(rt, env)
			cs := signIns(rt)
			toks := make([]apptest.Tokens, len(cs))
			for i, c := range cs {
				toks[i] = login(rt, env, email, c)
			}
			keeper := login(rt, env, email, client{UA: "keeper/1.0", DeviceID: "keeper"})
			var deviceOf = map[string]string{} // session -> device, from the store
			for _, tk := range toks {
				d, err := env.App.DB.GetSessionDevice(context.Background(), tk.SessionID)
				require.NoError(rt, err)
				deviceOf[tk.SessionID] = d.ID
			}
			victim := deviceOf[toks[rapid.IntRange(0, len(toks)-1).Draw(rt, "victim")].SessionID]
			require.Equal(rt, http.StatusNoContent, env.Do("DELETE", "/devices/"+victim, nil, keeper.Access).Status)
			for _, tk := range toks {
				status := env.Do("GET", "/sessions", nil, tk.Access).Status
				if deviceOf[tk.SessionID] == victim {
					require.Equal(rt, http.StatusUnauthorized, status)
				} else {
					require.Equal(rt, http.StatusOK, status)
				}
			}
		})
	})
}

// Property 81: the cleanup job removes exactly the devices unused for
// longer than the maximum age (90 days by default).
func TestProperty81_UnusedDeviceRemoval(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		worker := &device.CleanupWorker{Service: env.App.Devices}
		apptest.CheckN(t, 25, func(rt *rapid.T) {
			ctx := context.Background()
			_, uid := newUser(rt, env)
			now := env.Clock.Now()
			ages := rapid.SliceOfN(rapid.IntRange(0, 200), 1, 6).Draw(rt, "ages_days")
			var keep []string
			for i, days := range ages {
				at := now.Add(-time.Duration(days)*24*time.Hour + time.Duration(i)*time.Second)
				d, _, err := env.App.DB.UpsertDevice(ctx, gatehouse.Device{ID: gatehouse.NewID(), UserID: uid,
					Fingerprint: gatehouse.NewID(), FirstSeenAt: at, LastSeenAt: at})
				require.NoError(rt, err)
				if !at.Before(now.Add(-device.DefaultMaxAge)) {
					keep = append(keep, d.ID)
				}
			}
			require.NoError(rt, worker.Work(ctx, nil))
			left, err := env.App.DB.ListDevices(ctx, uid)
			require.NoError(rt, err)
			var got []string
			for _, d := range left {
				got = append(got, d.ID)
			}
			slices.Sort(got)
			slices.Sort(keep)
			require.Equal(rt, keep, got)
		})
	})
}

// The cleanup also ends a session still naming a removed device.
func TestCleanupEndsSessionsOfRemovedDevices(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		email, _ := newUser(t, env)
		tok := login(t, env, email, client{UA: firefoxLinux})
		env.Clock.Advance(device.DefaultMaxAge + time.Hour)
		require.NoError(t, (&device.CleanupWorker{Service: env.App.Devices}).Work(context.Background(), nil))
		s, err := env.App.DB.GetSession(context.Background(), tok.SessionID)
		require.NoError(t, err)
		require.NotNil(t, s.RevokedAt)
	})
}
