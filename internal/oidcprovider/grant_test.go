package oidcprovider_test

import (
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/oidcprovider"
)

// authTime reads the auth_time of a token response's ID token, verified.
func (r *rp) authTime(tok *oauth2.Token, clientID string) time.Time {
	r.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: clientID, Now: r.e.Clock.Now}).Verify(r.ctx, raw)
	require.NoError(r.t, err)
	var c struct {
		AuthTime int64 `json:"auth_time"`
	}
	require.NoError(r.t, idt.Claims(&c))
	return time.Unix(c.AuthTime, 0).UTC()
}

// firstPartyRP registers a user and a first-party client, and makes its RP.
func firstPartyRP(t *testing.T, e *apptest.Env) (r *rp, email, id, secret string) {
	t.Helper()
	email = "ada@example.com"
	_, err := e.App.Accounts.CreateUser(t.Context(), email, apptest.StrongPassword, nil, true)
	require.NoError(t, err)
	id, secret = newClient(t, e, oidcprovider.ClientInput{FirstParty: true})
	return newRP(t, e, id, secret), email, id, secret
}

// The ID token's auth_time is when the user signed in on the browser:
// neither the code exchange nor a refresh moves it (OIDC Core §12.2); the
// access tokens carry the same.
func TestRefreshKeepsAuthTime(t *testing.T) {
	apptest.ForEachEngine(t, nil, func(t *testing.T, e *apptest.Env) {
		r, email, id, _ := firstPartyRP(t, e)
		r.open("GET", "/login", nil)
		signedIn := e.Clock.Now().UTC().Truncate(time.Second)
		r.signIn(email)

		e.Clock.Advance(7 * time.Minute)
		verifier := oauth2.GenerateVerifier()
		q := r.authorize(email, "s", "n", verifier)
		tok, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		require.Equal(t, signedIn, r.authTime(tok, id), "the browser's sign-in, not the exchange")

		e.Clock.Advance(9 * time.Minute)
		next, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
		require.NoError(t, err)
		require.Equal(t, signedIn, r.authTime(next, id), "a refresh keeps the original sign-in time")
		require.Equal(t, float64(signedIn.Unix()), apptest.Claims(t, next.AccessToken)["auth_time"])
	})
}

// A code presented again is refused, and the session its first exchange
// started ends: its access and refresh tokens stop (RFC 6749 §4.1.2).
func TestCodeReplayRevokesItsTokens(t *testing.T) {
	apptest.ForEachEngine(t, nil, func(t *testing.T, e *apptest.Env) {
		r, email, id, secret := firstPartyRP(t, e)
		verifier := oauth2.GenerateVerifier()
		code := r.authorize(email, "s", "n", verifier).Get("code")
		tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		require.Equal(t, true, r.introspect(id, secret, tok.AccessToken)["active"])

		// Another exchange from the same browser is untouched.
		other, err := r.conf.Exchange(r.ctx, r.authorize(email, "s2", "n2", verifier).Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)

		_, err = r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
		requireOAuthError(t, err, "invalid_grant")
		require.Equal(t, false, r.introspect(id, secret, tok.AccessToken)["active"], "the access token stops")
		require.Equal(t, false, r.introspect(id, secret, tok.RefreshToken)["active"], "the refresh token stops")
		_, err = r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
		requireOAuthError(t, err, "invalid_grant")
		require.Equal(t, true, r.introspect(id, secret, other.AccessToken)["active"])
	})
}
