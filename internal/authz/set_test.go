package authz_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/authz"
)

var (
	genPart = rapid.StringMatching(`[a-z][a-z0-9_]{0,8}`)
	genPerm = rapid.Custom(func(t *rapid.T) string {
		return genPart.Draw(t, "resource") + ":" + genPart.Draw(t, "action")
	})
)

// Property 61: a permission is granted exactly when the set holds that
// resource:action, the resource's wildcard, or "*".
func TestProperty61_ResourceAndActionEvaluation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		held := rapid.SliceOfN(genPerm, 0, 8).Draw(t, "held")
		wildRes := rapid.SliceOfN(genPart, 0, 3).Draw(t, "wildcard resources")
		perms := append([]string{}, held...)
		for _, r := range wildRes {
			perms = append(perms, r+":*")
		}
		set := authz.Compile(perms)
		probe := rapid.OneOf(genPerm, rapid.SampledFrom(append(held, "x:y"))).Draw(t, "probe")
		res, _, _ := strings.Cut(probe, ":")
		want := false
		for _, h := range held {
			want = want || h == probe
		}
		for _, r := range wildRes {
			want = want || r == res
		}
		require.Equal(t, want, set.Allows(probe), "perms %v probe %s", perms, probe)
	})
}

// Property 62: "*" grants every permission.
func TestProperty62_WildcardGrantsAll(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		others := rapid.SliceOfN(genPerm, 0, 5).Draw(t, "others")
		set := authz.Compile(append(others, "*"))
		require.True(t, set.Allows(genPerm.Draw(t, "probe")))
		require.True(t, set.Covers(rapid.SliceOfN(genPerm, 0, 5).Draw(t, "any")))
		require.True(t, set.Covers([]string{"*"}))
	})
}

func TestCovers(t *testing.T) {
	mod := authz.Compile([]string{"users:read", "users:lock", "audit:read"})
	require.True(t, mod.Covers(nil))
	require.True(t, mod.Covers([]string{"users:read"}))
	require.False(t, mod.Covers([]string{"*"}), "a moderator cannot grant admin")
	require.False(t, mod.Covers([]string{"users:*"}))
	require.False(t, mod.Covers([]string{"roles:assign"}))
	res := authz.Compile([]string{"users:*"})
	require.True(t, res.Covers([]string{"users:*", "users:delete"}))
	require.False(t, res.Covers([]string{"roles:*"}))
	require.False(t, authz.Compile([]string{"users:read"}).Allows("users"), "a bare resource is not a permission")
	require.False(t, authz.Compile([]string{"bogus", ""}).Allows("bogus"), "invalid strings grant nothing")
}

func TestValidPermissionAndRoleName(t *testing.T) {
	for _, p := range []string{"*", "users:read", "users:*", "billing.invoices:export", "a-b:c_d"} {
		require.True(t, gatehouse.ValidPermission(p), p)
	}
	for _, p := range []string{"", "users", ":read", "users:", "Users:Read", "*:read", "users:read:x", "users :read", strings.Repeat("a", 65) + ":b"} {
		require.False(t, gatehouse.ValidPermission(p), p)
	}
	require.True(t, gatehouse.ValidRoleName("support-tier.2"))
	require.False(t, gatehouse.ValidRoleName("Admin"))
	require.False(t, gatehouse.ValidRoleName(""))
}
