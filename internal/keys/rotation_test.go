package keys_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

func kids(set jose.JSONWebKeySet) []string {
	ids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

func jwksKids(t *testing.T, r *keys.Ring) []string {
	t.Helper()
	set, err := r.JWKS(t.Context())
	require.NoError(t, err)
	return kids(set)
}

func signerKid(t *testing.T, r *keys.Ring) string {
	t.Helper()
	kid, _, err := r.Signer(t.Context())
	require.NoError(t, err)
	return kid
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	require.NoError(t, err)
	return tok.Signatures[0].Header.KeyID
}

// A rotation publishes the new key at once (on the rotating instance) and
// within the reload interval (on the others), but nothing signs with it
// until PublishDelay has passed, by which time every JWKS cached by a
// verifier (max-age JWKSMaxAge) has it too. The old key keeps verifying
// its tokens until they expire.
func TestRotationPublishesBeforeSigning(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			const ttl = 15 * time.Minute
			opts := keys.Options{MaxTokenTTL: ttl, Leeway: time.Minute, Now: clk.Now}
			a := keys.NewRing(db, box(t, 1), opts)
			_, err := a.Ensure(ctx)
			require.NoError(t, err)
			b := keys.NewRing(db, box(t, 1), opts)
			_, err = b.Ensure(ctx)
			require.NoError(t, err)
			require.Equal(t, keys.PublishDelay, a.PublishDelay())
			require.GreaterOrEqual(t, keys.PublishDelay, time.Minute+keys.JWKSMaxAge, "reload interval plus JWKS max-age")
			tokA := token.New(a, token.Options{Issuer: "https://x", TTL: ttl, Now: clk.Now})
			tokB := token.New(b, token.Options{Issuer: "https://x", TTL: ttl, Now: clk.Now})

			old := signerKid(t, a)
			require.Equal(t, old, signerKid(t, b))

			clk.Advance(10 * time.Second)
			rotated, err := a.Rotate(ctx)
			require.NoError(t, err)
			fresh := rotated.ID
			rotatedAt := clk.Now()

			// Published at once here, still signing with the old key.
			require.ElementsMatch(t, []string{fresh, old}, jwksKids(t, a))
			require.Equal(t, old, signerKid(t, a))
			raw, _, err := tokA.Issue(ctx, "u", "s", nil, time.Time{})
			require.NoError(t, err)
			require.Equal(t, old, kidOf(t, raw))

			// The other instance: its JWKS lists the new key once its reload
			// interval has passed, and every key either instance signs with
			// is in both JWKS all along.
			clk.Advance(50 * time.Second)
			require.Contains(t, jwksKids(t, b), signerKid(t, a), "B's JWKS has the key A signs with")
			clk.Advance(11 * time.Second)
			require.ElementsMatch(t, []string{fresh, old}, jwksKids(t, b))
			require.Equal(t, old, signerKid(t, b))

			// Both sign with the old key until the new one is PublishDelay old...
			clk.Set(rotatedAt.Add(keys.PublishDelay - time.Second))
			var lastOld string
			for _, tok := range []*token.Service{tokA, tokB} {
				raw, _, err := tok.Issue(ctx, "u", "s", nil, time.Time{})
				require.NoError(t, err)
				require.Equal(t, old, kidOf(t, raw))
				lastOld = raw
			}
			// ... and then both with the new one.
			clk.Advance(time.Second)
			for _, tok := range []*token.Service{tokA, tokB} {
				raw, _, err := tok.Issue(ctx, "u", "s", nil, time.Time{})
				require.NoError(t, err)
				require.Equal(t, fresh, kidOf(t, raw))
				_, err = tokA.Verify(ctx, raw)
				require.NoError(t, err)
				_, err = tokB.Verify(ctx, raw)
				require.NoError(t, err)
			}

			// The old key stopped signing when the new one took over, and
			// stays published for MaxTokenTTL plus Leeway after that.
			rows, err := a.List(ctx)
			require.NoError(t, err)
			for _, k := range rows {
				if k.ID == old {
					require.NotNil(t, k.RetiredAt)
					require.NotNil(t, k.ExpiresAt)
					require.True(t, k.RetiredAt.Equal(rotated.CreatedAt.Add(keys.PublishDelay)), "retired when the new key takes over")
					require.True(t, k.ExpiresAt.Equal(k.RetiredAt.Add(ttl+time.Minute)))
				}
			}

			// The last token the old key signed verifies on both instances
			// until it expires.
			clk.Advance(ttl - time.Second)
			for _, tok := range []*token.Service{tokA, tokB} {
				_, err := tok.Verify(ctx, lastOld)
				require.NoError(t, err)
			}
			require.Contains(t, jwksKids(t, a), old)
			require.Contains(t, jwksKids(t, b), old)

			// After MaxTokenTTL plus Leeway the old key leaves the JWKS.
			clk.Advance(time.Minute + 2*time.Second)
			require.Equal(t, []string{fresh}, jwksKids(t, a))
			require.Equal(t, []string{fresh}, jwksKids(t, b))
			_, err = a.PublicKey(ctx, old)
			require.ErrorIs(t, err, keys.ErrUnknownKey)
		})
	}
}

