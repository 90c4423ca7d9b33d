package authz_test

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// Two instances share one PostgreSQL database and one Redis: a change
// made through instance A reaches instance B's warm cache through the
// invalidation channel within a second, long before B's five-minute TTL.
func TestTwoInstancesSeeRoleChangesWithinASecond(t *testing.T) {
	redisURL := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if os.Getenv(sqltest.PostgresURLEnv) == "" || redisURL == "" {
		t.Skip("needs GATEHOUSE_TEST_POSTGRES_URL and GATEHOUSE_TEST_REDIS_URL")
	}
	t.Parallel()
	ctx := context.Background()
	shared := map[string]string{"GATEHOUSE_DATABASE_URL": sqltest.MigratedPostgresURL(t), "GATEHOUSE_REDIS_URL": redisURL, "GATEHOUSE_REDIS_PREFIX": "test:" + t.Name() + ":"}
	a := newFixture(t, "postgres", shared)
	b := apptest.New(t, "postgres", shared)
	require.NoError(t, b.App.Worker.Stop(ctx))

	roleID, role := a.CreateRole(t, []string{"billing:read"})
	email := a.Email("subject")
	subject, err := a.App.Accounts.CreateUser(ctx, email, apptest.StrongPassword, nil, true)
	require.NoError(t, err)
	a.SetRoles(t, subject.ID, "user", role)
	// The subject signs in on B; the administrator works on A.
	token := b.Login(email, apptest.StrongPassword).Access

	check := func(perm string) bool {
		t.Helper()
		ok, err := tryCheck(b, token, perm, "")
		require.NoError(t, err)
		return ok
	}
	eventually := func(perm string, want bool, what string) {
		t.Helper()
		start := time.Now()
		require.Eventually(t, func() bool {
			ok, err := tryCheck(b, token, perm, "")
			return err == nil && ok == want
		}, time.Second, 20*time.Millisecond, "instance B still answers %v for %s a second after %s", !want, perm, what)
		t.Logf("instance B saw %s after %v", what, time.Since(start))
	}

	// Warm both caches.
	require.True(t, check("billing:read"))
	require.False(t, check("billing:write"))
	require.True(t, a.CheckFor(t, subject.ID, "billing:read"))
	// B really answers from its cache: a change behind the services' back
	// (no invalidation published) is not seen. Then put the row back.
	require.NoError(t, a.App.DB.SetUserRoles(ctx, subject.ID, []string{"user"}))
	require.True(t, check("billing:read"), "instance B's cache is warm")
	require.NoError(t, a.App.DB.SetUserRoles(ctx, subject.ID, []string{"user", role}))

	// A role's permissions change through A.
	r := a.Do("PUT", "/admin/roles/"+roleID, map[string]any{"permissions": []string{"billing:write"}}, a.AdminToken)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
	eventually("billing:read", false, "the role lost billing:read")
	require.True(t, check("billing:write"))
	require.False(t, a.CheckFor(t, subject.ID, "billing:read"), "instance A is fresh at once")

	// The user's roles change through A.
	a.SetRoles(t, subject.ID, "user")
	eventually("billing:write", false, "the role was taken away")

	a.SetRoles(t, subject.ID, "user", "moderator")
	eventually("users:lock", true, "the moderator role was given")

	// Deleting a held role reaches B too.
	a.SetRoles(t, subject.ID, "user", role)
	eventually("billing:write", true, "the role was given back")
	require.Equal(t, http.StatusNoContent, a.Do("DELETE", "/admin/roles/"+roleID, nil, a.AdminToken).Status)
	eventually("billing:write", false, "the role was deleted")
}
