package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// clientCases cover Clients: the OpenID Provider's clients, authorization
// requests and codes, consents and grants.
var clientCases = []testCase{
	{name: "Clients/CreateGet", covers: []string{"CreateClient", "GetClient"}, fn: testClientCreateGet},
	{name: "Clients/List", covers: []string{"ListClients"}, fresh: true, fn: testClientList},
	{name: "Clients/Update", covers: []string{"UpdateClient", "SetClientSecret"}, fn: testClientUpdate},
	{name: "Clients/Delete", covers: []string{"DeleteClient"}, fn: testClientDelete},
	{name: "AuthRequests/CreateGet", covers: []string{"CreateAuthRequest", "GetAuthRequest"}, fn: testAuthRequestCreateGet},
	{name: "AuthRequests/Complete", covers: []string{"CompleteAuthRequest", "SetAuthRequestLogin", "SetAuthRequestCode"}, fn: testAuthRequestComplete},
	{name: "AuthRequests/Consume", covers: []string{"ConsumeAuthCode"}, fn: testAuthCodeConsume},
	{name: "AuthRequests/ByCodeGrant", covers: []string{"GetAuthRequestByCode", "SetAuthCodeGrant"}, fn: testAuthCodeGrant},
	{name: "AuthRequests/ConsumeRace", covers: []string{"ConsumeAuthCode"}, fn: testAuthCodeConsumeRace},
	{name: "AuthRequests/SetCodeRace", covers: []string{"SetAuthRequestCode"}, fn: testAuthCodeSetRace},
	{name: "AuthRequests/DeleteStale", covers: []string{"DeleteStaleAuthRequests"}, fresh: true, fn: testAuthRequestDeleteStale},
	{name: "Consents/PutGetListDelete", covers: []string{"PutConsent", "GetConsent", "ListConsents", "DeleteConsent"}, fn: testConsents},
	{name: "ClientGrants/CreateGetList", covers: []string{"CreateClientGrant", "GetClientGrant", "ListClientGrants", "GetSessionClient"}, fn: testClientGrants},
}

func newClient() gatehouse.Client {
	return gatehouse.Client{
		ID: gatehouse.NewID(), Name: "Grafana – Zürich", SecretHash: []byte("0123456789abcdef0123456789abcdef"),
		RedirectURIs:           []string{"https://grafana.example.com/login/generic_oauth", "http://127.0.0.1:3000/cb"},
		PostLogoutRedirectURIs: []string{"https://grafana.example.com/"},
		GrantTypes:             []string{gatehouse.GrantAuthorizationCode, gatehouse.GrantRefreshToken},
		Scopes:                 []string{"openid", "profile", "email", "offline_access", "users:read"},
		CreatedAt:              base, UpdatedAt: base.Add(time.Second),
	}
}

func createClient(t *testing.T, s store.Store) gatehouse.Client {
	t.Helper()
	c := newClient()
	require.NoError(t, s.CreateClient(t.Context(), c))
	return c
}

func requireClient(t *testing.T, want, got gatehouse.Client) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Name, got.Name)
	require.Equal(t, want.SecretHash, got.SecretHash)
	require.Equal(t, want.RedirectURIs, got.RedirectURIs)
	require.Equal(t, want.PostLogoutRedirectURIs, got.PostLogoutRedirectURIs)
	require.Equal(t, want.GrantTypes, got.GrantTypes)
	require.Equal(t, want.Scopes, got.Scopes)
	require.Equal(t, want.Public, got.Public)
	require.Equal(t, want.FirstParty, got.FirstParty)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.UpdatedAt, got.UpdatedAt, "UpdatedAt")
}

func testClientCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := createClient(t, s)
	got, err := s.GetClient(ctx, c.ID)
	require.NoError(t, err)
	requireClient(t, c, got)

	// A public client has no secret; empty lists read back nil.
	p := gatehouse.Client{ID: gatehouse.NewID(), Name: "spa", Public: true, FirstParty: true, CreatedAt: base, UpdatedAt: base}
	require.NoError(t, s.CreateClient(ctx, p))
	got, err = s.GetClient(ctx, p.ID)
	require.NoError(t, err)
	requireClient(t, p, got)

	require.ErrorIs(t, s.CreateClient(ctx, c), store.ErrConflict)
	_, err = s.GetClient(ctx, gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testClientList(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ids []string
	for range 5 {
		ids = append(ids, createClient(t, s).ID)
	}
	first, err := s.ListClients(ctx, store.ClientQuery{Limit: 3})
	require.NoError(t, err)
	require.Equal(t, ids[:3], idsOf(first, func(c gatehouse.Client) string { return c.ID }))
	rest, err := s.ListClients(ctx, store.ClientQuery{After: ids[2], Limit: 3})
	require.NoError(t, err)
	require.Equal(t, ids[3:], idsOf(rest, func(c gatehouse.Client) string { return c.ID }))
	none, err := s.ListClients(ctx, store.ClientQuery{After: ids[4], Limit: 3})
	require.NoError(t, err)
	require.Empty(t, none)
	_, err = s.ListClients(ctx, store.ClientQuery{Limit: 0})
	require.Error(t, err)
	require.NotErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
}

func testClientUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := createClient(t, s)
	u := c
	u.Name, u.RedirectURIs, u.PostLogoutRedirectURIs = "renamed", []string{"https://new.example/cb"}, nil
	u.GrantTypes, u.Scopes, u.FirstParty = []string{gatehouse.GrantClientCredentials}, []string{"users:read"}, true
	u.UpdatedAt = base.Add(time.Hour)
	// UpdateClient never touches the secret nor Public.
	u.SecretHash, u.Public = []byte("other"), true
	require.NoError(t, s.UpdateClient(ctx, u))
	got, err := s.GetClient(ctx, c.ID)
	require.NoError(t, err)
	want := u
	want.SecretHash, want.Public = c.SecretHash, c.Public
	requireClient(t, want, got)

	hash := []byte("fedcba9876543210fedcba9876543210")
	require.NoError(t, s.SetClientSecret(ctx, c.ID, hash, base.Add(2*time.Hour)))
	got, err = s.GetClient(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, hash, got.SecretHash)
	requireTime(t, base.Add(2*time.Hour), got.UpdatedAt, "UpdatedAt")

	u.ID = gatehouse.NewID()
	require.ErrorIs(t, s.UpdateClient(ctx, u), store.ErrNotFound)
	require.ErrorIs(t, s.SetClientSecret(ctx, u.ID, hash, base), store.ErrNotFound)
}

func testClientDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := createClient(t, s)
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	r := newAuthRequest(c.ID)
	require.NoError(t, s.CreateAuthRequest(ctx, r))
	require.NoError(t, s.PutConsent(ctx, gatehouse.Consent{UserID: u.ID, ClientID: c.ID, CreatedAt: base, UpdatedAt: base}))
	require.NoError(t, s.CreateClientGrant(ctx, gatehouse.ClientGrant{SessionID: sess.ID, ClientID: c.ID, UserID: u.ID, CreatedAt: base}))

	require.NoError(t, s.DeleteClient(ctx, c.ID))
	_, err := s.GetClient(ctx, c.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, r.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "requests go with the client")
	_, err = s.GetConsent(ctx, u.ID, c.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "consents go with the client")
	_, err = s.GetClientGrant(ctx, sess.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "grants go with the client")
	_, err = s.GetSession(ctx, sess.ID)
	require.NoError(t, err, "the session itself stays (the provider revokes it)")
	require.ErrorIs(t, s.DeleteClient(ctx, c.ID), store.ErrNotFound)
}

