package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// ring is a fixed two-key ring: enough to test the JWT rules without a
// database (the real keys.Ring is tested in its own package).
type ring struct {
	kid  string
	priv *rsa.PrivateKey
}

var (
	keyOnce         sync.Once
	ourKey, evilKey *rsa.PrivateKey
)

func keysForTest(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		var err error
		ourKey, err = rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		evilKey, err = rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
	})
	return ourKey, evilKey
}

func (r ring) Signer(context.Context) (string, *rsa.PrivateKey, error) { return r.kid, r.priv, nil }
func (r ring) PublicKey(_ context.Context, kid string) (*rsa.PublicKey, error) {
	if kid != r.kid {
		return nil, token.ErrInvalid
	}
	return &r.priv.PublicKey, nil
}

// newService makes a service that remembers verified tokens, as the
// server's does, so every rule below is also checked on a token it has
// verified before.
func newService(t *testing.T, c *testclock.Clock) (*token.Service, *rsa.PrivateKey, *rsa.PrivateKey) {
	ours, evil := keysForTest(t)
	s := token.New(ring{kid: "k1", priv: ours}, token.Options{Issuer: "https://auth.example.com", TTL: 15 * time.Minute, Now: c.Now,
		VerifiedCacheSize: 100})
	return s, ours, evil
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	c := testclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	s, _, _ := newService(t, c)
	auth := c.Now().Add(-time.Minute)
	raw, claims, err := s.Issue(context.Background(), "user-1", "sess-1", []string{"pwd"}, auth)
	require.NoError(t, err)
	require.Equal(t, c.Now().Add(15*time.Minute), claims.ExpiresAt)
	require.Equal(t, 15*time.Minute, s.TTL())

	header, payload := decode(t, raw)
	require.Equal(t, "RS256", header["alg"])
	require.Equal(t, "at+jwt", header["typ"])
	require.Equal(t, "k1", header["kid"])
	for _, claim := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "sid", "amr", "nbf", "auth_time", "client_id"} {
		require.Contains(t, payload, claim)
	}
	require.Equal(t, token.DefaultClientID, payload["client_id"], "first-party tokens carry the default client id")

	got, err := s.Verify(context.Background(), raw)
	require.NoError(t, err)
	require.Equal(t, "user-1", got.Subject)
	require.Equal(t, "sess-1", got.SessionID)
	require.Equal(t, []string{"pwd"}, got.AMR)
	require.Equal(t, claims.ID, got.ID)
	require.Equal(t, auth, got.AuthTime)
	require.Equal(t, c.Now(), got.IssuedAt)
	require.Equal(t, "gatehouse", got.ClientID)
}

// RFC 9068 §2.2 requires client_id: first-party tokens carry the
// configured id, tokens issued to an OAuth client carry that client's id,
// and tokens issued before the claim existed still verify (until they
// expire) with an empty ClientID.
func TestAccessTokensCarryClientID(t *testing.T) {
	c := testclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	ours, _ := keysForTest(t)
	ctx := context.Background()
	s := token.New(ring{kid: "k1", priv: ours}, token.Options{Issuer: "https://auth.example.com", ClientID: "acme-portal", TTL: time.Minute, Now: c.Now})

	raw, claims, err := s.Issue(ctx, "u", "s", nil, time.Time{})
	require.NoError(t, err)
	require.Equal(t, "acme-portal", claims.ClientID)
	_, payload := decode(t, raw)
	require.Equal(t, "acme-portal", payload["client_id"])
	got, err := s.Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, "acme-portal", got.ClientID)

	raw, claims, err = s.IssueFor(ctx, "client-123", "u", "s", []string{"pwd"}, time.Time{})
	require.NoError(t, err)
	require.Equal(t, "client-123", claims.ClientID)
	got, err = s.Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, "client-123", got.ClientID)

	// A token from before the claim: everything else as Issue makes it.
	now := c.Now()
	old := jwt.Claims{Issuer: "https://auth.example.com", Subject: "u", Audience: jwt.Audience{"https://auth.example.com"},
		ID: "j", IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: ours},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	require.NoError(t, err)
	legacy, err := jwt.Signed(signer).Claims(old).Claims(map[string]any{"sid": "s", "amr": []string{"pwd"}}).Serialize()
	require.NoError(t, err)
	got, err = s.Verify(ctx, legacy)
	require.NoError(t, err, "tokens issued before client_id keep working until they expire")
	require.Empty(t, got.ClientID)
}

// Property 26 (access token expiry) lives in the accounts API tests; here
// the verifier's own time rules.
func TestVerifyRejectsExpiredAndFutureTokens(t *testing.T) {
	c := testclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	s, _, _ := newService(t, c)
	raw, _, err := s.Issue(context.Background(), "u", "s", nil, time.Time{})
	require.NoError(t, err)

	c.Advance(15*time.Minute + 29*time.Second)
	_, err = s.Verify(context.Background(), raw)
	require.NoError(t, err, "within leeway")
	c.Advance(2 * time.Second)
	_, err = s.Verify(context.Background(), raw)
	require.ErrorIs(t, err, token.ErrInvalid)

	c.Set(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) // an hour before issue
	_, err = s.Verify(context.Background(), raw)
	require.ErrorIs(t, err, token.ErrInvalid, "not yet valid")
}

