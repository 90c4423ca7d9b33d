package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBrand(t *testing.T) {
	cfg, err := load(t, "GATEHOUSE_SERVICE_NAME", "Acme ID")
	require.NoError(t, err)
	require.Equal(t, "Acme ID", cfg.Brand.Name, "the service name by default")
	require.Empty(t, cfg.Brand.Color)
	require.Empty(t, cfg.Brand.LogoBytes)

	logo := filepath.Join(t.TempDir(), "logo.svg")
	require.NoError(t, os.WriteFile(logo, []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), 0o600))
	cfg, err = load(t, "GATEHOUSE_BRAND_NAME", "Acme", "GATEHOUSE_BRAND_LOGO", logo, "GATEHOUSE_BRAND_COLOR", "#0B57D0")
	require.NoError(t, err)
	require.Equal(t, "Acme", cfg.Brand.Name)
	require.Equal(t, "#0b57d0", cfg.Brand.Color)
	require.Equal(t, "image/svg+xml", cfg.Brand.LogoType)
	require.Contains(t, string(cfg.Brand.LogoBytes), "<svg")

	cfg, err = load(t, "GATEHOUSE_BRAND_LOGO", "https://cdn.example.com/logo.png")
	require.NoError(t, err)
	require.Equal(t, "https://cdn.example.com/logo.png", cfg.Brand.LogoURL)

	big := filepath.Join(t.TempDir(), "big.png")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("x", 513<<10)), 0o600))
	for _, tc := range []struct{ name, value, want string }{
		{"GATEHOUSE_BRAND_COLOR", "#ffcc00", "contrast"}, // yellow: 1.6:1 with white
		{"GATEHOUSE_BRAND_COLOR", "blue", "not a colour"},
		{"GATEHOUSE_BRAND_COLOR", "#12345", "not a colour"},
		{"GATEHOUSE_BRAND_LOGO", "http://cdn.example.com/logo.png", "https"},
		{"GATEHOUSE_BRAND_LOGO", filepath.Join(t.TempDir(), "missing.png"), "cannot be read"},
		{"GATEHOUSE_BRAND_LOGO", logo + ".gif", "not a .png"},
		{"GATEHOUSE_BRAND_LOGO", big, "512 KiB"},
	} {
		_, err := load(t, tc.name, tc.value)
		require.ErrorContains(t, err, tc.name, tc.value)
		require.ErrorContains(t, err, tc.want, tc.value)
	}
}
