package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/oauth/oauthtest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// oauthChecks is how many cases each OAuth property runs unless
// -rapid.checks says otherwise: a case is several whole flows through the
// server and a fake provider.
const oauthChecks = 10

// forEachOAuthEnv runs fn once per engine, in parallel, each with one
// fresh server and fake providers.
func forEachOAuthEnv(t *testing.T, fn func(t *testing.T, e *oauthEnv)) {
	t.Parallel()
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, newOAuthEnv(t, engine))
		})
	}
}

// idSeq makes generated subjects and emails unique within the binary.
var idSeq atomic.Int64

// fake answers the fake behind a provider name.
func (e *oauthEnv) fake(provider string) *oauthtest.Provider {
	return map[string]*oauthtest.Provider{"google": e.google, "microsoft": e.microsoft, "github": e.github, "acme": e.acme}[provider]
}

func drawProvider(rt *rapid.T, label string) string {
	return rapid.SampledFrom([]string{"google", "microsoft", "github", "acme"}).Draw(rt, label)
}

// drawEmail draws a fresh address in a drawn letter case.
func drawEmail(rt *rapid.T, label string) string {
	local := rapid.StringMatching(`[a-zA-Z0-9]([a-zA-Z0-9_+-]{0,14}[a-zA-Z0-9])?`).Draw(rt, label+"_local")
	domain := rapid.SampledFrom([]string{"example.com", "Example.org", "MAIL.example.net"}).Draw(rt, label+"_domain")
	return fmt.Sprintf("%s.%d@%s", local, idSeq.Add(1), domain)
}

// drawIdentity draws a fresh person at provider: a new subject (numeric
// at GitHub), a fresh email, verified or not, and a name in any script.
func drawIdentity(rt *rapid.T, provider, label string) oauthtest.Identity {
	n := idSeq.Add(1)
	id := oauthtest.Identity{
		Subject:       rapid.StringMatching(`[A-Za-z0-9_|.-]{1,24}`).Draw(rt, label+"_subject") + "-" + strconv.FormatInt(n, 10),
		Email:         drawEmail(rt, label+"_email"),
		EmailVerified: rapid.Bool().Draw(rt, label+"_verified"),
		Name: rapid.OneOf(rapid.Just(""), rapid.StringMatching(`[A-Z][a-z]{1,10}( [A-Z][a-z]{1,12})?`),
			rapid.StringOfN(rapid.RuneFrom([]rune{' ', '-', '\''}, unicode.Letter), 1, 40, -1)).Draw(rt, label+"_name"),
	}
	switch provider {
	case "github":
		id.Subject = strconv.FormatInt(1_000_000+n, 10)
	case "microsoft":
		id.TenantID = "9188040d-6c67-4c5b-b112-36a304b66dad"
	}
	return id
}

// wantName is the name a new account gets from id at provider.
func wantName(provider string, id oauthtest.Identity) string {
	if provider == "github" && id.Name == "" {
		return "octo-" + id.Subject // the login stands in
	}
	return strings.TrimSpace(id.Name)
}

// loginAs runs a whole flow at provider as id.
func (e *oauthEnv) loginAs(rt *rapid.T, provider string, id oauthtest.Identity, bearer string) *apptest.Response {
	rt.Helper()
	e.fake(provider).SetUser(id)
	return e.get(rt, e.start(rt, provider, "", bearer), "")
}

// signUp draws a person at a drawn provider and signs them in, which
// makes their account.
func (e *oauthEnv) signUp(rt *rapid.T, label string) (string, oauthtest.Identity, *apptest.Response) {
	rt.Helper()
	provider := drawProvider(rt, label+"_provider")
	id := drawIdentity(rt, provider, label)
	id.EmailVerified = true // a new account needs an email the provider verified
	r := e.loginAs(rt, provider, id, "")
	require.Equal(rt, http.StatusOK, r.Status, string(r.Raw))
	return provider, id, r
}

