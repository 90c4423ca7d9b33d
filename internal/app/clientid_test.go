package app_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// Access tokens carry client_id (RFC 9068 §2.2): the first-party id
// "gatehouse" by default, GATEHOUSE_TOKEN_CLIENT_ID when set; refreshed
// tokens too.
func TestAccessTokensCarryClientID(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, nil)
			env.Register("ada@example.com", apptest.StrongPassword)
			tok := env.Login("ada@example.com", apptest.StrongPassword)
			require.Equal(t, "gatehouse", apptest.Claims(t, tok.Access)["client_id"])
			require.Equal(t, http.StatusOK, env.Do("GET", "/auth/me", nil, tok.Access).Status)

			custom := apptest.New(t, eng, map[string]string{"GATEHOUSE_TOKEN_CLIENT_ID": "acme-portal"})
			custom.Register("bob@example.com", apptest.StrongPassword)
			tok = custom.Login("bob@example.com", apptest.StrongPassword)
			require.Equal(t, "acme-portal", apptest.Claims(t, tok.Access)["client_id"])
			r := custom.Do("POST", "/auth/refresh", map[string]any{"refresh_token": tok.Refresh}, "")
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.Equal(t, "acme-portal", apptest.Claims(t, r.Str("access_token"))["client_id"])
		})
	}
}
