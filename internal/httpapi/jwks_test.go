package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

func TestJWKSPublishesOnlyPublicParts(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rsaKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		{Key: &rsaKey.PublicKey, KeyID: "rsa-0", Algorithm: "RS256", Use: "sig"},
		{Key: ecKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		{Key: edKey, KeyID: "ed-1", Algorithm: "EdDSA", Use: "sig"},
		{Key: []byte("symmetric-secret-0123456789abcdef"), KeyID: "hmac", Algorithm: "HS256"},
		{Key: nil, KeyID: "empty"},
	}}
	e := newEnv(t, func(d *httpapi.Deps) {
		d.JWKS = func(context.Context) (jose.JSONWebKeySet, error) { return set, nil }
	})

	rec := e.get("/.well-known/jwks.json")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "public, max-age=300", rec.Header().Get("Cache-Control"))
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))

	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	var kids []string
	for _, k := range raw.Keys {
		kids = append(kids, k["kid"].(string))
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			require.NotContains(t, k, private, "key %v leaks %q", k["kid"], private)
		}
	}
	require.Equal(t, []string{"rsa-1", "rsa-0", "ec-1", "ed-1"}, kids)
	require.Equal(t, "RSA", raw.Keys[0]["kty"])
	require.Equal(t, "AQAB", raw.Keys[0]["e"])
	require.Equal(t, "RS256", raw.Keys[0]["alg"])
	require.Equal(t, "sig", raw.Keys[0]["use"])
	require.NotContains(t, rec.Body.String(), "symmetric")

	// The published set round-trips into keys that verify.
	var parsed jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &parsed))
	require.Len(t, parsed.Keys, 4)
	for _, k := range parsed.Keys {
		require.True(t, k.IsPublic(), k.KeyID)
	}

	// Not under the API prefix.
	requireProblem(t, e.get("/api/v1/.well-known/jwks.json"), http.StatusNotFound, gatehouse.CodeNotFound)
}

func TestJWKSEmptyAndFailing(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.get("/.well-known/jwks.json")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"keys":[]}`, rec.Body.String())

	e = newEnv(t, func(d *httpapi.Deps) {
		d.JWKS = func(context.Context) (jose.JSONWebKeySet, error) {
			return jose.JSONWebKeySet{}, errors.New("key store at 10.0.0.5 unreachable")
		}
	})
	rec = e.get("/.well-known/jwks.json")
	p := requireProblem(t, rec, http.StatusServiceUnavailable, gatehouse.CodeUnavailable)
	require.Equal(t, "signing keys are unavailable", p.Detail)
	require.NotContains(t, rec.Body.String(), "10.0.0.5")
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"), "a failure is not cached")
	require.Contains(t, e.logs.String(), "10.0.0.5")
}
