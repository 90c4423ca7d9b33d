package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"golang.org/x/net/idna"

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
// address that Blocked refuses, in any spelling a browser or inet_aton
// accepts (127.1, 0x7f000001, 2130706433, 0177.0.0.1, 127.0.0.1.), nor
// "localhost". Names are resolved only when delivering, where the dialer
// checks each address with the same Blocked. Errors are validation_failed
// naming body.url.
func ValidateURL(raw string, allowPrivate bool) (*url.URL, error) {
	bad := func(msg string) (*url.URL, error) { return nil, gatehouse.InvalidField("url", msg) }
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
	if strings.Contains(host, "%") {
		return bad("must not carry an IPv6 zone")
	}
	name := lookupName(host)
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return bad("must not point to this machine")
	}
	addr, literal, err := literalAddr(name)
	if err != nil || (!literal && slices.Contains(strings.Split(name, "."), "")) {
		// An empty label is no name, and a name ending in a number
		// would be read as an address.
		return bad("must name a valid IP address, or a host name that does not end in a number")
	}
	if literal && Blocked(addr) {
		return bad("must not be a loopback, private, link-local or reserved address")
	}
	return u, nil
}

// lookupName is host as a resolver gets it: lower case, international
// names in their ASCII form as net/http converts them before dialing (so
// full-width digits are digits), and without the one trailing dot that
// marks a fully qualified name.
func lookupName(host string) string {
	name := strings.ToLower(host)
	if !isASCII(name) {
		if a, err := idna.Lookup.ToASCII(name); err == nil {
			name = a
		}
	}
	return strings.TrimSuffix(name, ".")
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// literalAddr reports the address a host written as an IP literal stands
// for, parsing IPv4 as browsers (the WHATWG URL standard) and C's
// inet_aton do: one to four parts, each decimal, octal (a leading 0) or
// hex (0x), the last filling the remaining bytes, so 127.1, 0x7f000001,
// 2130706433, 0177.0.0.1 and 0 are all addresses. A name whose last label
// is a number but that does not parse so is an error: browsers refuse
// such a URL, and a resolver might read it as an address. Anything else
// is a host name (literal false), which the dialer checks once resolved.
func literalAddr(name string) (addr netip.Addr, literal bool, err error) {
	if a, err := netip.ParseAddr(name); err == nil {
		return a, true, nil
	}
	parts := strings.Split(name, ".")
	last := parts[len(parts)-1]
	if _, ok := ipv4Number(last); !ok && !isDigits(last) {
		return netip.Addr{}, false, nil
	}
	if len(parts) > 4 {
		return netip.Addr{}, false, errors.New("too many parts for an IPv4 address")
	}
	var v uint64
	for i, p := range parts {
		n, ok := ipv4Number(p)
		if !ok {
			return netip.Addr{}, false, fmt.Errorf("%q is not a number", p)
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false, fmt.Errorf("%q is above 255", p)
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false, fmt.Errorf("%q is too large", p)
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true, nil
}

// ipv4Number parses one part of an IPv4 address the WHATWG way: 0x or 0X
// for hex, a leading 0 for octal, else decimal; an empty hex or octal
// rest is 0.
func ipv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(s, base, 64)
	return n, err == nil
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// newDialer makes the dialer deliveries connect with.
func newDialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: defaultTimeout}
	if !allowPrivate {
		d.Control = dialControl
	}
	return d
}