// linkOf answers the local user that (provider, subject) is linked to.
func (e *oauthEnv) linkOf(rt *rapid.T, provider, subject string) string {
	a, err := e.App.DB.GetOAuthAccount(context.Background(), provider, subject)
	require.NoError(rt, err, "%s %s is not linked", provider, subject)
	return a.UserID
}

func (e *oauthEnv) linkCount(rt require.TestingT, userID string) int {
	links, err := e.App.DB.ListOAuthAccounts(context.Background(), userID)
	require.NoError(rt, err)
	return len(links)
}

func (e *oauthEnv) userCount(rt require.TestingT) int {
	var n int
	require.NoError(rt, e.App.DB.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM users").Scan(&n))
	return n
}

// secret256 is a secret of at least 256 bits in unpadded base64url.
var secret256 = regexp.MustCompile(`^[A-Za-z0-9_-]{43,}$`)

// Property 42: a flow with an allow-listed redirect_uri ends at that URI
// (its own query kept) with a fresh 256-bit code, which signs the
// external account's user in once, within 60 seconds; every later or late
// exchange is invalid_token.
func TestProperty42_CodeExchange(t *testing.T) {
	forEachOAuthEnv(t, func(t *testing.T, e *oauthEnv) {
		seen := map[string]bool{}
		apptest.CheckN(t, oauthChecks, func(rt *rapid.T) {
			provider := drawProvider(rt, "provider")
			id := drawIdentity(rt, provider, "id")
			id.EmailVerified = true
			base := rapid.SampledFrom([]string{appCallback, appCallback + "/" + rapid.StringMatching(`[a-z0-9]{1,8}`).Draw(rt, "sub"),
				"https://other.example.com/" + rapid.StringMatching(`[a-z0-9/]{0,12}`).Draw(rt, "other")}).Draw(rt, "redirect")
			from := rapid.StringMatching(`[a-zA-Z0-9 &=?/]{0,16}`).Draw(rt, "from")
			redirect := base
			if from != "" {
				redirect += "?from=" + url.QueryEscape(from)
			}
			e.fake(provider).SetUser(id)
			r := e.get(rt, e.start(rt, provider, redirect, ""), "")
			require.Equal(rt, http.StatusFound, r.Status, string(r.Raw))
			to, err := url.Parse(r.Header.Get("Location"))
			require.NoError(rt, err)
			require.Equal(rt, base, to.Scheme+"://"+to.Host+to.Path)
			require.Equal(rt, from, to.Query().Get("from"))
			code := to.Query().Get("code")
			require.Regexp(rt, secret256, code)
			require.False(rt, seen[code], "code issued twice")
			seen[code] = true
			userID := e.linkOf(rt, provider, id.Subject)

			wait := 0
			if !e.redis { // Redis expires keys on its own clock
				wait = rapid.OneOf(rapid.Just(0), rapid.IntRange(0, 59), rapid.IntRange(61, 300)).Draw(rt, "wait_seconds")
			}
			e.Clock.Advance(time.Duration(wait) * time.Second)
			x := e.Do(http.MethodPost, "/oauth/exchange", map[string]any{"code": code}, "")
			if wait > 60 {
				apptest.Expect(rt, x, http.StatusBadRequest, "invalid_token")
				return
			}
			require.Equal(rt, http.StatusOK, x.Status, string(x.Raw))
			require.Equal(rt, userID, userOf(x)["id"])
			claims := apptest.Claims(t, x.Str("access_token"))
			require.Equal(rt, userID, claims["sub"])
			require.Equal(rt, []any{"fed"}, claims["amr"])
			for range rapid.IntRange(1, 2).Draw(rt, "replays") {
				apptest.Expect(rt, e.Do(http.MethodPost, "/oauth/exchange", map[string]any{"code": code}, ""),
					http.StatusBadRequest, "invalid_token")
			}
			forged := rapid.StringMatching(`[A-Za-z0-9_-]{1,64}`).Draw(rt, "forged")
			apptest.Expect(rt, e.Do(http.MethodPost, "/oauth/exchange", map[string]any{"code": forged}, ""),
				http.StatusBadRequest, "invalid_token")
		})
	})
}

// Property 43: what the provider says about a new person (email in any
// case, its verification, a name in any script, or GitHub's login when
// there is no name) lands on the new account, and the link records the
// subject and the email as the provider spelled it.
func TestProperty43_ProfileFetch(t *testing.T) {
	forEachOAuthEnv(t, func(t *testing.T, e *oauthEnv) {
		apptest.CheckN(t, oauthChecks, func(rt *rapid.T) {
			provider, id, r := e.signUp(rt, "id")
			u := userOf(r)
			require.Equal(rt, strings.ToLower(id.Email), u["email"])
			require.Equal(rt, id.EmailVerified, u["email_verified"])
			require.Equal(rt, wantName(provider, id), u["name"])
			stored, err := e.App.DB.GetUser(context.Background(), u["id"].(string))
			require.NoError(rt, err)
			require.Equal(rt, wantName(provider, id), stored.Name)

			links := e.accounts(rt, r.Str("access_token"))
			require.Len(rt, links, 1)
			link := links[0].(map[string]any)
			require.Equal(rt, provider, link["provider"])
			require.Equal(rt, id.Subject, link["provider_user_id"])
			require.Equal(rt, id.Email, link["email"])
		})
	})
}

// Property 44: a flow started with a bearer token links the external
// account to the caller, whatever email it carries (even another
// account's); a (provider, subject) belongs to one user only: another
// user's attempt to link it is a conflict that changes nothing, and the
// owner linking it again keeps one link.
func TestProperty44_AccountLinking(t *testing.T) {
	forEachOAuthEnv(t, func(t *testing.T, e *oauthEnv) {
		apptest.CheckN(t, oauthChecks/2, func(rt *rapid.T) { // a case is six flows
			// Two accounts, each made by its own first social login.
			_, ownerID, owner := e.signUp(rt, "owner")
			_, otherID, other := e.signUp(rt, "other")
			ownerUser, otherUser := userOf(owner)["id"].(string), userOf(other)["id"].(string)

			p2 := drawProvider(rt, "link_provider")
			ext := drawIdentity(rt, p2, "ext")
			ext.Email = rapid.SampledFrom([]string{ext.Email, ownerID.Email, otherID.Email}).Draw(rt, "ext_email")
			r := e.loginAs(rt, p2, ext, owner.Str("access_token"))
			require.Equal(rt, http.StatusOK, r.Status, string(r.Raw))
			require.Equal(rt, ownerUser, userOf(r)["id"])
			require.Equal(rt, ownerUser, e.linkOf(rt, p2, ext.Subject))
			require.Equal(rt, 2, e.linkCount(rt, ownerUser))

			apptest.Expect(rt, e.loginAs(rt, p2, ext, other.Str("access_token")), http.StatusConflict, "conflict")
			require.Equal(rt, ownerUser, e.linkOf(rt, p2, ext.Subject))
			require.Equal(rt, 1, e.linkCount(rt, otherUser))

			again := e.loginAs(rt, p2, ext, owner.Str("access_token"))
			require.Equal(rt, http.StatusOK, again.Status, string(again.Raw))
			require.Equal(rt, 2, e.linkCount(rt, ownerUser))

			// Signed out, the linked account signs its owner in.
			alone := e.loginAs(rt, p2, ext, "")
			require.Equal(rt, http.StatusOK, alone.Status, string(alone.Raw))
			require.Equal(rt, ownerUser, userOf(alone)["id"])
		})
	})
}

// Property 45: an external account whose email matches no account makes
// exactly one new account: without a password, with the default role,
// linked to the external account (user.oauth_linked, via new_user).
func TestProperty45_NewUserCreation(t *testing.T) {
	forEachOAuthEnv(t, func(t *testing.T, e *oauthEnv) {
		seen := map[string]bool{}
		apptest.CheckN(t, oauthChecks, func(rt *rapid.T) {
			before := e.userCount(rt)
			provider, id, r := e.signUp(rt, "id")
			userID := userOf(r)["id"].(string)
			require.False(rt, seen[userID], "an existing account was reused")
			seen[userID] = true
			require.Equal(rt, before+1, e.userCount(rt))
			require.Equal(rt, userID, e.linkOf(rt, provider, id.Subject))
			require.Equal(rt, []any{"user"}, userOf(r)["roles"])

			u, err := e.App.DB.GetUser(context.Background(), userID)
			require.NoError(rt, err)
			require.False(rt, u.HasPassword(), "a social account got a password")
			logs, err := e.App.DB.ListAuditLogs(context.Background(), store.AuditQuery{UserID: userID, Action: "user.oauth_linked", Limit: 5})
			require.NoError(rt, err)
			require.Len(rt, logs, 1)
			require.Equal(rt, "new_user", logs[0].Metadata["via"])
			require.Equal(rt, provider, logs[0].Metadata["provider"])
		})
	})
}

// Property 47: signing in again and again with one external account, even
// after its email and name changed at the provider, reaches one user with
// one link, each time in a new session, and makes no other account.
func TestProperty47_MultipleOAuthLogins(t *testing.T) {
	forEachOAuthEnv(t, func(t *testing.T, e *oauthEnv) {
		apptest.CheckN(t, oauthChecks, func(rt *rapid.T) {
			provider, id, first := e.signUp(rt, "id")
			userID := userOf(first)["id"].(string)
			users := e.userCount(rt)
			sessions := map[string]bool{first.Str("session_id"): true}
			for i := range rapid.IntRange(1, 3).Draw(rt, "logins") {
				if rapid.Bool().Draw(rt, fmt.Sprintf("change_%d", i)) {
					changed := drawIdentity(rt, provider, fmt.Sprintf("changed_%d", i))
					id.Email, id.EmailVerified, id.Name = changed.Email, changed.EmailVerified, changed.Name
				}
				r := e.loginAs(rt, provider, id, "")
				require.Equal(rt, http.StatusOK, r.Status, string(r.Raw))
				require.Equal(rt, userID, userOf(r)["id"])
				require.Equal(rt, userOf(first)["email"], userOf(r)["email"], "the provider's new email replaced the account's")
				require.False(rt, sessions[r.Str("session_id")], "a session was reused")
				sessions[r.Str("session_id")] = true
			}
			require.Equal(rt, users, e.userCount(rt))
			require.Equal(rt, 1, e.linkCount(rt, userID))
			require.Equal(rt, userID, e.linkOf(rt, provider, id.Subject))
		})
	})
}

// Attacks on the flow beyond those of TestOAuth.
func TestOAuthAttacks(t *testing.T) {
	forEachOAuthEnv(t, func(t *testing.T, e *oauthEnv) {
		t.Run("SwappedStateBetweenUsers", func(t *testing.T) {
			// The victim starts linking acme; the attacker signs in at acme
			// as themself and plants their code on the victim's state (or
			// the victim's code on theirs). PKCE binds each code to its
			// flow's verifier: both are refused and nothing is linked.
			e.google.SetUser(oauthtest.Identity{Subject: "g-swap-victim", Email: "swap-victim@example.com", EmailVerified: true})
			victim := e.login(t, "google", "")
			require.Equal(t, http.StatusOK, victim.Status, string(victim.Raw))
			e.acme.SetUser(oauthtest.Identity{Subject: "acme-swap-victim", Email: "swap-victim@example.com", EmailVerified: true})
			v, err := url.Parse(e.start(t, "acme", "", victim.Str("access_token")))
			require.NoError(t, err)
			e.acme.SetUser(oauthtest.Identity{Subject: "acme-swap-attacker", Email: "swap-attacker@example.com", EmailVerified: true})
			a, err := url.Parse(e.start(t, "acme", "", ""))
			require.NoError(t, err)

			for _, swap := range []struct{ code, state *url.URL }{{a, v}, {v, a}} {
				cb := e.URL + "/oauth/acme/callback?code=" + url.QueryEscape(swap.code.Query().Get("code")) +
					"&state=" + url.QueryEscape(swap.state.Query().Get("state"))
				apptest.Expect(t, e.get(t, cb, ""), http.StatusBadRequest, "oauth_denied")
			}
			require.Len(t, e.accounts(t, victim.Str("access_token")), 1)
			for _, sub := range []string{"acme-swap-victim", "acme-swap-attacker"} {
				_, err := e.App.DB.GetOAuthAccount(t.Context(), "acme", sub)
				require.ErrorIs(t, err, store.ErrNotFound, sub)
			}
			// The failed callbacks spent both states.
			apptest.Expect(t, e.get(t, v.String(), ""), http.StatusBadRequest, "invalid_token")
			apptest.Expect(t, e.get(t, a.String(), ""), http.StatusBadRequest, "invalid_token")
		})

		t.Run("StateSpentByDenial", func(t *testing.T) {
			e.acme.SetUser(oauthtest.Identity{Subject: "acme-denied", Email: "denied@example.com", EmailVerified: true})
			cb, err := url.Parse(e.start(t, "acme", "", ""))
			require.NoError(t, err)
			denied := e.URL + "/oauth/acme/callback?error=access_denied&state=" + url.QueryEscape(cb.Query().Get("state"))
			apptest.Expect(t, e.get(t, denied, ""), http.StatusBadRequest, "oauth_denied")
			apptest.Expect(t, e.get(t, cb.String(), ""), http.StatusBadRequest, "invalid_token")
		})

		t.Run("MoreBadIDTokens", func(t *testing.T) {
			e.google.SetUser(oauthtest.Identity{Subject: "g-bad-2", Email: "bad-id-2@example.com", EmailVerified: true})
			defer e.google.Reset()
			// The nonce of another, unfinished flow.
			auth := e.get(t, e.URL+"/oauth/google/authorize", "")
			loc, err := url.Parse(auth.Header.Get("Location"))
			require.NoError(t, err)
			otherNonce := loc.Query().Get("nonce")
			require.NotEmpty(t, otherNonce)
			for name, tamper := range map[string]func(map[string]any){
				"nonce of another flow": func(c map[string]any) { c["nonce"] = otherNonce },
				"no nonce":              func(c map[string]any) { delete(c, "nonce") },
				"audiences of others":   func(c map[string]any) { c["aud"] = []string{"someone-else", "another"} },
				"issuer of another idp": func(c map[string]any) { c["iss"] = e.acme.URL() },
				"expired a second ago":  func(c map[string]any) { c["exp"] = e.Clock.Now().Add(-time.Second).Unix() },
			} {
				e.google.Tamper(tamper)
				apptest.Expect(t, e.login(t, "google", ""), http.StatusBadGateway, "oauth_provider_error")
				_, err := e.App.DB.GetOAuthAccount(t.Context(), "google", "g-bad-2")
				require.ErrorIs(t, err, store.ErrNotFound, name)
			}
			// An ID token acme signed, for the client at google.
			e.google.Reset()
			e.google.SignWithForeignKey(t)
			apptest.Expect(t, e.login(t, "google", ""), http.StatusBadGateway, "oauth_provider_error")
		})

		t.Run("RedirectAllowListBypasses", func(t *testing.T) {
			for _, bad := range []string{"//evil.example.com/cb", "https://app.example.com@evil.example.com/cb",
				"https://app.example.com:8443/cb", "https://app.example.com./cb", "https://app.example.com/cb/%2e%2e/admin",
				"https://app.example.com/cb%2F..%2Fadmin", "https://app.example.com/cb#frag", "https:app.example.com/cb",
				"https://app.example.com\\@evil.example.com/cb", "https://evil.example.com/https://app.example.com/cb",
				"/cb", "https://other.example.com.evil.example.com/"} {
				r := e.get(t, e.URL+"/oauth/google/authorize?redirect_uri="+url.QueryEscape(bad), "")
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed")
				require.Contains(t, string(r.Raw), "query.redirect_uri", bad)
			}
		})

		t.Run("UnverifiedEmailTakeover", func(t *testing.T) {
			_, err := e.App.Accounts.CreateUser(t.Context(), "owner-takeover@example.com", apptest.StrongPassword, nil, true)
			require.NoError(t, err)
			users := e.userCount(t)
			// An unverified address in another letter case at each provider.
			for i, p := range []string{"google", "acme", "github", "microsoft"} {
				e.fake(p).SetUser(oauthtest.Identity{Subject: strconv.Itoa(31337 + i), Email: "Owner-Takeover@EXAMPLE.com", TenantID: "t1"})
				apptest.Expect(t, e.login(t, p, ""), http.StatusConflict, "oauth_email_not_verified")
				_, err := e.App.DB.GetOAuthAccount(t.Context(), p, strconv.Itoa(31337+i))
				require.ErrorIs(t, err, store.ErrNotFound, p)
			}
			require.Equal(t, users, e.userCount(t), "no account was made")
			tok := e.Login("owner-takeover@example.com", apptest.StrongPassword)
			require.Empty(t, e.accounts(t, tok.Access), "nothing linked")
		})
	})
}

// Unlinking emits user.oauth_unlinked naming the provider, with the
// unlink; a refused unlink emits nothing.
func TestOAuthUnlinkEvent(t *testing.T) {
	forEachOAuthEnv(t, func(t *testing.T, e *oauthEnv) {
		e.google.SetUser(oauthtest.Identity{Subject: "g-unlink", Email: "unlink@example.com", EmailVerified: true})
		r := e.login(t, "google", "")
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		access, userID := r.Str("access_token"), userOf(r)["id"].(string)
		e.github.SetUser(oauthtest.Identity{Subject: "5150", Email: "unlink-gh@example.com", EmailVerified: true})
		require.Equal(t, http.StatusOK, e.login(t, "github", access).Status)
		links := e.accounts(t, access)
		require.Len(t, links, 2)
		googleLink := links[0].(map[string]any)["id"].(string)
		githubLink := links[1].(map[string]any)["id"].(string)
		require.Equal(t, "google", links[0].(map[string]any)["provider"])

		require.Equal(t, http.StatusNoContent, e.Do(http.MethodDelete, "/oauth/accounts/"+googleLink, nil, access).Status)
		apptest.Expect(t, e.Do(http.MethodDelete, "/oauth/accounts/"+githubLink, nil, access), http.StatusConflict, "last_login_method")

		logs, err := e.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: userID, Action: "user.oauth_unlinked", Limit: 5})
		require.NoError(t, err)
		require.Len(t, logs, 1)
		require.Equal(t, "google", logs[0].Metadata["provider"])
		require.Equal(t, googleLink, logs[0].Metadata["oauth_account_id"])
		i := slices.IndexFunc(e.Events(), func(ev gatehouse.Event) bool { return ev.ID == logs[0].Metadata["event_id"] })
		require.GreaterOrEqual(t, i, 0, "the audit row names the event")
		ev := e.Events()[i]
		require.EqualValues(t, "user.oauth_unlinked", ev.Type)
		require.Equal(t, userID, ev.UserID)
		require.Equal(t, "google", ev.Data["provider"])
	})
}
