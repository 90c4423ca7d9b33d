package app_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// A public URL whose host is an IP address starts the server with
// passkeys off: their ceremonies answer 404 not_found saying why, and the
// rest of the API works.
func TestIPPublicURLStartsWithPasskeysOff(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, map[string]string{"GATEHOUSE_PUBLIC_URL": "http://127.0.0.1:8080"})
			require.True(t, env.App.Config.PasskeysOff)
			env.Register("ada@example.com", apptest.StrongPassword)
			tok := env.Login("ada@example.com", apptest.StrongPassword)

			for _, call := range []struct {
				path, bearer string
				body         any
			}{
				{"/auth/webauthn/authenticate/begin", "", map[string]any{}},
				{"/auth/webauthn/authenticate/begin", "", map[string]any{"email": "ada@example.com"}},
				{"/auth/webauthn/authenticate/finish", "", map[string]any{"challenge_id": "x", "credential": map[string]any{"id": "x"}}},
				{"/auth/webauthn/register/begin", tok.Access, nil},
				{"/auth/webauthn/register/finish", tok.Access, map[string]any{"credential": map[string]any{"id": "x"}}},
			} {
				r := env.Do("POST", call.path, call.body, call.bearer)
				apptest.Expect(t, r, http.StatusNotFound, "not_found", call.path)
				require.Contains(t, r.Str("detail"), "passkeys are off", call.path)
			}
			r := env.Do("GET", "/auth/webauthn/credentials", nil, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.Empty(t, r.JSON["items"])
		})
	}
}

// GATEHOUSE_SMS_PROVIDER=none: SMS setup answers 422 naming body.method
// (a method this server does not offer, not an outage); TOTP works.
func TestSMSProviderNoneRefusesSMSSetup(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, map[string]string{"GATEHOUSE_SMS_PROVIDER": "none"})
			env.Register("ada@example.com", apptest.StrongPassword)
			tok := env.Login("ada@example.com", apptest.StrongPassword)
			r := env.Do("POST", "/auth/mfa/setup", map[string]any{"method": "sms", "phone_number": "+14155550123"}, tok.Access)
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed")
			require.Equal(t, "body.method", r.JSON["errors"].([]any)[0].(map[string]any)["location"], string(r.Raw))
			require.Contains(t, string(r.Raw), "text messages are off")
			r = env.Do("POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		})
	}
}

// bootstrapVars configures the first administrator, the password in a
// file ending in a newline.
func bootstrapVars(t *testing.T, email, password string) map[string]string {
	path := filepath.Join(t.TempDir(), "admin-password")
	require.NoError(t, os.WriteFile(path, []byte(password+"\n"), 0o600))
	return map[string]string{"GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL": email, "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE": path}
}

func admins(t *testing.T, env *apptest.Env) int {
	n, err := env.App.DB.CountUsersWithRoleForUpdate(context.Background(), gatehouse.RoleAdmin)
	require.NoError(t, err)
	return n
}

// The bootstrap admin is made once: verified, with the admin role, signing
// in with the file's password (its newline dropped); later starts leave
// it alone.
func TestBootstrapAdminOnce(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, bootstrapVars(t, "Root@Example.com", apptest.StrongPassword))
			ctx := context.Background()
			require.Zero(t, admins(t, env))
			require.NoError(t, env.App.BootstrapAdmin(ctx))
			require.Equal(t, 1, admins(t, env))

			tok := env.Login("root@example.com", apptest.StrongPassword)
			me := env.Do("GET", "/auth/me", nil, tok.Access)
			require.Equal(t, true, me.JSON["email_verified"])
			require.ElementsMatch(t, []any{"admin", "user"}, me.JSON["roles"])
			require.Equal(t, http.StatusOK, env.Do("GET", "/admin/users", nil, tok.Access).Status)

			// Every later start: nothing happens, even with another
			// address or a password the policy refuses.
			require.NoError(t, env.App.BootstrapAdmin(ctx))
			env.App.Config.BootstrapAdminEmail, env.App.Config.BootstrapAdminPassword = "other@example.com", "weak"
			require.NoError(t, env.App.BootstrapAdmin(ctx))
			require.Equal(t, 1, admins(t, env))
			r := env.Do("GET", "/admin/users", nil, tok.Access)
			require.Len(t, r.JSON["items"], 1, "no second account")
		})
	}
}

// Instances starting at once on one database make one administrator
// between them, whether they were given the same address or not.
func TestBootstrapAdminRace(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			dbURL := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
			if eng == "postgres" {
				dbURL = sqltest.PostgresURL(t)
			}
			var envs []*apptest.Env
			for _, email := range []string{"root@example.com", "root@example.com", "other@example.com", "third@example.com"} {
				vars := bootstrapVars(t, email, apptest.StrongPassword)
				vars["GATEHOUSE_DATABASE_URL"] = dbURL
				env := apptest.New(t, eng, vars)
				require.NoError(t, env.App.Worker.Stop(context.Background()))
				envs = append(envs, env)
			}
			var wg sync.WaitGroup
			errs := make([]error, len(envs))
			for i, env := range envs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = env.App.BootstrapAdmin(context.Background())
				}()
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, 1, admins(t, envs[0]), "exactly one administrator")
		})
	}
}

// A password the policy refuses stops start-up with one line naming the
// file, never the password; an address that belongs to an account which
// is not an administrator is not promoted.
func TestBootstrapAdminRefusals(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, bootstrapVars(t, "root@example.com", "password1234"))
			err := env.App.BootstrapAdmin(context.Background())
			var ce *config.Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE", ce.Var)
			require.NotContains(t, err.Error(), "password1234")
			require.NotContains(t, err.Error(), "\n")
			require.Zero(t, admins(t, env))

			// Someone registered the address first.
			env.Register("root@example.com", apptest.StrongPassword)
			env.App.Config.BootstrapAdminPassword = apptest.StrongPassword
			require.NoError(t, env.App.BootstrapAdmin(context.Background()))
			require.Zero(t, admins(t, env), "an existing account is never promoted")
		})
	}
}