func newAuthRequest(clientID string) gatehouse.AuthRequest {
	maxAge := 300
	return gatehouse.AuthRequest{
		ID: gatehouse.NewID(), ClientID: clientID, RedirectURI: "https://grafana.example.com/login/generic_oauth",
		Scopes: []string{"openid", "email"}, State: "st-ä", Nonce: "n-0S6_WzA2Mj", ResponseType: "code", ResponseMode: "query",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", CodeChallengeMethod: "S256",
		Prompt: []string{"login", "consent"}, MaxAge: &maxAge, LoginHint: "ada@example.com",
		CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute),
	}
}

func requireAuthRequest(t *testing.T, want, got gatehouse.AuthRequest) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.ClientID, got.ClientID)
	require.Equal(t, want.RedirectURI, got.RedirectURI)
	require.Equal(t, want.Scopes, got.Scopes)
	require.Equal(t, want.State, got.State)
	require.Equal(t, want.Nonce, got.Nonce)
	require.Equal(t, want.ResponseType, got.ResponseType)
	require.Equal(t, want.ResponseMode, got.ResponseMode)
	require.Equal(t, want.CodeChallenge, got.CodeChallenge)
	require.Equal(t, want.CodeChallengeMethod, got.CodeChallengeMethod)
	require.Equal(t, want.Prompt, got.Prompt)
	require.Equal(t, want.MaxAge, got.MaxAge)
	require.Equal(t, want.LoginHint, got.LoginHint)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")
	requireTimePtr(t, want.LoginAt, got.LoginAt, "LoginAt")
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.SessionID, got.SessionID)
	requireTimePtr(t, want.AuthTime, got.AuthTime, "AuthTime")
	require.Equal(t, want.AMR, got.AMR)
	require.Equal(t, want.CodeHash, got.CodeHash)
	requireTimePtr(t, want.CodeExpiresAt, got.CodeExpiresAt, "CodeExpiresAt")
	requireTimePtr(t, want.UsedAt, got.UsedAt, "UsedAt")
	require.Equal(t, want.GrantSessionID, got.GrantSessionID)
}

func testAuthRequestCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := createClient(t, s)
	r := newAuthRequest(c.ID)
	require.NoError(t, s.CreateAuthRequest(ctx, r))
	got, err := s.GetAuthRequest(ctx, r.ID)
	require.NoError(t, err)
	requireAuthRequest(t, r, got)
	require.False(t, got.Done())

	// Optional fields stay empty.
	bare := gatehouse.AuthRequest{ID: gatehouse.NewID(), ClientID: c.ID, RedirectURI: "x:/y", CreatedAt: base, ExpiresAt: base}
	require.NoError(t, s.CreateAuthRequest(ctx, bare))
	got, err = s.GetAuthRequest(ctx, bare.ID)
	require.NoError(t, err)
	requireAuthRequest(t, bare, got)

	require.ErrorIs(t, s.CreateAuthRequest(ctx, r), store.ErrConflict)
	unknown := newAuthRequest(gatehouse.NewID())
	require.ErrorIs(t, s.CreateAuthRequest(ctx, unknown), store.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
}

// completedRequest makes a request a user signed in for, with a code.
func completedRequest(t *testing.T, s store.Store, code []byte, codeExpires time.Time) gatehouse.AuthRequest {
	t.Helper()
	ctx := t.Context()
	c := createClient(t, s)
	u := createUser(t, s)
	r := newAuthRequest(c.ID)
	require.NoError(t, s.CreateAuthRequest(ctx, r))
	r.UserID, r.SessionID, r.AuthTime, r.AMR = u.ID, gatehouse.NewID(), ptr(base.Add(-time.Minute)), []string{"pwd", "otp"}
	require.NoError(t, s.CompleteAuthRequest(ctx, r))
	if code != nil {
		require.NoError(t, s.SetAuthRequestCode(ctx, r.ID, code, codeExpires))
		r.CodeHash, r.CodeExpiresAt = code, &codeExpires
	}
	return r
}

