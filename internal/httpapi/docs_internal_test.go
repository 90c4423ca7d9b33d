package httpapi

import "testing"

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"GZIP":                    true,
		"x-gzip":                  true,
		"br, gzip;q=0.8":          true,
		"gzip; q=0.001":           true,
		"deflate, br":             false,
		"gzip;q=0":                false,
		"gzip;q=0.000":            false,
		"gzip;q=nonsense":         false,
		"*":                       true,
		"*;q=0":                   false,
		"*;q=0, gzip":             true, // named beats the wildcard
		"gzip;q=0, *":             false,
		"identity;q=1, *;q=0.5":   true,
		"compress, gzipped, brgz": false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
