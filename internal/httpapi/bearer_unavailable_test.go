package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
)

// keysDownSessions answers every token the way session.Authenticate does
// when the signing keys cannot be read.
type keysDownSessions struct{ httpapi.Sessions }

func (keysDownSessions) Authenticate(context.Context, string) (gatehouse.Principal, error) {
	return gatehouse.Principal{}, gatehouse.WrapError(gatehouse.CodeUnavailable,
		errors.New("verify access token: load signing keys: database down"), "access tokens cannot be checked right now; try again")
}

// A bearer token that could not be checked is 503 service_unavailable:
// not a refused token (no WWW-Authenticate invalid_token, so clients keep
// it) and not charged to the client's rate limit.
func TestBearerUncheckableIsUnavailableAndNotCharged(t *testing.T) {
	e := newEnv(t, func(d *httpapi.Deps) {
		d.Sessions = keysDownSessions{}
		d.RateLimiter = ratelimit.NewMemory()
		d.RateLimits = httpapi.RateLimits{API: ratelimit.Limit{Count: 2, Window: time.Hour}}
	})
	for range 5 {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/auth/me", nil)
		req.Header.Set("Authorization", "Bearer some.valid.token")
		rec := e.do(req)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		require.Contains(t, rec.Body.String(), `"code":"service_unavailable"`)
		require.NotContains(t, rec.Body.String(), "database down", "the cause stays in the logs")
		require.False(t, strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_token"))
	}
	// The limit (2 an hour) is untouched: refused tokens still count.
	for i := range 3 {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/auth/me", nil)
		rec := e.do(req)
		if i < 2 {
			require.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
		} else {
			require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
		}
	}
}
