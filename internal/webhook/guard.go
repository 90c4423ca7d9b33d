package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/gatehouse-auth/gatehouse"
)

// maxURLLength bounds a webhook URL.
const maxURLLength = 2048

// blockedPrefixes are ranges a webhook may not reach unless private
// addresses are allowed, besides what netip's predicates name (loopback,
// private, link-local, multicast, unspecified).
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"; Linux connects it to the host itself
	netip.MustParsePrefix("100.64.0.0/10"),  // CGNAT shared address space
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: reaches any IPv4 address, private ones too
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2002::/16"),      // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated)
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("100::/64"),       // discard-only
}

// Blocked reports whether a webhook may not connect to addr when private
// addresses are not allowed: loopback, private, link-local, CGNAT,
// multicast, unspecified, reserved, and every IPv4-mapped IPv6 address
// (::ffff:a.b.c.d), whatever it maps to, so no spelling slips past.
func Blocked(addr netip.Addr) bool {
	if !addr.IsValid() || addr.Zone() != "" || addr.Is4In6() {
		return true
	}
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// errBlockedAddress is what the dialer's guard refuses with.
var errBlockedAddress = errors.New("webhook: address not allowed")

// dialControl checks the address actually being connected to, after DNS
// resolution, so a name that resolves (or re-resolves) to an internal
// address is refused as surely as a literal one.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", errBlockedAddress, address)
	}
	if Blocked(ap.Addr()) {
		return fmt.Errorf("%w: %s is loopback, private or reserved", errBlockedAddress, ap.Addr())
	}
	return nil
}

// ValidateURL checks a webhook URL: absolute http or https, a host, no
// user info, at most 2048 bytes, and unless allowPrivate, no literal
// address that Blocked refuses (nor "localhost"). Names are resolved only
// when delivering, where the dialer checks the address again. Errors are
// validation_failed naming body.url.
func ValidateURL(raw string, allowPrivate bool) (*url.URL, error) {
	bad := func(msg string) (*url.URL, error) { return nil, gatehouse.InvalidField("body.url", msg) }
	if len(raw) > maxURLLength {
		return bad(fmt.Sprintf("must be at most %d characters", maxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("must be an absolute http or https URL")
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return bad("must be an absolute http or https URL")
	}
	if u.User != nil {
		return bad("must not contain user information")
	}
	host := u.Hostname()
	if host == "" {
		return bad("must name a host")
	}
	if allowPrivate {
		return u, nil
	}
	lower := strings.TrimSuffix(strings.ToLower(host), ".")
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return bad("must not point to this machine")
	}
	if addr, err := netip.ParseAddr(host); err == nil && Blocked(addr) {
		return bad("must not be a loopback, private, link-local or reserved address")
	}
	if strings.Contains(host, "%") {
		return bad("must not carry an IPv6 zone")
	}
	return u, nil
}

// newDialer makes the dialer deliveries connect with.
func newDialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: defaultTimeout}
	if !allowPrivate {
		d.Control = dialControl
	}
	return d
}
