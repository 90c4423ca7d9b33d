package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// TestUsersUnlockCommand: `users unlock` lifts an administrator's lock
// and a lockout from any account, administrators included (the API lets
// nobody unlock a user who holds more than they do), by email or id.
func TestUsersUnlockCommand(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			env := engineEnv(t, e.Name)
			ids := map[string]string{}
			for _, email := range []string{"root@example.com", "other@example.com"} {
				out, err := run(t, env, "users", "create", "--email", email, "--role", "admin", "--verified")
				require.NoError(t, err)
				ids[email] = strings.Split(out, "\n")[0]
			}
			root := ids["root@example.com"]

			cfg, err := config.FromMap(env)
			require.NoError(t, err)
			// The app the CLI builds, for what the CLI cannot do or show.
			withApp := func(fn func(a *app.App)) {
				t.Helper()
				log, _ := loadTestLogger()
				a, err := app.Build(t.Context(), cfg, log, app.Options{})
				require.NoError(t, err)
				defer a.Close(t.Context())
				fn(a)
			}
			locked := func() (locked bool) {
				withApp(func(a *app.App) {
					u, err := a.Accounts.GetUser(t.Context(), root)
					require.NoError(t, err)
					locked = u.Locked(time.Now())
				})
				return locked
			}
			// Another administrator locks root, as through the API.
			lock := func() {
				withApp(func(a *app.App) {
					_, err := a.Accounts.Lock(t.Context(), ids["other@example.com"], root, "test")
					require.NoError(t, err)
				})
			}

			lock()
			require.True(t, locked())
			out, err := run(t, env, "users", "unlock", "--email", "Root@Example.COM")
			require.NoError(t, err)
			require.Equal(t, root+"\n", out)
			require.False(t, locked())

			lock()
			out, err = run(t, env, "users", "unlock", "--id", root)
			require.NoError(t, err)
			require.Equal(t, root+"\n", out)
			require.False(t, locked())

			_, err = run(t, env, "users", "unlock")
			require.ErrorContains(t, err, "exactly one of --email and --id")
			_, err = run(t, env, "users", "unlock", "--email", "root@example.com", "--id", root)
			require.Error(t, err)
			_, err = run(t, env, "users", "unlock", "--email", "nobody@example.com")
			require.ErrorContains(t, err, "no account has the email nobody@example.com")
			_, err = run(t, env, "users", "unlock", "--email", "not an address")
			require.ErrorContains(t, err, "--email")
			_, err = run(t, env, "users", "unlock", "--id", "0190aaaa-0000-7000-8000-000000000000")
			require.ErrorContains(t, err, "no such user")

			out, err = run(t, env, "users", "unlock", "--help")
			require.NoError(t, err)
			require.Contains(t, out, "--email")
			require.Contains(t, out, "--id")
			out, err = run(t, env, "users", "--help")
			require.NoError(t, err)
			require.Contains(t, out, "unlock")
		})
	}
}
