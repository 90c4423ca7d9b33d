package risk_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/risk"
)

func TestClientNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":                 "203.0.113.7",
		"::ffff:203.0.113.7":          "203.0.113.7",
		"2001:db8:1:2:aaaa::1":        "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::9":   "2001:db8:1:2::/64",
		"2001:db8:1:3::1":             "2001:db8:1:3::/64",
		"fe80::1%eth0":                "fe80::/64",
		"::1":                         "::/64",
		"2001:db8:1:2:0:ffff:1.2.3.4": "2001:db8:1:2::/64",
	} {
		require.Equal(t, want, risk.ClientNetwork(netip.MustParseAddr(in)), in)
	}
	require.Empty(t, risk.ClientNetwork(netip.Addr{}))
}

// An attacker rotating addresses within one IPv6 /64 (as the rate limiter
// sees it, one client) trips failed_logins_ip and ip_reputation as one
// address would; another /64 and IPv4-mapped spellings are told apart as
// the rate limiter tells them apart.
func TestFailureCountersPerNetwork(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false, nil)
	for i := range 20 {
		f.engine.RecordFailure(ctx, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 15: byte(i + 1)}).String(), "")
	}
	a := f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "2001:db8:1:2:dead:beef::77", Device: known()})
	require.Equal(t, []string{risk.FactorFailedIP, risk.FactorIPReputation}, names(a))
	require.Contains(t, a.Factors[1].Reason, "sent 20 failed sign-ins")
	require.Empty(t, f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "2001:db8:1:3::1", Device: known()}).Factors)

	f = newFixture(t, false, nil)
	for range 5 {
		f.engine.RecordFailure(ctx, "::ffff:10.0.0.9", "")
	}
	require.Equal(t, []string{risk.FactorFailedIP}, names(f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.9", Device: known()})))
	require.Empty(t, f.engine.Assess(ctx, risk.Input{UserID: "u", IP: "10.0.0.8", Device: known()}).Factors)
}

// IPv4-mapped ranges in the blocklist match the IPv4 addresses they stand
// for, in either spelling; a mapped range shorter than /96 is refused with
// its line.
func TestBlocklistMappedRanges(t *testing.T) {
	got, err := risk.ParseBlocklist([]byte("::ffff:203.0.113.0/120\n::ffff:c633:6400/120 # hex\n::ffff:192.0.2.9/128\n::ffff:0:0/96\n"))
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("192.0.2.9/32"), netip.MustParsePrefix("0.0.0.0/0"),
	}, got)

	path := filepath.Join(t.TempDir(), "blocklist.txt")
	require.NoError(t, os.WriteFile(path, []byte("::ffff:203.0.113.0/120\n"), 0o600))
	bl, err := risk.OpenBlocklist(path, nil, 0)
	require.NoError(t, err)
	for ip, want := range map[string]bool{"203.0.113.7": true, "::ffff:203.0.113.7": true, "203.0.114.7": false, "2001:db8::1": false} {
		require.Equal(t, want, bl.Contains(netip.MustParseAddr(ip)), ip)
	}

	_, err = risk.ParseBlocklist([]byte("10.0.0.0/8\n::ffff:203.0.113.0/80\n"))
	require.ErrorContains(t, err, `line 2: "::ffff:203.0.113.0/80"`)
}
