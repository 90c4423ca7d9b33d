package httpapi

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/oauth"
)

// The state binding cookie is Secure exactly when the public callback URL
// is https, lives on the callback's public path, and clears with a
// negative Max-Age and no value.
func TestStateCookie(t *testing.T) {
	b := oauth.Binding("some state")
	c := stateCookie("https://auth.example.com/gh/api/v1/oauth/google/callback", b, 600)
	require.True(t, c.Secure)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, c.SameSite)
	require.Equal(t, "/gh/api/v1/oauth/google/callback", c.Path)
	require.Equal(t, b, c.Value)
	require.Equal(t, 600, c.MaxAge)
	require.NoError(t, c.Valid())

	c = stateCookie("http://localhost:8080/api/v1/oauth/acme/callback", b, -1)
	require.False(t, c.Secure)
	require.Empty(t, c.Value)
	require.Negative(t, c.MaxAge)
	require.Equal(t, stateCookieName(b), c.Name)
	require.NotEqual(t, stateCookieName(b), stateCookieName(oauth.Binding("another state")))
}
