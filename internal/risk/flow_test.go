package risk_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest/risktest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
)

// blocked is on the test blocklist: Sydney's addresses.
var blocked = risktest.Sydney

// riskConfig is a server with the test city database, a blocklist naming
// Sydney's range, client IPs from X-Forwarded-For, and a lockout threshold
// high enough for failure runs.
func riskConfig(t *testing.T) map[string]string {
	bl := filepath.Join(t.TempDir(), "blocklist.txt")
	require.NoError(t, os.WriteFile(bl, []byte(blocked.Network+"\n"), 0o600))
	return map[string]string{
		"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1", "GATEHOUSE_GEOIP_DB": risktest.CityDB(t),
		"GATEHOUSE_IP_BLOCKLIST": bl, "GATEHOUSE_LOCKOUT_THRESHOLD": "50",
	}
}

func forEachEngine(t *testing.T, fn func(t *testing.T, env *apptest.Env)) {
	risktest.ForEachEngine(t, riskConfig, fn)
}

var (
	newUser  = risktest.NewUser
	audits   = risktest.Audits
	waitMail = risktest.WaitMail
)

// privateIP is an address of its own per call, in no city and on no list,
// so failure counters of one case never touch another.
func privateIP() string {
	n := risktest.Seq()
	return fmt.Sprintf("10.%d.%d.1", 100+n/256%100, n%256)
}

const (
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaSafari  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)

// browsers are the test's browsers: one per server and User-Agent, each
// keeping its device cookie.
var browsers risktest.Browsers

// signIn posts a login from ip with the password pw, from the browser
// with the User-Agent ua (which presents and keeps its device cookie).
func signIn(env *apptest.Env, email, pw, ip, ua string) *apptest.Response {
	b := browsers.Get(env, ua)
	b.IP = ip
	return b.Do(env, "POST", "/auth/login", map[string]any{"email": email, "password": pw}, "")
}

// factorsOf reads metadata.risk_factors of an audit row: name -> points.
func factorsOf(t require.TestingT, l gatehouse.AuditLog) map[string]int {
	raw, ok := l.Metadata["risk_factors"].([]any)
	require.True(t, ok, "risk_factors in %v", l.Metadata)
	out := map[string]int{}
	sum := 0
	for _, f := range raw {
		m := f.(map[string]any)
		require.NotEmpty(t, m["reason"])
		out[m["name"].(string)] = int(m["points"].(float64))
		sum += int(m["points"].(float64))
	}
	require.Equal(t, min(sum, 100), l.RiskScore, "the score explains itself")
	return out
}

func TestHealthShowsGeoIP(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			r := apptest.New(t, eng, riskConfig(t)).Do("GET", "/health", nil, "")
			require.Equal(t, "enabled", r.JSON["features"].(map[string]any)["geoip"])
			r = apptest.New(t, eng, nil).Do("GET", "/health", nil, "")
			require.Equal(t, http.StatusOK, r.Status)
			require.Equal(t, "ok", r.Str("status"))
			require.Equal(t, "disabled", r.JSON["features"].(map[string]any)["geoip"])
		})
	}
}