func testAuthRequestComplete(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := completedRequest(t, s, nil, time.Time{})
	require.NoError(t, s.SetAuthRequestLogin(ctx, r.ID, base.Add(time.Second)))
	r.LoginAt = ptr(base.Add(time.Second))
	got, err := s.GetAuthRequest(ctx, r.ID)
	require.NoError(t, err)
	requireAuthRequest(t, r, got)
	require.True(t, got.Done())

	// A code only for a completed request, once.
	c := createClient(t, s)
	pending := newAuthRequest(c.ID)
	require.NoError(t, s.CreateAuthRequest(ctx, pending))
	require.ErrorIs(t, s.SetAuthRequestCode(ctx, pending.ID, []byte("h1"), base), store.ErrNotFound)
	hash := []byte(gatehouse.NewID())
	require.NoError(t, s.SetAuthRequestCode(ctx, r.ID, hash, base.Add(time.Minute)))
	require.ErrorIs(t, s.SetAuthRequestCode(ctx, r.ID, []byte(gatehouse.NewID()), base), store.ErrNotFound)
	r.CodeHash, r.CodeExpiresAt = hash, ptr(base.Add(time.Minute))
	got, err = s.GetAuthRequest(ctx, r.ID)
	require.NoError(t, err)
	requireAuthRequest(t, r, got)
	// Once it has a code, who signed in is fixed.
	again := r
	again.UserID = createUser(t, s).ID
	require.ErrorIs(t, s.CompleteAuthRequest(ctx, again), store.ErrNotFound)

	// Unknown ids and users.
	require.ErrorIs(t, s.SetAuthRequestLogin(ctx, gatehouse.NewID(), base), store.ErrNotFound)
	missing := pending
	missing.UserID, missing.AuthTime = gatehouse.NewID(), ptr(base)
	require.ErrorIs(t, s.CompleteAuthRequest(ctx, missing), store.ErrNotFound)
	missing.ID, missing.UserID = gatehouse.NewID(), r.UserID
	require.ErrorIs(t, s.CompleteAuthRequest(ctx, missing), store.ErrNotFound)
	require.ErrorIs(t, s.SetAuthRequestCode(ctx, gatehouse.NewID(), []byte("h2"), base), store.ErrNotFound)
}

func testAuthCodeConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	hash := []byte(gatehouse.NewID())
	r := completedRequest(t, s, hash, base.Add(time.Minute))

	_, err := s.ConsumeAuthCode(ctx, hash, base.Add(time.Minute))
	require.ErrorIs(t, err, store.ErrNotFound, "expired at CodeExpiresAt")
	_, err = s.ConsumeAuthCode(ctx, []byte(gatehouse.NewID()), base)
	require.ErrorIs(t, err, store.ErrNotFound, "unknown code")

	got, err := s.ConsumeAuthCode(ctx, hash, base.Add(59*time.Second))
	require.NoError(t, err)
	r.UsedAt = ptr(base.Add(59 * time.Second))
	requireAuthRequest(t, r, got)
	_, err = s.ConsumeAuthCode(ctx, hash, base.Add(30*time.Second))
	require.ErrorIs(t, err, store.ErrNotFound, "spent")
}

func testAuthCodeGrant(t *testing.T, s store.Store) {
	ctx := t.Context()
	hash := []byte(gatehouse.NewID())
	r := completedRequest(t, s, hash, base.Add(time.Minute))
	_, err := s.GetAuthRequestByCode(ctx, []byte(gatehouse.NewID()))
	require.ErrorIs(t, err, store.ErrNotFound, "unknown code")
	_, err = s.GetAuthRequestByCode(ctx, nil)
	require.ErrorIs(t, err, store.ErrNotFound, "no code")
	got, err := s.GetAuthRequestByCode(ctx, hash)
	require.NoError(t, err)
	requireAuthRequest(t, r, got)

	require.ErrorIs(t, s.SetAuthCodeGrant(ctx, r.ID, "s-1"), store.ErrNotFound, "the code is not spent yet")
	_, err = s.ConsumeAuthCode(ctx, hash, base)
	require.NoError(t, err)
	require.NoError(t, s.SetAuthCodeGrant(ctx, r.ID, "s-1"))
	r.UsedAt, r.GrantSessionID = ptr(base), "s-1"
	got, err = s.GetAuthRequestByCode(ctx, hash)
	require.NoError(t, err, "a spent code is still found")
	requireAuthRequest(t, r, got)
	require.ErrorIs(t, s.SetAuthCodeGrant(ctx, gatehouse.NewID(), "s-2"), store.ErrNotFound)
}

