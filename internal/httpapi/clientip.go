package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r.
//
// X-Forwarded-For is believed only when the direct peer (r.RemoteAddr) is
// in trusted: the list is then walked from the right, skipping hops that
// are themselves trusted proxies, and the first untrusted address is the
// client. Everything left of it was written by the client and may be
// forged. A malformed entry stops the walk at the last good hop. If every
// hop is trusted, the leftmost one is the answer.
//
// IPv4-mapped IPv6 addresses are unmapped and zones dropped, so one client
// has one key for rate limits. The zero Addr means r.RemoteAddr was not an
// IP address (a Unix socket, a test pipe).
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	values := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop := parseHost(strings.TrimSpace(hops[j]))
			if !hop.IsValid() {
				return client
			}
			client = hop
			if !isTrusted(hop, trusted) {
				return client
			}
		}
	}
	return client
}

// parseHost parses "ip", "ip:port" or "[ipv6]:port" into a canonical Addr.
func parseHost(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return canonical(a)
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return canonical(a)
}

func canonical(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// "::ffff:10.0.0.0/104" means 10.0.0.0/8; a is unmapped.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type clientIPKey struct{}

func withClientIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIPFrom returns the client address the middleware computed for the
// request carried by ctx (see ClientIP), or the zero Addr.
func ClientIPFrom(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(clientIPKey{}).(netip.Addr)
	return ip
}