// enableTOTP turns MFA on for the signed-in user.
func enableTOTP(t require.TestingT, env *apptest.Env, access string) string {
	r := env.Do("POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	secret := r.Str("secret")
	code, err := mfa.TOTPCode(secret, env.Clock.Now())
	require.NoError(t, err)
	r = env.Do("POST", "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	return secret
}

// Property 96: a sign-in scoring at or above the high threshold never gets
// tokens at once: an account with MFA must meet an MFA challenge, one
// without gets an emailed single-use link that confirms the sign-in, which
// the client that signed in then finishes.
// Either way one security.alert says which step-up was asked.
func TestProperty96_HighRiskStepUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email, uid := newUser(rt, env)
			first := signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox)
			require.Equal(rt, http.StatusOK, first.Status, string(first.Raw))
			withMFA := rapid.Bool().Draw(rt, "mfa")
			var secret string
			if withMFA {
				secret = enableTOTP(rt, env, first.Str("access_token"))
			}
			env.Clock.Advance(time.Duration(rapid.IntRange(1, 72).Draw(rt, "hours")) * time.Hour)

			// A new device, a new country, a blocklisted address: 90 or more.
			r := signIn(env, email, apptest.StrongPassword, blocked.IP, uaChrome)
			require.Equal(rt, http.StatusOK, r.Status, string(r.Raw))
			require.Equal(rt, true, r.JSON["mfa_required"], string(r.Raw))
			require.Empty(rt, r.Str("access_token"))
			alerts := audits(rt, env, uid, string(gatehouse.EventSecurityAlert))
			require.Len(rt, alerts, 1)
			require.GreaterOrEqual(rt, alerts[0].RiskScore, 70)

			if withMFA {
				require.Contains(rt, r.JSON["methods"], "totp")
				require.Equal(rt, "mfa", alerts[0].Metadata["step_up"])
				env.Clock.Advance(30 * time.Second)
				code, _ := mfa.TOTPCode(secret, env.Clock.Now())
				v := env.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": r.Str("challenge_id"), "code": code}, "")
				require.Equal(rt, http.StatusOK, v.Status, string(v.Raw))
				require.NotEmpty(rt, v.Str("access_token"))
			} else {
				require.Equal(rt, []any{risk.MethodEmailConfirmation}, r.JSON["methods"])
				require.Equal(rt, "email", alerts[0].Metadata["step_up"])
				text := waitMail(t, env, email, "Confirm your")
				require.Contains(rt, text, "Chrome on Windows")
				tok := apptest.TokenFromLink(text, "http://gatehouse.test/confirm-sign-in?")
				require.NotEmpty(rt, tok)
				c := env.Do("POST", "/auth/login/confirm", map[string]any{"token": tok}, "")
				require.Equal(rt, http.StatusNoContent, c.Status, string(c.Raw))
				// The client that signed in finishes; the session is its own, from the risky address.
				v := browsers.Get(env, uaChrome).Do(env, "POST", "/auth/mfa/verify",
					map[string]any{"challenge_id": r.Str("challenge_id"), "method": risk.MethodEmailConfirmation}, "")
				require.Equal(rt, http.StatusOK, v.Status, string(v.Raw))
				require.NotEmpty(rt, v.Str("access_token"))
				logins := audits(rt, env, uid, string(gatehouse.EventUserLogin))
				require.Equal(rt, blocked.IP, logins[0].IPAddress)
				require.Equal(rt, uaChrome, logins[0].UserAgent)
				again := env.Do("POST", "/auth/login/confirm", map[string]any{"token": tok}, "")
				require.Equal(rt, "invalid_token", again.Code())
			}
			require.Len(rt, audits(rt, env, uid, string(gatehouse.EventSecurityAlert)), 1, "the step-up itself raises no second alert")
		})
	})
}

// attempt is one drawn sign-in.
type attempt struct {
	IP, UA  string
	Wrong   int // wrong passwords first
	Advance time.Duration
}

func drawAttempt(t *rapid.T) attempt {
	var ips []string
	for _, c := range risktest.Cities {
		ips = append(ips, c.IP)
	}
	return attempt{
		IP:      rapid.SampledFrom(append(ips, "private")).Draw(t, "ip"),
		UA:      rapid.SampledFrom([]string{uaFirefox, uaChrome, uaSafari}).Draw(t, "ua"),
		Wrong:   rapid.IntRange(0, 4).Draw(t, "wrong"),
		Advance: time.Duration(rapid.IntRange(0, 48*60).Draw(t, "minutes")) * time.Minute,
	}
}

