package risk_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
	"github.com/gatehouse-auth/gatehouse/internal/risk/risktest"
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

// signIn posts a login from ip with the User-Agent ua and the password pw.
func signIn(env *apptest.Env, email, pw, ip, ua string) *apptest.Response {
	env.Header = http.Header{"X-Forwarded-For": {ip}, "User-Agent": {ua}}
	defer func() { env.Header = nil }()
	return env.Do("POST", "/auth/login", map[string]any{"email": email, "password": pw}, "")
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
// without gets an emailed single-use link that completes the sign-in.
// Either way one security.alert says which step-up was asked.
func TestProperty96_HighRiskStepUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		apptest.CheckN(t, 25, func(rt *rapid.T) {
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
				tok := apptest.TokenFromLink(text, "http://gatehouse.test/api/v1/auth/login/confirm?")
				require.NotEmpty(rt, tok)
				c := env.Do("GET", "/auth/login/confirm?token="+tok, nil, "")
				require.Equal(rt, http.StatusOK, c.Status, string(c.Raw))
				require.NotEmpty(rt, c.Str("access_token"))
				// The session is the signing-in client's, from the risky address.
				logins := audits(rt, env, uid, string(gatehouse.EventUserLogin))
				require.Equal(rt, blocked.IP, logins[0].IPAddress)
				require.Equal(rt, uaChrome, logins[0].UserAgent)
				again := env.Do("GET", "/auth/login/confirm?token="+tok, nil, "")
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
// the high threshold is held and raises exactly one security.alert with
// that score; every sign-in below it gets tokens, its score on the
// user.login row, and an alert only for an alerting factor (impossible
// travel, a new country, a run of failed sign-ins).
func TestProperty67_HighRiskGeneratesAlert(t *testing.T) {
	forEachEngine(t, func(t *testing.T, env *apptest.Env) {
		apptest.CheckN(t, 25, func(rt *rapid.T) {
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
					require.GreaterOrEqual(rt, alerts[0].RiskScore, 70)
					require.Equal(rt, "email", alerts[0].Metadata["step_up"])
					continue
				}
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
		apptest.CheckN(t, 25, func(rt *rapid.T) {
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
		apptest.CheckN(t, 25, func(rt *rapid.T) {
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
		apptest.CheckN(t, 25, func(rt *rapid.T) {
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
