package gatehouse_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
)

func TestErrorCarriesCodeAndCause(t *testing.T) {
	cause := errors.New("disk on fire")
	err := fmt.Errorf("create user: %w", gatehouse.WrapError(gatehouse.CodeInternal, cause, "could not save"))
	require.Equal(t, gatehouse.CodeInternal, gatehouse.ErrorCode(err))
	require.ErrorIs(t, err, cause)
	require.Contains(t, err.Error(), "disk on fire")

	e := gatehouse.Errorf(gatehouse.CodeEmailTaken, "email %s is taken", "a@b.co")
	require.Equal(t, "email_taken: email a@b.co is taken", e.Error())
	require.Equal(t, gatehouse.CodeInternal, gatehouse.ErrorCode(errors.New("plain")))

	f := gatehouse.InvalidField("body.email", "bad")
	require.Equal(t, gatehouse.CodeValidationFailed, f.Code)
	require.Equal(t, []gatehouse.FieldError{{Location: "body.email", Message: "bad"}}, f.Fields)
}

func TestEventCatalogue(t *testing.T) {
	seen := map[gatehouse.EventType]bool{}
	for _, et := range gatehouse.EventTypes {
		require.True(t, et.Valid())
		require.False(t, seen[et], "duplicate %s", et)
		seen[et] = true
		require.Regexp(t, `^[a-z]+\.[a-z_]+$`, string(et))
	}
	// The contract's minimum set.
	for _, name := range []string{"user.registered", "user.email_verified", "user.login", "user.login_failed",
		"user.locked", "user.password_changed", "user.password_reset", "user.mfa_enabled",
		"user.mfa_disabled", "user.deleted", "session.revoked", "device.new", "security.alert"} {
		require.True(t, gatehouse.EventType(name).Valid(), name)
	}
	require.False(t, gatehouse.EventType("user.exploded").Valid())
}

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDIsUUIDv7AndOrdered(t *testing.T) {
	prev := ""
	seen := map[string]bool{}
	for range 1000 {
		id := gatehouse.NewID()
		require.Regexp(t, uuidV7, id)
		require.False(t, seen[id])
		seen[id] = true
		// Even ids made within one clock tick sort in the order made.
		require.Greater(t, id, prev)
		prev = id
	}
	// The first 48 bits are the Unix time in milliseconds.
	before := time.Now().UnixMilli()
	id := gatehouse.NewID()
	ms, err := strconv.ParseInt(strings.ReplaceAll(id[:13], "-", ""), 16, 64)
	require.NoError(t, err)
	require.InDelta(t, before, ms, 1000)
}