// Property 67: every sign-in of an account without MFA scoring at or above
// the high threshold, or coming from a blocklisted address, is held and
// raises exactly one security.alert with that score; every other sign-in
// gets tokens, its score on the
// user.login row, and an alert only for an alerting factor (impossible
// travel, a new country, a run of failed sign-ins).
func TestProperty67_HighRiskGeneratesAlert(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email, uid := newUser(rt, env)
			for _, a := range rapid.SliceOfN(rapid.Custom(drawAttempt), 1, 4).Draw(rt, "attempts") {
				env.Clock.Advance(a.Advance)
				ip := a.IP
				if ip == "private" {
					ip = privateIP()
				}
				for range a.Wrong {
					require.Equal(rt, http.StatusUnauthorized, signIn(env, email, "wrong-"+apptest.StrongPassword, ip, a.UA).Status)
				}
				alertsBefore := len(audits(rt, env, uid, string(gatehouse.EventSecurityAlert)))
				r := signIn(env, email, apptest.StrongPassword, ip, a.UA)
				require.Equal(rt, http.StatusOK, r.Status, string(r.Raw))
				alerts := audits(rt, env, uid, string(gatehouse.EventSecurityAlert))
				if r.JSON["mfa_required"] == true {
					require.Len(rt, alerts, alertsBefore+1)
					if ip != blocked.IP { // a blocklisted address steps up whatever its score
						require.GreaterOrEqual(rt, alerts[0].RiskScore, 70)
					}
					require.Equal(rt, "email", alerts[0].Metadata["step_up"])
					continue
				}
				require.NotEqual(rt, blocked.IP, ip, "a blocklisted address got tokens")
				login := audits(rt, env, uid, string(gatehouse.EventUserLogin))[0]
				require.Equal(rt, r.Str("session_id"), login.Metadata["session_id"])
				require.Less(rt, login.RiskScore, 70)
				factors := factorsOf(rt, login)
				_, travel := factors[risk.FactorImpossibleTravel]
				_, country := factors[risk.FactorNewCountry]
				_, failed := factors[risk.FactorFailedAccount]
				if travel || country || failed {
					require.Len(rt, alerts, alertsBefore+1)
					require.Equal(rt, login.RiskScore, alerts[0].RiskScore)
				} else {
					require.Len(rt, alerts, alertsBefore)
				}
			}
		})
	})
}

// Property 95: every security.alert is recorded: an audit row in the
// alert's transaction whose risk_score column is the score and whose
// metadata lists the factors (name, points, reason) that add up to it,
// with the address and agent of the attempt; and the user is emailed.
func TestProperty95_AlertRecording(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email, uid := newUser(rt, env)
			require.Equal(rt, http.StatusOK, signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox).Status)
			env.Clock.Advance(time.Duration(rapid.IntRange(1, 300).Draw(rt, "minutes")) * time.Minute)
			to := rapid.SampledFrom([]risktest.City{risktest.Paris, risktest.Sydney, risktest.NewYork}).Draw(rt, "to")
			ua := rapid.SampledFrom([]string{uaFirefox, uaChrome}).Draw(rt, "ua")
			require.Equal(rt, http.StatusOK, signIn(env, email, apptest.StrongPassword, to.IP, ua).Status)
			alerts := audits(rt, env, uid, string(gatehouse.EventSecurityAlert))
			require.Len(rt, alerts, 1, "a new country always alerts")
			a := alerts[0]
			factors := factorsOf(rt, a)
			require.Contains(rt, factors, risk.FactorNewCountry)
			require.Equal(rt, to.IP, a.IPAddress)
			require.Equal(rt, ua, a.UserAgent)
			require.Equal(rt, to.Name+", "+to.Country, a.Metadata["location"])
			require.NotEmpty(rt, a.Metadata["event_id"])
			require.Contains(rt, waitMail(t, env, email, "security alert"), "first sign-in from "+to.Country)
		})
	})
}

// Property 92: a sign-in after a run of failed ones (three or more within
// fifteen minutes) raises an alert naming failed_logins_account; fewer do not.
func TestProperty92_FailedLoginAlert(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email, uid := newUser(rt, env)
			ip := privateIP()
			require.Equal(rt, http.StatusOK, signIn(env, email, apptest.StrongPassword, ip, uaFirefox).Status)
			wrong := rapid.IntRange(0, 6).Draw(rt, "wrong")
			for range wrong {
				require.Equal(rt, http.StatusUnauthorized, signIn(env, email, "wrong-"+apptest.StrongPassword, ip, uaFirefox).Status)
			}
			r := signIn(env, email, apptest.StrongPassword, ip, uaFirefox)
			require.Equal(rt, http.StatusOK, r.Status)
			require.NotEmpty(rt, r.Str("access_token"))
			alerts := audits(rt, env, uid, string(gatehouse.EventSecurityAlert))
			if wrong >= 3 {
				require.Len(rt, alerts, 1)
				require.Contains(rt, factorsOf(rt, alerts[0]), risk.FactorFailedAccount)
			} else {
				require.Empty(rt, alerts)
			}
			// A success resets the account's count.
			require.Equal(rt, http.StatusOK, signIn(env, email, apptest.StrongPassword, ip, uaFirefox).Status)
			require.Len(rt, audits(rt, env, uid, string(gatehouse.EventSecurityAlert)), len(alerts))
		})
	})
}