func testAuthCodeConsumeRace(t *testing.T, s store.Store) {
	hash := []byte(gatehouse.NewID())
	r := completedRequest(t, s, hash, base.Add(time.Hour))
	winner := requireOneWinner(t, s, "spend one code", store.ErrNotFound, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		got, err := q.ConsumeAuthCode(ctx, hash, racerTime(i))
		if err == nil {
			require.Equal(t, r.ID, got.ID)
		}
		return won(err)
	})
	got, err := s.GetAuthRequest(t.Context(), r.ID)
	require.NoError(t, err)
	requireTimePtr(t, ptr(racerTime(winner)), got.UsedAt, "UsedAt")
}

func testAuthCodeSetRace(t *testing.T, s store.Store) {
	r := completedRequest(t, s, nil, time.Time{})
	hashes := make([][]byte, racers)
	for i := range hashes {
		hashes[i] = []byte(gatehouse.NewID())
	}
	winner := requireOneWinner(t, s, "give a request its code", store.ErrNotFound, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return won(q.SetAuthRequestCode(ctx, r.ID, hashes[i], base.Add(time.Minute)))
	})
	got, err := s.GetAuthRequest(t.Context(), r.ID)
	require.NoError(t, err)
	require.Equal(t, hashes[winner], got.CodeHash)
}

func testAuthRequestDeleteStale(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := createClient(t, s)
	var keep []string
	for i := range 6 {
		r := newAuthRequest(c.ID)
		r.ExpiresAt = base.Add(time.Duration(i-3) * time.Minute) // 3 before base, 3 at or after
		require.NoError(t, s.CreateAuthRequest(ctx, r))
		if i >= 3 {
			keep = append(keep, r.ID)
		}
	}
	requireSweptOnce(t, s, 3, func(ctx context.Context, q store.Queries) (int64, error) {
		return q.DeleteStaleAuthRequests(ctx, base)
	})
	for _, id := range keep {
		_, err := s.GetAuthRequest(ctx, id)
		require.NoError(t, err)
	}
}

