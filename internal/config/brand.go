package config

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Brand is the hosted pages' look, from GATEHOUSE_BRAND_NAME, _LOGO and
// _COLOR (see validateBrand).
type Brand struct {
	// Name is shown in every page's title and header.
	Name string
	// LogoURL is an https logo, or LogoBytes and LogoType a logo file's
	// contents and media type; all empty for none.
	LogoURL   string
	LogoBytes []byte
	LogoType  string
	// Color is the primary colour, #rrggbb in lower case ("" for the
	// default).
	Color string
}

// maxLogoBytes caps a logo file: it is held in memory and sent with every
// page's header.
const maxLogoBytes = 512 << 10

var logoTypes = map[string]string{
	".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
}

// validateBrand makes c.Brand: the name defaults to GATEHOUSE_SERVICE_NAME;
// the colour must be #rrggbb with at least 4.5:1 contrast against white
// button text; the logo is a file (PNG, SVG, JPEG or WebP, at most
// 512 KiB, read now) or an https URL.
func (c *Config) validateBrand() error {
	b := Brand{Name: c.BrandName, Color: strings.ToLower(c.BrandColor)}
	if b.Name == "" {
		b.Name = c.ServiceName
	}
	if b.Color != "" {
		ratio, ok := contrastWithWhite(b.Color)
		if !ok {
			return invalid("BRAND_COLOR", fmt.Sprintf("%q is not a colour like #0b57d0", c.BrandColor))
		}
		if ratio < 4.5 {
			return invalid("BRAND_COLOR", fmt.Sprintf("%s has %.1f:1 contrast with white button text; choose a darker colour (at least 4.5:1)", c.BrandColor, ratio))
		}
	}
	logo := c.BrandLogo
	switch {
	case logo == "":
	case strings.Contains(logo, "://"):
		u, err := url.Parse(logo)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return invalid("BRAND_LOGO", fmt.Sprintf("%q is neither a file nor an https URL", logo))
		}
		b.LogoURL = logo
	default:
		typ, ok := logoTypes[strings.ToLower(filepath.Ext(logo))]
		if !ok {
			return invalid("BRAND_LOGO", fmt.Sprintf("%q is not a .png, .svg, .jpg or .webp file", logo))
		}
		if st, err := os.Stat(logo); err != nil || st.Size() > maxLogoBytes {
			return invalid("BRAND_LOGO", fmt.Sprintf("%q cannot be read or is larger than 512 KiB", logo))
		}
		data, err := os.ReadFile(logo)
		if err != nil {
			return invalid("BRAND_LOGO", fmt.Sprintf("%q cannot be read: %v", logo, err))
		}
		b.LogoBytes, b.LogoType = data, typ
	}
	c.Brand = b
	return nil
}

// contrastWithWhite is the WCAG contrast ratio of #rrggbb with white.
func contrastWithWhite(hex string) (float64, bool) {
	if len(hex) != 7 || hex[0] != '#' {
		return 0, false
	}
	v, err := strconv.ParseUint(hex[1:], 16, 32)
	if err != nil {
		return 0, false
	}
	lin := func(c uint64) float64 {
		s := float64(c) / 255
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	l := 0.2126*lin(v>>16&0xff) + 0.7152*lin(v>>8&0xff) + 0.0722*lin(v&0xff)
	return 1.05 / (l + 0.05), true
}
