package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// referencePHC comes from the reference C implementation
// (echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e), so
// verifying it proves interoperability, not just self-consistency.
const referencePHC = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"

func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(TestParams)
	phc, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)

	ok, rehash, err := h.Verify(ctx, "correct horse battery staple", phc)
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, rehash)

	for _, wrong := range []string{"", "correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple "} {
		ok, rehash, err = h.Verify(ctx, wrong, phc)
		require.NoError(t, err)
		require.False(t, ok, wrong)
		require.False(t, rehash)
	}
}

func TestHashFormat(t *testing.T) {
	ctx := context.Background()
	for _, p := range []Params{TestParams, DefaultParams} {
		h := NewHasher(p)
		require.Equal(t, p, h.Params())
		phc, err := h.Hash(ctx, "pw")
		require.NoError(t, err)
		re := regexp.MustCompile(`^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
		require.Regexp(t, re, phc)

		d, err := parsePHC(phc)
		require.NoError(t, err)
		require.Equal(t, p, d.params, "params read back from the PHC string")
		require.Len(t, d.salt, int(p.SaltLen))
		require.Len(t, d.key, int(p.KeyLen))
	}
	require.True(t, strings.HasPrefix(encodePHC(DefaultParams, make([]byte, 16), make([]byte, 32)),
		"$argon2id$v=19$m=19456,t=2,p=1$"))
}

func TestVerifyReferenceVector(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(TestParams)
	ok, rehash, err := h.Verify(ctx, "password", referencePHC)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, rehash, "reference params differ from TestParams")

	ok, rehash, err = h.Verify(ctx, "Password", referencePHC)
	require.NoError(t, err)
	require.False(t, ok)
	require.False(t, rehash, "no rehash advice for a failed login")
}

func TestHashesOfOnePasswordDiffer(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(TestParams)
	seen := map[string]bool{}
	for range 20 {
		phc, err := h.Hash(ctx, "same password")
		require.NoError(t, err)
		require.False(t, seen[phc], "salt must make every hash unique")
		seen[phc] = true
	}
}

func TestNeedsRehash(t *testing.T) {
	ctx := context.Background()
	old := NewHasher(TestParams)
	phc, err := old.Hash(ctx, "pw")
	require.NoError(t, err)

	changes := map[string]func(*Params){
		"memory":      func(p *Params) { p.Memory = 128 },
		"iterations":  func(p *Params) { p.Iterations = 2 },
		"parallelism": func(p *Params) { p.Parallelism = 2 },
		"salt length": func(p *Params) { p.SaltLen = 32 },
		"key length":  func(p *Params) { p.KeyLen = 64 },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			p := TestParams
			change(&p)
			h := NewHasher(p)
			ok, rehash, err := h.Verify(ctx, "pw", phc)
			require.NoError(t, err)
			require.True(t, ok, "old hashes keep working after a parameter change")
			require.True(t, rehash)

			fresh, err := h.Hash(ctx, "pw")
			require.NoError(t, err)
			ok, rehash, err = h.Verify(ctx, "pw", fresh)
			require.NoError(t, err)
			require.True(t, ok)
			require.False(t, rehash)
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	malformed := []string{
		"",
		"$",
		"password",
		"$argon2id",
		"argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"x$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
		"$argon2id$19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=x$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1,k=2$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=0x40,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "=",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHR$" + key, // non-canonical trailing bits
		"$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + "***",
		"$argon2id$v=19$m=64,t=1,p=1$ " + salt + "$" + key,
	}
	unsupported := []string{
		"$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2d$v=19$m=65536,t=2,p=4$" + salt + "$" + key,
		"$bcrypt$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=9$" + salt + "$" + key,      // < 8 KiB per lane
		"$argon2id$v=19$m=2097152,t=1,p=1$" + salt + "$" + key, // 2 GiB
		"$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key,        // 4-byte salt
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$c2hvcnQ", // 5-byte key
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,              // empty salt
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",        // empty key
		"$" + strings.Repeat("x", 1000) + "$v=19$m=64,t=1,p=1$" + salt + "$" + key,
	}
	h := NewHasher(TestParams)
	ctx := context.Background()
	check := func(phc string, want error) {
		t.Helper()
		ok, rehash, err := h.Verify(ctx, "password", phc)
		require.ErrorIs(t, err, want, "%q", phc)
		require.False(t, ok)
		require.False(t, rehash)
		require.Less(t, len(err.Error()), 200, "error messages stay short")
	}
	for _, s := range malformed {
		check(s, ErrMalformedHash)
	}
	for _, s := range unsupported {
		check(s, ErrUnsupportedHash)
	}
}

// FuzzParsePHC runs its seeds with every `go test`; `go test -fuzz` explores further.
func FuzzParsePHC(f *testing.F) {
	f.Add(referencePHC)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Add("$$$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parsePHC(s)
		if err != nil {
			require.True(t, errors.Is(err, ErrMalformedHash) || errors.Is(err, ErrUnsupportedHash), err)
			return
		}
		require.NoError(t, d.params.Validate())
		require.Equal(t, s, encodePHC(d.params, d.salt, d.key), "only canonical strings parse")
	})
}

func TestVerifyArbitraryStringsNeverPanic(t *testing.T) {
	h := NewHasher(TestParams)
	valid, err := h.Hash(context.Background(), "pw")
	require.NoError(t, err)
	rapid.Check(t, func(t *rapid.T) {
		var phc string
		if rapid.Bool().Draw(t, "mutate") {
			// Splice random text into a valid hash, so the input gets past
			// the first checks and exercises the deeper ones.
			i := rapid.IntRange(0, len(valid)).Draw(t, "i")
			j := rapid.IntRange(i, len(valid)).Draw(t, "j")
			phc = valid[:i] + rapid.String().Draw(t, "insert") + valid[j:]
			if _, err := parsePHC(phc); err == nil {
				return // still valid (e.g. identical splice); Verify is tested elsewhere
			}
		} else {
			phc = rapid.String().Draw(t, "phc")
		}
		ok, rehash, err := h.Verify(context.Background(), "pw", phc)
		require.Error(t, err)
		require.False(t, ok)
		require.False(t, rehash)
	})
}

func TestUnicodeAndLongPasswords(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(TestParams)
	long := strings.Repeat("🔐", 128) // 128 code points, 512 bytes
	for _, pw := range []string{"pässwörd-密码-пароль-🔐", long, strings.Repeat("a", 128), "\x00nul\x00inside"} {
		phc, err := h.Hash(ctx, pw)
		require.NoError(t, err)
		ok, _, err := h.Verify(ctx, pw, phc)
		require.NoError(t, err)
		require.True(t, ok, pw)
	}

	// No truncation: every byte counts, including the last of 512.
	phc, err := h.Hash(ctx, long)
	require.NoError(t, err)
	for _, other := range []string{strings.Repeat("🔐", 127), strings.Repeat("🔐", 127) + "🔑", long[:len(long)-1]} {
		ok, _, err := h.Verify(ctx, other, phc)
		require.NoError(t, err)
		require.False(t, ok)
	}

	// No normalisation: precomposed and decomposed "é" are different passwords.
	nfc, nfd := "caf\u00e9-password", "cafe\u0301-password"
	phc, err = h.Hash(ctx, nfc)
	require.NoError(t, err)
	ok, _, err := h.Verify(ctx, nfd, phc)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestConcurrencyLimit(t *testing.T) {
	h := NewHasher(TestParams, WithMaxConcurrent(2))
	phc, err := h.Hash(context.Background(), "pw")
	require.NoError(t, err)

	var maxSeen atomic.Int32
	h.testHookAcquired = func() {
		n := h.inFlight.Load()
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond) // hold the slot so others pile up
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			ok, _, err := h.Verify(context.Background(), "pw", phc)
			require.NoError(t, err)
			require.True(t, ok)
		})
	}
	wg.Wait()
	require.LessOrEqual(t, maxSeen.Load(), int32(2))
	require.Equal(t, int32(2), maxSeen.Load(), "the limit should be reached, not just respected")
	require.Equal(t, int32(0), h.inFlight.Load())
}

func TestDefaultConcurrencyIsGOMAXPROCS(t *testing.T) {
	require.Equal(t, runtime.GOMAXPROCS(0), cap(NewHasher(TestParams).sem))
	require.Equal(t, runtime.GOMAXPROCS(0), cap(NewHasher(TestParams, WithMaxConcurrent(0)).sem))
	require.Equal(t, 3, cap(NewHasher(TestParams, WithMaxConcurrent(3)).sem))
}

func TestContextCancelledWhileWaiting(t *testing.T) {
	h := NewHasher(TestParams, WithMaxConcurrent(1))
	phc, err := h.Hash(context.Background(), "pw")
	require.NoError(t, err)

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.testHookAcquired = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	holderDone := make(chan error)
	go func() {
		_, err := h.Hash(context.Background(), "holder")
		holderDone <- err
	}()
	<-entered // the only slot is now taken

	ctx, cancel := context.WithCancel(context.Background())
	waiterDone := make(chan error)
	go func() {
		_, _, err := h.Verify(ctx, "pw", phc)
		waiterDone <- err
	}()
	select {
	case err := <-waiterDone:
		t.Fatalf("Verify returned %v while the slot was taken", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	require.ErrorIs(t, <-waiterDone, context.Canceled)

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer dcancel()
	_, err = h.Hash(dctx, "pw")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, h.VerifyDummy(dctx, "pw"), context.DeadlineExceeded)

	close(release)
	require.NoError(t, <-holderDone)
	ok, _, err := h.Verify(context.Background(), "pw", phc)
	require.NoError(t, err)
	require.True(t, ok, "the slot is usable again")
}

func TestAlreadyCancelledContextDoesNoWork(t *testing.T) {
	h := NewHasher(TestParams)
	var calls atomic.Int32
	h.testHookAcquired = func() { calls.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Hash(ctx, "pw")
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = h.Verify(ctx, "pw", referencePHC)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, h.VerifyDummy(ctx, "pw"), context.Canceled)
	require.Zero(t, calls.Load())
}

func TestVerifyDummy(t *testing.T) {
	p := Params{Memory: 128, Iterations: 2, Parallelism: 2, SaltLen: MaxSaltLen, KeyLen: 48}
	h := NewHasher(p)
	d, err := parsePHC(h.dummy)
	require.NoError(t, err)
	require.Equal(t, p, d.params, "the dummy costs what a current hash costs")

	var calls atomic.Int32
	h.testHookAcquired = func() { calls.Add(1) }
	require.NoError(t, h.VerifyDummy(context.Background(), "anything"))
	require.NoError(t, h.VerifyDummy(context.Background(), dummyPassword))
	require.Equal(t, int32(2), calls.Load(), "the dummy goes through the same limiter")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestHashSaltFailure(t *testing.T) {
	h := NewHasher(TestParams, WithRand(failingReader{}))
	_, err := h.Hash(context.Background(), "pw")
	require.ErrorContains(t, err, "no entropy")
}

func TestParamsValidate(t *testing.T) {
	require.NoError(t, DefaultParams.Validate())
	require.NoError(t, TestParams.Validate())
	bad := []Params{
		{},
		{Memory: 64, Iterations: 1, Parallelism: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Iterations: 0, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Iterations: MaxIterations + 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 7, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 16, Iterations: 1, Parallelism: 4, SaltLen: 16, KeyLen: 32},
		{Memory: MaxMemory + 1, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 7, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: MaxSaltLen + 1, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 15},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: MaxKeyLen + 1},
	}
	for _, p := range bad {
		require.ErrorIs(t, p.Validate(), ErrInvalidParams, "%+v", p)
		require.Panics(t, func() { NewHasher(p) })
	}
}