// Rotating again before the previous new key signs: each key signs in
// turn, each for at least the time from one rotation to the next, and
// none before it is PublishDelay old.
func TestRotateTwiceWithinPublishDelay(t *testing.T) {
	e := sqltest.Engines(t)[0]
	ctx := context.Background()
	db := e.Open(t)
	clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ring := keys.NewRing(db, box(t, 1), keys.Options{MaxTokenTTL: 15 * time.Minute, Now: clk.Now})
	_, err := ring.Ensure(ctx)
	require.NoError(t, err)
	k1 := signerKid(t, ring)
	t0 := clk.Now()
	second, err := ring.Rotate(ctx)
	require.NoError(t, err)
	clk.Advance(2 * time.Minute)
	third, err := ring.Rotate(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{k1, second.ID, third.ID}, jwksKids(t, ring))

	for _, step := range []struct {
		at   time.Duration
		want string
	}{
		{2 * time.Minute, k1},
		{keys.PublishDelay - time.Second, k1},
		{keys.PublishDelay, second.ID},
		{2*time.Minute + keys.PublishDelay - time.Second, second.ID},
		{2*time.Minute + keys.PublishDelay, third.ID},
		{time.Hour, third.ID},
	} {
		clk.Set(t0.Add(step.at))
		require.Equal(t, step.want, signerKid(t, ring), "at +%v", step.at)
	}
	// A fresh instance (no cached state) agrees.
	fresh := keys.NewRing(db, box(t, 1), keys.Options{MaxTokenTTL: 15 * time.Minute, Now: clk.Now})
	_, err = fresh.Ensure(ctx)
	require.NoError(t, err)
	require.Equal(t, third.ID, signerKid(t, fresh))
}

// Two instances making the first key at once (an empty database): the one
// that rotated second does not switch to its own key while the other still
// signs with the first.
func TestConcurrentFirstStartAgree(t *testing.T) {
	e := sqltest.Engines(t)[0]
	ctx := context.Background()
	db := e.Open(t)
	clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := keys.Options{MaxTokenTTL: 15 * time.Minute, Now: clk.Now}
	a := keys.NewRing(db, box(t, 1), opts)
	first, err := a.Rotate(ctx) // what Ensure does on an empty database
	require.NoError(t, err)
	b := keys.NewRing(db, box(t, 1), opts)
	_, err = b.Rotate(ctx) // raced: B also saw no key
	require.NoError(t, err)
	require.Equal(t, first.ID, signerKid(t, a))
	require.Equal(t, first.ID, signerKid(t, b), "the key published longest signs")
}

// Statuses says which key signs, which is next and which only verify.
func TestStatuses(t *testing.T) {
	e := sqltest.Engines(t)[0]
	ctx := context.Background()
	db := e.Open(t)
	clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ring := keys.NewRing(db, box(t, 1), keys.Options{MaxTokenTTL: 15 * time.Minute, Leeway: time.Minute, Now: clk.Now})
	_, err := ring.Ensure(ctx)
	require.NoError(t, err)
	k1 := signerKid(t, ring)

	st, err := ring.Statuses(ctx)
	require.NoError(t, err)
	require.Len(t, st, 1)
	require.Equal(t, keys.StateSigning, st[0].State)
	require.True(t, st[0].SignsUntil.IsZero())

	clk.Advance(time.Minute)
	k2, err := ring.Rotate(ctx)
	require.NoError(t, err)
	switchAt := k2.CreatedAt.Add(keys.PublishDelay)
	st, err = ring.Statuses(ctx)
	require.NoError(t, err)
	require.Len(t, st, 2)
	require.Equal(t, k2.ID, st[0].ID)
	require.Equal(t, keys.StateNext, st[0].State)
	require.True(t, st[0].SignsFrom.Equal(switchAt))
	require.Equal(t, k1, st[1].ID)
	require.Equal(t, keys.StateSigning, st[1].State)
	require.True(t, st[1].SignsUntil.Equal(switchAt))

	clk.Set(switchAt)
	st, err = ring.Statuses(ctx)
	require.NoError(t, err)
	require.Equal(t, keys.StateSigning, st[0].State)
	require.Equal(t, keys.StateRetired, st[1].State)
	require.True(t, st[1].ExpiresAt.Equal(switchAt.Add(16*time.Minute)))
	require.Equal(t, k2.ID, signerKid(t, ring))
}