func testConsents(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	c1, c2 := createClient(t, s), createClient(t, s)
	none, err := s.ListConsents(ctx, u.ID)
	require.NoError(t, err)
	require.Empty(t, none)

	con := gatehouse.Consent{UserID: u.ID, ClientID: c2.ID, Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}
	require.NoError(t, s.PutConsent(ctx, con))
	require.NoError(t, s.PutConsent(ctx, gatehouse.Consent{UserID: u.ID, ClientID: c1.ID, CreatedAt: base, UpdatedAt: base}))
	require.NoError(t, s.PutConsent(ctx, gatehouse.Consent{UserID: other.ID, ClientID: c1.ID, CreatedAt: base, UpdatedAt: base}))
	// Putting again widens the scopes and keeps CreatedAt.
	wider := con
	wider.Scopes, wider.CreatedAt, wider.UpdatedAt = []string{"openid", "email"}, base.Add(time.Hour), base.Add(time.Hour)
	require.NoError(t, s.PutConsent(ctx, wider))
	got, err := s.GetConsent(ctx, u.ID, c2.ID)
	require.NoError(t, err)
	require.Equal(t, wider.Scopes, got.Scopes)
	requireTime(t, base, got.CreatedAt, "CreatedAt")
	requireTime(t, base.Add(time.Hour), got.UpdatedAt, "UpdatedAt")

	list, err := s.ListConsents(ctx, u.ID)
	require.NoError(t, err)
	want := []string{c1.ID, c2.ID}
	if c2.ID < c1.ID {
		want = []string{c2.ID, c1.ID}
	}
	require.Equal(t, want, idsOf(list, func(c gatehouse.Consent) string { return c.ClientID }))
	require.Nil(t, list[slicesIndex(want, c1.ID)].Scopes)

	require.NoError(t, s.DeleteConsent(ctx, u.ID, c1.ID))
	require.ErrorIs(t, s.DeleteConsent(ctx, u.ID, c1.ID), store.ErrNotFound)
	_, err = s.GetConsent(ctx, u.ID, c1.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetConsent(ctx, other.ID, c1.ID)
	require.NoError(t, err, "another user's consent stays")

	require.ErrorIs(t, s.PutConsent(ctx, gatehouse.Consent{UserID: gatehouse.NewID(), ClientID: c1.ID, CreatedAt: base, UpdatedAt: base}), store.ErrNotFound)
	require.ErrorIs(t, s.PutConsent(ctx, gatehouse.Consent{UserID: u.ID, ClientID: gatehouse.NewID(), CreatedAt: base, UpdatedAt: base}), store.ErrNotFound)
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func testClientGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	c, other := createClient(t, s), createClient(t, s)
	u, u2 := createUser(t, s), createUser(t, s)
	s1, s2, s3 := createSession(t, s, u.ID), createSession(t, s, u.ID), createSession(t, s, u2.ID)
	g := gatehouse.ClientGrant{SessionID: s1.ID, ClientID: c.ID, UserID: u.ID, Scopes: []string{"openid", "offline_access"}, CreatedAt: base}
	require.NoError(t, s.CreateClientGrant(ctx, g))
	require.NoError(t, s.CreateClientGrant(ctx, gatehouse.ClientGrant{SessionID: s2.ID, ClientID: c.ID, UserID: u.ID, CreatedAt: base}))
	require.NoError(t, s.CreateClientGrant(ctx, gatehouse.ClientGrant{SessionID: s3.ID, ClientID: c.ID, UserID: u2.ID, CreatedAt: base}))

	got, err := s.GetClientGrant(ctx, s1.ID)
	require.NoError(t, err)
	require.Equal(t, g.ClientID, got.ClientID)
	require.Equal(t, g.UserID, got.UserID)
	require.Equal(t, g.Scopes, got.Scopes)
	requireTime(t, base, got.CreatedAt, "CreatedAt")

	// A refresh reads the session with the client it was granted to.
	sess, granted, err := s.GetSessionClient(ctx, s1.ID)
	require.NoError(t, err)
	requireSession(t, s1, sess)
	require.Equal(t, c.ID, granted)
	own := createSession(t, s, u.ID)
	sess, granted, err = s.GetSessionClient(ctx, own.ID)
	require.NoError(t, err)
	requireSession(t, own, sess)
	require.Empty(t, granted, "a session of the API's own has no client")
	_, _, err = s.GetSessionClient(ctx, gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)

	sid := func(g gatehouse.ClientGrant) string { return g.SessionID }
	mine, err := s.ListClientGrants(ctx, c.ID, u.ID)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{s1.ID, s2.ID}, idsOf(mine, sid))
	all, err := s.ListClientGrants(ctx, c.ID, "")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{s1.ID, s2.ID, s3.ID}, idsOf(all, sid))
	none, err := s.ListClientGrants(ctx, other.ID, "")
	require.NoError(t, err)
	require.Empty(t, none)

	require.ErrorIs(t, s.CreateClientGrant(ctx, g), store.ErrConflict)
	require.ErrorIs(t, s.CreateClientGrant(ctx, gatehouse.ClientGrant{SessionID: gatehouse.NewID(), ClientID: c.ID, UserID: u.ID, CreatedAt: base}), store.ErrNotFound)
	_, err = s.GetClientGrant(ctx, gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)

	// A grant goes with its user (and session).
	require.NoError(t, s.DeleteUser(ctx, u2.ID))
	_, err = s.GetClientGrant(ctx, s3.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}
