package risk

import "net/netip"

// ClientNetwork names the network a client address stands for wherever
// requests are counted per client (the rate limiter and the risk
// engine's failure counters), so that both agree: an IPv4 address itself
// (an IPv4-mapped IPv6 address is unmapped first), or the /64 of an IPv6
// address, written as a prefix ("2001:db8:1:2::/64"), since one
// subscriber usually holds a whole /64 and could otherwise rotate through
// it. The zone is dropped. It is "" for the zero Addr.
func ClientNetwork(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	switch {
	case !ip.IsValid():
		return ""
	case ip.Is6():
		return netip.PrefixFrom(ip, 64).Masked().String()
	default:
		return ip.String()
	}
}

// counterNetwork is the key part of the failure counters for ip as the
// callers hand it over (a string): its ClientNetwork, or the string
// itself when it is not an address.
func counterNetwork(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		return ClientNetwork(a)
	}
	return ip
}
