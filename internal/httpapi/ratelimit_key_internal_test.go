package httpapi

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/risk"
)

// The rate limiter keys a client as the risk engine counts its failed
// sign-ins (risk.ClientNetwork): an IPv4 address, unmapped, or an IPv6
// /64; IPv4-mapped addresses no longer share the one key ::/64.
func TestIPKeyIsTheRiskNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":          "ip:203.0.113.7",
		"::ffff:203.0.113.7":   "ip:203.0.113.7",
		"::ffff:198.51.100.1":  "ip:198.51.100.1",
		"2001:db8:1:2:aaaa::1": "ip:2001:db8:1:2::/64",
		"2001:db8:1:2::ffff":   "ip:2001:db8:1:2::/64",
	} {
		ip := netip.MustParseAddr(in)
		require.Equal(t, want, ipKey(ip), in)
		require.Equal(t, "ip:"+risk.ClientNetwork(ip), ipKey(ip), in)
	}
	require.Equal(t, "ip:unknown", ipKey(netip.Addr{}))
}
