package web_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/stretchr/testify/require"
)

// GATEHOUSE_BRAND_* show on every page: the name, the logo (a file served
// by us with its own CSP, or an https URL the CSP then allows) and the
// colour's stylesheet.
func TestBranding(t *testing.T) {
	logo := filepath.Join(t.TempDir(), "logo.png")
	png := []byte("\x89PNG\r\n\x1a\nnot really")
	require.NoError(t, os.WriteFile(logo, png, 0o600))
	env, email := newEnv(t, map[string]string{"GATEHOUSE_BRAND_NAME": "Acme ID", "GATEHOUSE_BRAND_LOGO": logo,
		"GATEHOUSE_BRAND_COLOR": "#7a1fa2"})
	b := newBrowser(t, env)
	for _, path := range []string{"/login", "/register", "/forgot-password", "/reset-password?token=x", "/account"} {
		if path == "/account" {
			b.login(email, apptest.StrongPassword)
		}
		b.get(path)
		require.Contains(t, b.last, "· Acme ID</title>", path)
		require.Contains(t, b.last, `<a class="brand" href="/"><img src="/assets/brand-logo" alt="" class="logo">Acme ID</a>`, path)
		require.Contains(t, b.last, `<link rel="stylesheet" href="/assets/brand.css">`, path)
	}
	resp := b.get("/assets/brand.css")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, b.last, "--accent:#7a1fa2")
	resp, err := http.Get(env.Server.URL + "/assets/brand-logo")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, png, body)
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "sandbox")

	env2, _ := newEnv(t, map[string]string{"GATEHOUSE_BRAND_LOGO": "https://cdn.example.com/acme.svg"})
	b2 := newBrowser(t, env2)
	resp = b2.get("/login")
	require.Contains(t, b2.last, `<img src="https://cdn.example.com/acme.svg" alt="" class="logo">Gatehouse</a>`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "img-src 'self' data: https://cdn.example.com;")
	require.NotContains(t, b2.last, "brand.css", "no colour, no stylesheet")
	resp = b2.get("/assets/brand-logo")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
