package risk_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest/risktest"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
)

// blockedPrivate is on blocklistConfig's list and in no city of the test
// database, so a sign-in from it scores ip_reputation (40) and whatever
// the device adds, but no geographic factor.
const blockedPrivate = "10.250.0.1"

// blocklistConfig is riskConfig with blockedPrivate's range on the
// blocklist too, and the given GATEHOUSE_IP_BLOCKLIST_ACTION ("" for the
// default).
func blocklistConfig(action string) func(t *testing.T) map[string]string {
	return func(t *testing.T) map[string]string {
		cfg := riskConfig(t)
		bl := filepath.Join(t.TempDir(), "blocklist.txt")
		require.NoError(t, os.WriteFile(bl, []byte(blocked.Network+"\n10.250.0.0/16\n"), 0o600))
		cfg["GATEHOUSE_IP_BLOCKLIST"] = bl
		if action != "" {
			cfg["GATEHOUSE_IP_BLOCKLIST_ACTION"] = action
		}
		return cfg
	}
}

// A sign-in from a blocklisted address steps up whatever its score: from
// a new device it scores 65 and from a known one 40, both under the high
// threshold (70), and neither gets tokens. An account with MFA gets its
// MFA challenge, one without an emailed confirmation; each raises one
// alert naming the step-up.
func TestBlocklistedAddressAlwaysStepsUp(t *testing.T) {
	risktest.ForEachEngine(t, blocklistConfig(""), func(t *testing.T, env *apptest.Env) {
		email, uid := newUser(t, env)
		require.Equal(t, http.StatusOK, signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox).Status)
		env.Clock.Advance(time.Hour)

		for i, ua := range []string{uaChrome, uaFirefox} { // a new device (65), then the known one (40)
			r := signIn(env, email, apptest.StrongPassword, blockedPrivate, ua)
			apptest.Expect(t, r, http.StatusOK, "")
			require.Equal(t, true, r.JSON["mfa_required"], "sign-in %d from the blocklist got no step-up: %s", i, r.Raw)
			require.Empty(t, r.Str("access_token"))
			require.Equal(t, []any{risk.MethodEmailConfirmation}, r.JSON["methods"])
			alert := audits(t, env, uid, string(gatehouse.EventSecurityAlert))[0]
			require.Less(t, alert.RiskScore, 70, "the score alone would not step up")
			require.Contains(t, factorsOf(t, alert), risk.FactorIPReputation)
			require.Equal(t, "email", alert.Metadata["step_up"])
			require.Len(t, audits(t, env, uid, string(gatehouse.EventSecurityAlert)), i+1)
		}
		require.Len(t, audits(t, env, uid, string(gatehouse.EventUserLogin)), 1, "only the clean sign-in completed")

		// With MFA, the step-up is the MFA challenge.
		first := signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox)
		enableTOTP(t, env, first.Str("access_token"))
		r := signIn(env, email, apptest.StrongPassword, blockedPrivate, uaFirefox)
		require.Equal(t, true, r.JSON["mfa_required"], string(r.Raw))
		require.Contains(t, r.JSON["methods"], "totp")
		require.Equal(t, "mfa", audits(t, env, uid, string(gatehouse.EventSecurityAlert))[0].Metadata["step_up"])
	})
}

// With GATEHOUSE_IP_BLOCKLIST_ACTION=deny a blocklisted address gets 403
// access_denied for every sign-in, whatever the password and whether the
// account exists, so the refusal tells a guesser nothing; a known account
// gets a user.login_failed row with reason ip_blocklisted. A sign-in whose
// first factor is not a password (a magic link) is refused the same way.
// Clean addresses sign in as usual.
func TestBlocklistedAddressDenied(t *testing.T) {
	risktest.ForEachEngine(t, blocklistConfig("deny"), func(t *testing.T, env *apptest.Env) {
		email, uid := newUser(t, env)
		for _, ip := range []string{blockedPrivate, blocked.IP} {
			for _, cred := range []map[string]any{
				{"email": email, "password": apptest.StrongPassword},
				{"email": email, "password": "wrong-" + apptest.StrongPassword},
				{"email": "nobody-" + email, "password": apptest.StrongPassword},
			} {
				b := &risktest.Browser{UA: uaFirefox, IP: ip}
				r := b.Do(env, "POST", "/auth/login", cred, "")
				apptest.Expect(t, r, http.StatusForbidden, gatehouse.CodeAccessDenied)
				require.NotContains(t, string(r.Raw), "password", "the answer says nothing about the password")
			}
		}
		failed := audits(t, env, uid, string(gatehouse.EventUserLoginFailed))
		require.Len(t, failed, 4, "right and wrong password, from both blocked addresses")
		for _, f := range failed {
			require.Equal(t, "ip_blocklisted", f.Metadata["reason"])
		}
		require.Equal(t, blocked.IP, failed[0].IPAddress)
		require.Empty(t, audits(t, env, uid, string(gatehouse.EventUserLogin)))

		// A magic link opened from a blocked address.
		apptest.Expect(t, env.Do("POST", "/auth/magic-link", map[string]any{"email": email}, ""), http.StatusAccepted, "")
		tok := apptest.TokenFromLink(waitMail(t, env, email, "sign-in link"), "http://gatehouse.test/magic-link?")
		require.NotEmpty(t, tok)
		b := &risktest.Browser{UA: uaFirefox, IP: blockedPrivate}
		apptest.Expect(t, b.Do(env, "GET", "/auth/magic-link/verify?token="+tok, nil, ""), http.StatusForbidden, gatehouse.CodeAccessDenied)
		require.Len(t, audits(t, env, uid, string(gatehouse.EventUserLoginFailed)), 5)
		require.Empty(t, audits(t, env, uid, string(gatehouse.EventUserLogin)))

		// A clean address signs in.
		r := signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox)
		apptest.Expect(t, r, http.StatusOK, "")
		require.NotEmpty(t, r.Str("access_token"))
	})
}
