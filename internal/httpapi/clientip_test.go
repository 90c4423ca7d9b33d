package httpapi_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("::ffff:192.168.0.0/112"), // IPv4-mapped form of 192.168.0.0/16
	}
	cases := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxy, no header", "203.0.113.5:4000", nil, nil, "203.0.113.5"},
		{"no trusted proxies: header ignored", "203.0.113.5:4000", []string{"1.2.3.4"}, nil, "203.0.113.5"},
		{"spoofed header from untrusted peer", "203.0.113.5:4000", []string{"1.2.3.4"}, proxies, "203.0.113.5"},
		{"trusted proxy", "10.0.0.1:4000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"client-forged left part is skipped", "10.0.0.1:4000", []string{"6.6.6.6, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.1:4000", []string{"198.51.100.7, 10.0.0.3, 10.0.0.2"}, proxies, "198.51.100.7"},
		{"several headers", "10.0.0.1:4000", []string{"6.6.6.6, 198.51.100.7", "10.0.0.2"}, proxies, "198.51.100.7"},
		{"all hops trusted", "10.0.0.1:4000", []string{"10.0.0.9, 10.0.0.2"}, proxies, "10.0.0.9"},
		{"trusted peer without header", "10.0.0.1:4000", nil, proxies, "10.0.0.1"},
		{"garbage stops the walk", "10.0.0.1:4000", []string{"198.51.100.7, garbage, 10.0.0.2"}, proxies, "10.0.0.2"},
		{"empty entry stops the walk", "10.0.0.1:4000", []string{"198.51.100.7,"}, proxies, "10.0.0.1"},
		{"entry with port", "10.0.0.1:4000", []string{"198.51.100.7:8080"}, proxies, "198.51.100.7"},
		{"IPv6 peer", "[2001:db8::1]:4000", []string{"1.2.3.4"}, proxies, "2001:db8::1"},
		{"IPv6 trusted proxy, IPv6 client", "[fd00::1]:4000", []string{"2001:db8::42"}, proxies, "2001:db8::42"},
		{"IPv6 client with brackets and port", "[fd00::1]:4000", []string{"[2001:db8::42]:1234"}, proxies, "2001:db8::42"},
		{"IPv6 zone dropped", "[fe80::1%eth0]:4000", nil, proxies, "fe80::1"},
		{"IPv4-mapped peer is unmapped", "[::ffff:10.0.0.1]:4000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"IPv4-mapped client is unmapped", "10.0.0.1:4000", []string{"::ffff:198.51.100.7"}, proxies, "198.51.100.7"},
		{"IPv4-mapped trusted prefix", "192.168.1.1:4000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"peer without port", "203.0.113.5", nil, proxies, "203.0.113.5"},
		{"not an IP", "@", nil, proxies, "invalid IP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			require.Equal(t, tc.want, httpapi.ClientIP(r, tc.trusted).String())
		})
	}
}
