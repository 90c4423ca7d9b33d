package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/oauth/oauthtest"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

func newTestService(t *testing.T, c cache.Cache) (*Service, *oauthtest.Provider) {
	fake := oauthtest.Start(t, oauthtest.OIDC, nil)
	s, err := New(nil, c, nil, nil, []ProviderConfig{{Name: "idp", ClientID: fake.ClientID, ClientSecret: fake.ClientSecret,
		Issuer: fake.URL()}}, Options{CallbackBase: "https://auth.example.com/api/v1/oauth",
		RedirectAllowlist: []string{"https://app.example.com/cb", "https://any.example.com"}})
	require.NoError(t, err)
	return s, fake
}

// Property 41: every authorization URL carries a fresh state, a nonce and
// an S256 PKCE challenge of the verifier kept with the state, which is
// bound to the provider and the redirect_uri.
func TestProperty41_OAuthInitiationIncludesPKCE(t *testing.T) {
	c := cache.NewMemory()
	s, _ := newTestService(t, c)
	seen := map[string]bool{}
	rapid.Check(t, func(rt *rapid.T) {
		redirect := rapid.SampledFrom([]string{"", "https://app.example.com/cb",
			"https://app.example.com/cb/" + rapid.StringMatching(`[a-z0-9]{0,12}`).Draw(rt, "path"),
			"https://any.example.com/" + rapid.StringMatching(`[a-z0-9/]{0,12}`).Draw(rt, "any")}).Draw(rt, "redirect")
		st, err := s.Authorize(t.Context(), "idp", redirect, "")
		require.NoError(rt, err)
		u, err := url.Parse(st.URL)
		require.NoError(rt, err)
		q := u.Query()
		require.Equal(rt, "S256", q.Get("code_challenge_method"))
		require.Equal(rt, "code", q.Get("response_type"))
		require.Equal(rt, "https://auth.example.com/api/v1/oauth/idp/callback", q.Get("redirect_uri"))
		state, nonce := q.Get("state"), q.Get("nonce")
		require.Equal(rt, st.State, state)
		require.Equal(rt, q.Get("redirect_uri"), st.Callback)
		require.GreaterOrEqual(rt, len(state), 43, "256-bit state")
		require.GreaterOrEqual(rt, len(nonce), 43, "256-bit nonce")
		require.False(rt, seen[state] || seen[nonce], "fresh every time")
		seen[state], seen[nonce] = true, true

		raw, err := c.Get(t.Context(), "oauth:state:"+hex.EncodeToString(token.Hash(state)))
		require.NoError(rt, err)
		var f flow
		require.NoError(rt, json.Unmarshal(raw, &f))
		sum := sha256.Sum256([]byte(f.Verifier))
		require.Equal(rt, base64.RawURLEncoding.EncodeToString(sum[:]), q.Get("code_challenge"))
		require.Equal(rt, nonce, f.Nonce)
		require.Equal(rt, "idp", f.Provider)
		require.Equal(rt, redirect, f.RedirectURI)
	})
}

// Only URLs under an allow-listed prefix (same scheme and host, path at or
// below) are accepted as redirect_uri.
func TestRedirectAllowList(t *testing.T) {
	s, _ := newTestService(t, cache.NewMemory())
	rapid.Check(t, func(rt *rapid.T) {
		host := rapid.SampledFrom([]string{"app.example.com", "app.example.com.evil.com", "evil.com", "APP.example.com"}).Draw(rt, "host")
		scheme := rapid.SampledFrom([]string{"https", "http"}).Draw(rt, "scheme")
		path := rapid.SampledFrom([]string{"/cb", "/cb/x", "/cbx", "/", "/cb/../admin", ""}).Draw(rt, "path")
		raw := scheme + "://" + host + path
		want := scheme == "https" && (host == "app.example.com" || host == "APP.example.com") &&
			(path == "/cb" || path == "/cb/x")
		_, err := s.Authorize(t.Context(), "idp", raw, "")
		if want {
			require.NoError(rt, err, raw)
		} else {
			require.Equal(rt, gatehouse.CodeValidationFailed, gatehouse.ErrorCode(err), raw)
		}
	})
}

// After five failed calls a provider's circuit opens: calls fail at once,
// without reaching it.
func TestBreakerOpensAfterFailures(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	client := &http.Client{Transport: newBreakerTransport("t", nil)}
	for range breakerThreshold {
		resp, err := client.Get(srv.URL)
		require.NoError(t, err, "a 5xx answer reaches the caller")
		require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		resp.Body.Close()
	}
	_, err := client.Get(srv.URL)
	require.ErrorIs(t, err, errCircuitOpen)
	require.EqualValues(t, breakerThreshold, calls.Load())
}

// An unreachable provider is a provider error, not an internal one.
func TestUnreachableProvider(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	s, err := New(nil, cache.NewMemory(), nil, nil, []ProviderConfig{{Name: "down", ClientID: "c", ClientSecret: "s", Issuer: srv.URL}}, Options{})
	require.NoError(t, err)
	_, err = s.Authorize(t.Context(), "down", "", "")
	require.Equal(t, gatehouse.CodeOAuthProviderError, gatehouse.ErrorCode(err))
	var ge *gatehouse.Error
	require.True(t, errors.As(err, &ge))
	require.NotContains(t, ge.Message, srv.URL, "the cause is logged, not shown")
}

// A provider that does not answer in time is a provider error.
func TestSlowProvider(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s, err := New(nil, cache.NewMemory(), nil, nil, []ProviderConfig{{Name: "slow", ClientID: "c", ClientSecret: "s", Issuer: srv.URL}},
		Options{Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = s.Authorize(t.Context(), "slow", "", "")
	require.Equal(t, gatehouse.CodeOAuthProviderError, gatehouse.ErrorCode(err))
}

// A state finishes only in the browser that started its flow: one
// presented without its binding (the cookie the HTTP layer set) is
// invalid_token, and spent all the same; as is an unknown one.
func TestCallbackNeedsBrowserBinding(t *testing.T) {
	s, _ := newTestService(t, cache.NewMemory())
	cb, err := s.CallbackURL("idp")
	require.NoError(t, err)
	require.Equal(t, "https://auth.example.com/api/v1/oauth/idp/callback", cb)

	for _, binding := range []string{"", "x", Binding("another state")} {
		st, err := s.Authorize(t.Context(), "idp", "", "")
		require.NoError(t, err)
		_, err = s.Callback(t.Context(), "idp", CallbackInput{State: st.State, Code: "c", Binding: binding}, gatehouse.ClientInfo{})
		require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err), binding)
		_, err = s.Callback(t.Context(), "idp", CallbackInput{State: st.State, Code: "c", Binding: Binding(st.State)}, gatehouse.ClientInfo{})
		require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err), "the refused state was spent")
	}

	// With its binding, the state gets past the check (to the provider's
	// answer, here a denial).
	st, err := s.Authorize(t.Context(), "idp", "", "")
	require.NoError(t, err)
	_, err = s.Callback(t.Context(), "idp", CallbackInput{State: st.State, Error: "access_denied", Binding: Binding(st.State)}, gatehouse.ClientInfo{})
	require.Equal(t, gatehouse.CodeOAuthDenied, gatehouse.ErrorCode(err))

	_, err = s.Callback(t.Context(), "idp", CallbackInput{State: "unknown", Code: "c", Binding: Binding("unknown")}, gatehouse.ClientInfo{})
	require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err))
	_, err = s.Callback(t.Context(), "idp", CallbackInput{Code: "c"}, gatehouse.ClientInfo{})
	require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err))
}