// Property 93: after sign-ins from Berlin, a sign-in from another country
// (long enough after to be reachable) raises an alert naming new_country;
// one from another German city does not (new_city only lowers the trust).
func TestProperty93_UnusualLocationAlert(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email, uid := newUser(rt, env)
			require.Equal(rt, http.StatusOK, signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox).Status)
			env.Clock.Advance(48 * time.Hour)
			to := rapid.SampledFrom([]risktest.City{risktest.Berlin, risktest.Munich, risktest.Paris, risktest.NewYork}).Draw(rt, "to")
			r := signIn(env, email, apptest.StrongPassword, to.IP, uaFirefox)
			require.Equal(rt, http.StatusOK, r.Status)
			alerts := audits(rt, env, uid, string(gatehouse.EventSecurityAlert))
			login := audits(rt, env, uid, string(gatehouse.EventUserLogin))[0]
			factors := factorsOf(rt, login)
			if to.Country != "DE" {
				require.Len(rt, alerts, 1)
				require.Contains(rt, factorsOf(rt, alerts[0]), risk.FactorNewCountry)
			} else {
				require.Empty(rt, alerts)
				_, newCity := factors[risk.FactorNewCity]
				require.Equal(rt, to != risktest.Berlin, newCity)
			}
			require.Equal(rt, to.Name+", "+to.Country, login.Metadata["location"])
		})
	})
}

// Impossible travel through the whole server: after sign-ins from Berlin
// and (two days later) New York, a sign-in from Berlin an hour after New
// York raises an alert naming impossible_travel; a refresh from Sydney
// soon after alerts as well and lowers the session's trust.
func TestImpossibleTravelFlow(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		email, uid := newUser(t, env)
		require.Equal(t, http.StatusOK, signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox).Status)
		env.Clock.Advance(48 * time.Hour)
		require.NotEmpty(t, signIn(env, email, apptest.StrongPassword, risktest.NewYork.IP, uaFirefox).Str("access_token"))
		env.Clock.Advance(time.Hour)
		r := signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox)
		require.NotEmpty(t, r.Str("access_token"), string(r.Raw))
		alerts := audits(t, env, uid, string(gatehouse.EventSecurityAlert))
		require.Len(t, alerts, 2, "the new country, then the travel")
		require.Equal(t, map[string]int{risk.FactorImpossibleTravel: 45}, factorsOf(t, alerts[0]))

		access, refresh, sid := r.Str("access_token"), r.Str("refresh_token"), r.Str("session_id")
		trust := func() int {
			l := env.Do("GET", "/sessions", nil, access)
			require.Equal(t, http.StatusOK, l.Status, string(l.Raw))
			for _, s := range l.JSON["items"].([]any) {
				if m := s.(map[string]any); m["id"] == sid {
					return int(m["trust_score"].(float64))
				}
			}
			return -1
		}
		before := trust()
		env.Clock.Advance(10 * time.Minute)
		env.Header = http.Header{"X-Forwarded-For": {risktest.Sydney.IP}, "User-Agent": {uaFirefox}}
		f := env.Do("POST", "/auth/refresh", map[string]any{"refresh_token": refresh}, "")
		env.Header = nil
		require.Equal(t, http.StatusOK, f.Status, string(f.Raw))
		access = f.Str("access_token")
		require.Len(t, audits(t, env, uid, string(gatehouse.EventSecurityAlert)), 3)
		require.Equal(t, "risky_refresh", audits(t, env, uid, string(gatehouse.EventSecurityAlert))[0].Metadata["reason"])
		require.Less(t, trust(), before)
	})
}

