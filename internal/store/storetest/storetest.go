// Package storetest is the conformance suite for store.Store: every dialect
// must pass Run, so a behaviour that differs between engines shows up as a
// failing subtest on one of them.
//
// Cases live one file per table or group (keys.go, users.go, mfa.go, ...)
// and each declares the store methods whose contract it asserts (covers).
// TestEveryMethodHasACase fails naming every method of store.Store and
// store.Tx that no case covers, so a method added to the contract cannot
// ship without one. Every single-winner method (a secret spent once, a row
// claimed once) also has a Race case: many goroutines, half of them inside
// transactions, call it at once and exactly one may win.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// testCase is one conformance case.
type testCase struct {
	name string
	// covers names the Store and Tx methods whose contract the case asserts,
	// by name (a Queries method counts for both interfaces).
	covers []string
	// fresh runs the case on an empty store of its own: for cases that read
	// or change rows beyond the ones they make (list every row, count all,
	// delete by age, create a role by a fixed name). The other cases share
	// one store per Run, in parallel, so they reach only rows by ids (and
	// users) they made themselves.
	fresh bool
	fn    func(t *testing.T, s store.Store)
}

// allCases is every case of the suite, in the order Run starts them.
func allCases() []testCase {
	return slices.Concat(txCases, keyCases, eventCases, userCases, sessionCases, refreshTokenCases,
		oneTimeTokenCases, roleCases, auditCases, mfaCases, webhookCases, webauthnCases, oauthCases, deviceCases, clientCases)
}

// exempt names the interface methods no case covers, each with the reason.
// A method belongs here only when its contract cannot be observed through
// the interfaces; TestEveryMethodHasACase refuses an entry without a reason,
// one naming no method, and one for a method a case covers after all.
var exempt = map[string]string{}

// Run runs the suite. open must return a fresh, migrated, empty store for
// each call, released when t ends; it is called once for the store the
// sharing cases use and once per fresh case, from parallel subtests, so it
// must be safe to call concurrently (sqltest's openers are).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	shared := open(t) // closed when t ends, after every parallel subtest
	for _, tc := range allCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := shared
			if tc.fresh {
				s = open(t)
			}
			tc.fn(t, s)
		})
	}
}

// base is a fixed instant with nanoseconds and a non-UTC zone, so every
// round trip also checks normalisation to UTC microseconds.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*60*60))

// norm is what the store must hand back for t.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func ptr[T any](v T) *T { return &v }

// requireTime checks got is want at microsecond precision and in UTC.
func requireTime(t *testing.T, want, got time.Time, field string) {
	t.Helper()
	require.Truef(t, norm(want).Equal(got), "%s: want %s, got %s", field, norm(want), got)
	require.Equalf(t, time.UTC, got.Location(), "%s: location", field)
}

func requireTimePtr(t *testing.T, want, got *time.Time, field string) {
	t.Helper()
	if want == nil {
		require.Nilf(t, got, "%s", field)
		return
	}
	require.NotNilf(t, got, "%s", field)
	requireTime(t, *want, *got, field)
}

// idsOf maps items to their ids, in order; empty, not nil, for none.
func idsOf[T any](items []T, id func(T) string) []string {
	ids := make([]string, len(items))
	for i, x := range items {
		ids[i] = id(x)
	}
	return ids
}

// --- races ---

// racers is how many goroutines race for one single-use thing: enough that
// on PostgreSQL several statements wait on one row lock at once.
const racers = 16

// raceAll runs fn from racers goroutines released together and returns
// every call's result, by index. Even calls run on the Store, odd ones each
// in a transaction of their own (services spend secrets inside InTx, where
// PostgreSQL's row locks make the loser wait for the winner's commit). A
// call that fails with loss, the documented "another caller got there
// first" (nil when losing is a result, not an error), counts as the zero
// result: fn returns that error, as a service would, since after a failed
// statement a PostgreSQL transaction can only roll back. Any other error
// fails the test.
func raceAll[T any](t *testing.T, s store.Store, loss error, fn func(ctx context.Context, q store.Queries, i int) (T, error)) []T {
	t.Helper()
	warmPool(t, s)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		got   = make([]T, racers)
		errs  = make([]error, racers)
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			ctx := t.Context()
			if i%2 == 0 {
				got[i], errs[i] = fn(ctx, s, i)
				return
			}
			errs[i] = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				var err error
				got[i], err = fn(ctx, tx, i) // set afresh if InTx runs fn again
				return err
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if loss != nil && errors.Is(err, loss) {
			var zero T
			got[i] = zero
			continue
		}
		require.NoError(t, err, "racer %d", i)
	}
	return got
}

// warmPool opens half as many connections as there are racers at once
// and hands them back to the pool idle, so that racers do not queue behind
// connection set-up, which would let them through one by one. It is best
// effort and bounded: what it cannot get quickly (SQLite has one
// connection; other cases hold some) it goes without.
func warmPool(t *testing.T, s store.Store) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	n := racers / 2
	if limit := s.DB().Stats().MaxOpenConnections; limit > 0 {
		n = min(n, limit)
	}
	conns := make([]*sql.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { conns[i], _ = s.DB().Conn(ctx) })
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// race is raceAll for calls that win or lose: it returns the indexes of
// the winners, ascending.
func race(t *testing.T, s store.Store, loss error, fn func(ctx context.Context, q store.Queries, i int) (bool, error)) []int {
	t.Helper()
	var wins []int
	for i, won := range raceAll(t, s, loss, fn) {
		if won {
			wins = append(wins, i)
		}
	}
	return wins
}

// requireOneWinner runs race and checks exactly one call won; it returns
// the winner's index.
func requireOneWinner(t *testing.T, s store.Store, what string, loss error, fn func(ctx context.Context, q store.Queries, i int) (bool, error)) int {
	t.Helper()
	wins := race(t, s, loss, fn)
	require.Len(t, wins, 1, "exactly one of %d concurrent callers may %s", racers, what)
	return wins[0]
}

// requireSweptOnce races a cleanup that reports how many rows it deleted:
// sweepers on several instances at once delete each row once, so their
// counts add up to want.
func requireSweptOnce(t *testing.T, s store.Store, want int64, sweep func(ctx context.Context, q store.Queries) (int64, error)) {
	t.Helper()
	var total int64
	for _, n := range raceAll(t, s, nil, func(ctx context.Context, q store.Queries, _ int) (int64, error) { return sweep(ctx, q) }) {
		total += n
	}
	require.Equal(t, want, total, "each row deleted by one sweeper")
}

// won reads a call that reports losing as an error: it won when err is nil.
func won(err error) (bool, error) { return err == nil, err }

// racerTime is base plus i seconds: racer i's "now", so a stored time
// tells which racer won.
func racerTime(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