func TestNewIDConcurrentlyUniqueAndOrderedPerGoroutine(t *testing.T) {
	var wg sync.WaitGroup
	ids := make([][]string, 8)
	for g := range ids {
		wg.Go(func() {
			for range 2000 {
				ids[g] = append(ids[g], gatehouse.NewID())
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, list := range ids {
		require.True(t, slices.IsSorted(list))
		for _, id := range list {
			require.False(t, seen[id], id)
			seen[id] = true
		}
	}
}

func TestParseEmail(t *testing.T) {
	good := map[string]string{
		"Alice@Example.COM":       "alice@example.com",
		"  bob.smith@example.org": "bob.smith@example.org",
		"x+tag@sub.example.co.uk": "x+tag@sub.example.co.uk",
	}
	for in, want := range good {
		e, err := gatehouse.ParseEmail(in)
		require.NoError(t, err, in)
		require.Equal(t, want, e.String())
	}
	e, _ := gatehouse.ParseEmail("a.b@example.com")
	require.Equal(t, "example.com", e.Domain())
	require.Equal(t, "a.b", e.Local())

	bad := []string{"", "plain", "@example.com", "a@", "a@b", "a@.com", "a@example..com", "a@example.com.",
		"Alice <alice@example.com>", "a b@example.com", "a@exa mple.com", "a@exam\nple.com",
		strings.Repeat("a", 65) + "@example.com", "a@" + strings.Repeat("b", 250) + ".com", "\xff@example.com"}
	for _, in := range bad {
		_, err := gatehouse.ParseEmail(in)
		require.Error(t, err, "%q", in)
		want := gatehouse.CodeInvalidEmail
		if in == "" {
			want = gatehouse.CodeValidationFailed // a missing value, as a missing key is
		}
		require.Equal(t, want, gatehouse.ErrorCode(err), "%q", in)
	}
}

// Case variants of one address normalise to the same Email.
func TestParseEmailCaseInsensitive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Dots only between other characters: never leading, trailing or doubled.
		local := rapid.StringMatching(`[a-z]([a-z0-9_]|\.[a-z0-9]){0,20}`).Draw(t, "local")
		addr := local + "@example.com"
		upper := rapid.SliceOfN(rapid.Bool(), len(addr), len(addr)).Draw(t, "upper")
		var b strings.Builder
		for i, r := range addr {
			if upper[i] {
				b.WriteString(strings.ToUpper(string(r)))
			} else {
				b.WriteRune(r)
			}
		}
		a, err := gatehouse.ParseEmail(addr)
		require.NoError(t, err)
		v, err := gatehouse.ParseEmail(b.String())
		require.NoError(t, err)
		require.Equal(t, a, v)
	})
}

func TestUserLockout(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	u := &gatehouse.User{}
	for i := 1; i < 5; i++ {
		require.False(t, u.RecordFailedLogin(now, 5, 15*time.Minute))
		require.Equal(t, i, u.FailedLogins)
	}
	require.True(t, u.RecordFailedLogin(now, 5, 15*time.Minute), "fifth failure locks")
	require.True(t, u.Locked(now))
	require.True(t, u.Locked(now.Add(14*time.Minute)))
	require.False(t, u.Locked(now.Add(15*time.Minute)), "the lock expires by itself")
	require.False(t, u.RecordFailedLogin(now.Add(time.Minute), 5, 15*time.Minute), "no new lock while locked")

	later := now.Add(20 * time.Minute)
	u.RecordFailedLogin(later, 5, 15*time.Minute)
	require.Nil(t, u.LockedUntil, "an expired lock is cleared")
	u.RecordLogin(later)
	require.Zero(t, u.FailedLogins, "success resets the count")
	require.Equal(t, later, *u.LastLoginAt)

	u.LockByAdmin("fraud", later)
	require.True(t, u.Locked(later.Add(1000*time.Hour)))
	require.Equal(t, "fraud", u.LockReason)
	u.Unlock(later)
	require.False(t, u.Locked(later))
	require.Empty(t, u.LockReason)

	u.LockUntil(later.Add(time.Hour), "suspicious", later)
	require.True(t, u.Locked(later))
	u.RecordLogin(later.Add(2 * time.Hour))
	require.Nil(t, u.LockedUntil)

	u.VerifyEmail(later)
	require.True(t, u.EmailVerified)
	require.False(t, u.HasPassword())
	u.PasswordHash = "$argon2id$..."
	require.True(t, u.HasPassword())
}

func TestSessionActive(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := gatehouse.Session{LastActiveAt: now, ExpiresAt: now.Add(time.Hour)}
	require.True(t, s.Active(now, 0))
	require.True(t, s.Active(now.Add(59*time.Minute), 0))
	require.False(t, s.Active(now.Add(time.Hour), 0), "absolute expiry")
	require.False(t, s.Active(now.Add(11*time.Minute), 10*time.Minute), "idle timeout")
	revoked := now
	s.RevokedAt = &revoked
	require.False(t, s.Active(now, 0))
}

func TestSigningKeyPublication(t *testing.T) {
	now := time.Now()
	k := gatehouse.SigningKey{}
	require.True(t, k.Active())
	require.True(t, k.Published(now))
	exp := now.Add(time.Minute)
	k.RetiredAt, k.ExpiresAt = &now, &exp
	require.False(t, k.Active())
	require.True(t, k.Published(now))
	require.False(t, k.Published(exp))
}

func TestVersionIsNeverEmpty(t *testing.T) {
	require.NotEmpty(t, gatehouse.Version())
}