// uaChromeNewer is another Chrome on Windows: a User-Agent like uaChrome's,
// as an attacker would send to pass for the victim's browser.
const uaChromeNewer = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// A sign-in without the device cookie is a new device whatever its
// User-Agent: it cannot pass for the victim's trusted browser (no trust,
// new_device, a device.new and its email), so after a run of failed
// sign-ins from its address (credential stuffing) the right password is
// stepped up, not let through. The victim's browser, presenting its
// cookie, is still recognised.
func TestUserAgentAloneIsANewDevice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		email, uid := newUser(t, env)
		victim := &risktest.Browser{UA: uaChrome, IP: risktest.Berlin.IP}
		r := victim.Do(env, "POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		access := r.Str("access_token")
		list := env.Do("GET", "/devices", nil, access)
		require.Len(t, list.JSON["items"], 1)
		trusted := list.JSON["items"].([]any)[0].(map[string]any)["id"].(string)
		require.Equal(t, http.StatusOK, env.Do("PUT", "/devices/"+trusted+"/trust", nil, access).Status)

		// The victim's browser with its cookie: the known, trusted device.
		env.Clock.Advance(time.Hour)
		r = victim.Do(env, "POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
		require.NotEmpty(t, r.Str("access_token"), string(r.Raw))
		require.Nil(t, risktest.SetCookie(r), "a valid cookie is kept")
		login := audits(t, env, uid, string(gatehouse.EventUserLogin))[0]
		require.NotContains(t, factorsOf(t, login), risk.FactorNewDevice)
		require.Equal(t, trusted, login.Metadata["device_id"])
		victimTrust := int(login.Metadata["trust_score"].(float64))
		require.Empty(t, audits(t, env, uid, string(gatehouse.EventDeviceNew)))

		// A stranger with a Chrome on Windows of its own and no cookie, from
		// a clean address: tokens, but as a new, untrusted device, announced.
		env.Clock.Advance(time.Hour)
		stranger := &risktest.Browser{UA: uaChromeNewer, IP: risktest.Berlin.IP}
		r = stranger.Do(env, "POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
		require.NotEmpty(t, r.Str("access_token"), string(r.Raw))
		login = audits(t, env, uid, string(gatehouse.EventUserLogin))[0]
		require.Contains(t, factorsOf(t, login), risk.FactorNewDevice)
		require.NotEqual(t, trusted, login.Metadata["device_id"])
		require.Less(t, int(login.Metadata["trust_score"].(float64)), victimTrust)
		require.Len(t, audits(t, env, uid, string(gatehouse.EventDeviceNew)), 1)
		require.Contains(t, waitMail(t, env, email, "New sign-in"), "Chrome on Windows")
		for _, d := range env.Do("GET", "/devices", nil, r.Str("access_token")).JSON["items"].([]any) {
			d := d.(map[string]any)
			require.Equal(t, d["id"] == trusted, d["trusted"], "only the victim's browser is trusted")
		}

		// The same from an address that has just sent 20 failed sign-ins to
		// other accounts: new_device tips the score over the threshold.
		attackerIP := privateIP()
		other, _ := newUser(t, env)
		for range 20 {
			b := &risktest.Browser{UA: uaChromeNewer, IP: attackerIP}
			require.Equal(t, http.StatusUnauthorized, b.Do(env, "POST", "/auth/login",
				map[string]any{"email": other, "password": "wrong-" + apptest.StrongPassword}, "").Status)
		}
		attacker := &risktest.Browser{UA: uaChromeNewer, IP: attackerIP}
		r = attacker.Do(env, "POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Equal(t, true, r.JSON["mfa_required"], string(r.Raw))
		require.Equal(t, []any{risk.MethodEmailConfirmation}, r.JSON["methods"])
		require.Empty(t, r.Str("access_token"))
		alert := audits(t, env, uid, string(gatehouse.EventSecurityAlert))[0]
		require.Contains(t, factorsOf(t, alert), risk.FactorNewDevice)
		require.GreaterOrEqual(t, alert.RiskScore, 70)

		// A script (no Fetch Metadata, no cookie jar) is named by its
		// User-Agent, so its sign-ins do not pile up as new devices. But
		// that name proves nothing: each of its sign-ins scores
		// new_device, and trusting its device gives it no trust.
		script := &risktest.Browser{UA: uaChromeNewer, IP: risktest.Berlin.IP, Script: true}
		cred := map[string]any{"email": email, "password": apptest.StrongPassword}
		var scriptDevice string
		for i := range 3 {
			env.Clock.Advance(time.Hour)
			r = script.Do(env, "POST", "/auth/login", cred, "")
			require.NotEmpty(t, r.Str("access_token"), string(r.Raw))
			login = audits(t, env, uid, string(gatehouse.EventUserLogin))[0]
			require.Contains(t, factorsOf(t, login), risk.FactorNewDevice, "sign-in %d", i)
			if i == 0 {
				scriptDevice = login.Metadata["device_id"].(string)
				require.Equal(t, http.StatusOK, env.Do("PUT", "/devices/"+scriptDevice+"/trust", nil, r.Str("access_token")).Status)
			}
			require.Equal(t, scriptDevice, login.Metadata["device_id"], "one device for the script")
			require.Less(t, int(login.Metadata["trust_score"].(float64)), victimTrust)
		}
		require.Len(t, audits(t, env, uid, string(gatehouse.EventDeviceNew)), 2, "the stranger's browser and the script")
	})
}

// The confirmation email links to a page that spends nothing; the token
// is spent by POST /auth/login/confirm, once, which confirms the held
// sign-in and hands out no tokens. No GET spends it.
func TestConfirmSignInPageSpendsNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		email, uid := newUser(t, env)
		require.Equal(t, http.StatusOK, signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox).Status)
		env.Clock.Advance(time.Hour)
		r := signIn(env, email, apptest.StrongPassword, blocked.IP, uaChrome)
		require.Equal(t, []any{risk.MethodEmailConfirmation}, r.JSON["methods"], string(r.Raw))
		text := waitMail(t, env, email, "Confirm your")
		tok := apptest.TokenFromLink(text, "http://gatehouse.test/confirm-sign-in?")
		require.NotEmpty(t, tok, text)

		// What a link scanner might fetch: the old API URL and the page.
		g := env.Do("GET", "/auth/login/confirm?token="+url.QueryEscape(tok), nil, "")
		require.Contains(t, []int{http.StatusMethodNotAllowed, http.StatusNotFound}, g.Status, string(g.Raw))
		for range 2 {
			page, err := env.Server.Client().Get(env.Server.URL + "/confirm-sign-in?token=" + url.QueryEscape(tok))
			require.NoError(t, err)
			body, _ := io.ReadAll(page.Body)
			page.Body.Close()
			require.Equal(t, http.StatusOK, page.StatusCode)
			require.Contains(t, page.Header.Get("Content-Type"), "text/html")
			require.Contains(t, page.Header.Get("Content-Security-Policy"), "default-src 'none'")
			require.Contains(t, string(body), `action="/confirm-sign-in"`, "a button confirms, not the opening")
			require.Contains(t, string(body), "continues where it started", "the clicker is sent back to the waiting device")
		}
		require.Len(t, audits(t, env, uid, string(gatehouse.EventUserLogin)), 1, "nothing completed the held sign-in")

		// The person's click confirms, once; the waiting client finishes.
		c := env.Do("POST", "/auth/login/confirm", map[string]any{"token": tok}, "")
		apptest.Expect(t, c, http.StatusNoContent, "")
		require.Empty(t, c.Raw, "no tokens for whoever clicked")
		v := browsers.Get(env, uaChrome).Do(env, "POST", "/auth/mfa/verify",
			map[string]any{"challenge_id": r.Str("challenge_id"), "method": risk.MethodEmailConfirmation}, "")
		apptest.Expect(t, v, http.StatusOK, "")
		logins := audits(t, env, uid, string(gatehouse.EventUserLogin))
		require.Len(t, logins, 2)
		require.Equal(t, blocked.IP, logins[0].IPAddress)
		again := env.Do("POST", "/auth/login/confirm", map[string]any{"token": tok}, "")
		apptest.Expect(t, again, http.StatusBadRequest, "invalid_token")
	})
}