func TestVerifyRejectsForgeries(t *testing.T) {
	c := testclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	s, ours, evil := newService(t, c)
	ctx := context.Background()
	now := c.Now()
	std := jwt.Claims{Issuer: "https://auth.example.com", Subject: "admin", Audience: jwt.Audience{"https://auth.example.com"},
		ID: "j", IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
	extra := map[string]any{"sid": "s", "amr": []string{"pwd"}}

	sign := func(alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions, claims jwt.Claims) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		require.NoError(t, err)
		raw, err := jwt.Signed(signer).Claims(claims).Claims(extra).Serialize()
		require.NoError(t, err)
		return raw
	}
	typed := func() *jose.SignerOptions { return (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1") }

	cases := map[string]string{
		"attacker key with our kid":           sign(jose.RS256, evil, typed(), std),
		"attacker key in jwk header":          sign(jose.RS256, evil, typed().WithHeader("jwk", jose.JSONWebKey{Key: &evil.PublicKey}), std),
		"attacker jku":                        sign(jose.RS256, evil, typed().WithHeader("jku", "https://evil.example/jwks.json"), std),
		"HS256 keyed with our public modulus": sign(jose.HS256, ours.PublicKey.N.Bytes(), typed(), std),
		"wrong typ":                           sign(jose.RS256, ours, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"), std),
		"no typ":                              sign(jose.RS256, ours, (&jose.SignerOptions{}).WithHeader("kid", "k1"), std),
		"unknown kid":                         sign(jose.RS256, ours, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k9"), std),
		"no kid":                              sign(jose.RS256, ours, (&jose.SignerOptions{}).WithType("at+jwt"), std),
		"PS256":                               sign(jose.PS256, ours, typed(), std),
		"garbage":                             "not.a.jwt",
		"alg none":                            unsigned(t, std),
	}
	wrongIss := std
	wrongIss.Issuer = "https://other.example.com"
	cases["wrong issuer"] = sign(jose.RS256, ours, typed(), wrongIss)
	wrongAud := std
	wrongAud.Audience = jwt.Audience{"another-api"}
	cases["wrong audience"] = sign(jose.RS256, ours, typed(), wrongAud)

	for name, raw := range cases {
		_, err := s.Verify(ctx, raw)
		require.ErrorIs(t, err, token.ErrInvalid, name)
	}

	good := sign(jose.RS256, ours, typed(), std)
	_, err := s.Verify(ctx, good)
	require.NoError(t, err, "the control case verifies")

	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root"}`)) + "." + parts[2]
	_, err = s.Verify(ctx, tampered)
	require.ErrorIs(t, err, token.ErrInvalid)
}

func TestOpaqueSecrets(t *testing.T) {
	a, ha := token.NewOpaque()
	b, hb := token.NewOpaque()
	require.NotEqual(t, a, b)
	require.Len(t, a, 43, "256 bits, base64url")
	require.Equal(t, ha, token.Hash(a))
	require.NotEqual(t, ha, hb)
	require.Len(t, ha, 32)
}

func unsigned(t *testing.T, c jwt.Claims) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"k1"}`))
	p, err := json.Marshal(c)
	require.NoError(t, err)
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func decode(t *testing.T, raw string) (map[string]any, map[string]any) {
	parts := strings.Split(raw, ".")
	require.Len(t, parts, 3)
	var h, p map[string]any
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(hb, &h))
	require.NoError(t, json.Unmarshal(pb, &p))
	return h, p
}

// keysErr is a ring whose PublicKey fails with err (after a good Signer).
type keysErr struct {
	ring
	err error
}

func (k keysErr) PublicKey(context.Context, string) (*rsa.PublicKey, error) { return nil, k.err }

// Only a token the ring does not know is invalid; a ring that could not
// look (its database is down) is an error of the server, which must not
// tell the client to drop a good token.
func TestVerifySeparatesUnknownKeysFromRingFailures(t *testing.T) {
	c := testclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	ours, _ := keysForTest(t)
	ctx := context.Background()
	raw, _, err := token.New(ring{kid: "k1", priv: ours}, token.Options{Issuer: "https://auth.example.com", TTL: time.Minute, Now: c.Now}).
		Issue(ctx, "u", "s", nil, time.Time{})
	require.NoError(t, err)

	down := errors.New("load signing keys: database down")
	for name, tc := range map[string]struct {
		err     error
		invalid bool
	}{
		"unknown kid":           {fmt.Errorf("wrapped: %w", keys.ErrUnknownKey), true},
		"invalid":               {token.ErrInvalid, true},
		"database down":         {down, false},
		"context canceled":      {context.Canceled, false},
		"database down wrapped": {fmt.Errorf("look up signing key: %w", down), false},
	} {
		s := token.New(keysErr{ring: ring{kid: "k1", priv: ours}, err: tc.err}, token.Options{Issuer: "https://auth.example.com", TTL: time.Minute, Now: c.Now})
		_, err := s.Verify(ctx, raw)
		require.Error(t, err, name)
		if tc.invalid {
			require.ErrorIs(t, err, token.ErrInvalid, name)
		} else {
			require.NotErrorIs(t, err, token.ErrInvalid, name)
			require.ErrorIs(t, err, tc.err, name)
		}
	}
}
