package reputation

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrTarget is wrapped by every error about an address or prefix that cannot
// be listed or banned.
var ErrTarget = errors.New("reputation: bad target")

// parsePrefix reads an address ("192.0.2.7", "2001:db8::1") or a prefix
// ("192.0.2.0/24", "2001:db8::/48"). A lone address becomes a one-address
// prefix; IPv4-mapped IPv6 becomes IPv4 so it matches the clients it names.
// Zones and bits set past the prefix length are refused.
func parsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("%w: empty, want an IP address or CIDR prefix", ErrTarget)
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%w %q: IPv6 zones are not allowed", ErrTarget, s)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w %q: not an IP address or CIDR prefix", ErrTarget, s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w %q: not an IP address or CIDR prefix", ErrTarget, s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%w %q: an IPv4-mapped prefix must be /96 or longer", ErrTarget, s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%w %q: bits are set past the /%d (did you mean %s?)", ErrTarget, s, p.Bits(), m)
	}
	return p, nil
}

// ParseTarget reads the target of an admin ban or unban: an address or a
// prefix as parsePrefix reads them, where a lone IPv6 address stands for its
// client key, the /v6Bits prefix around it (v6Bits out of 1..128 means 64),
// since that is the unit clients are counted and banned by. A /0 is refused:
// it would ban everyone.
func ParseTarget(s string, v6Bits int) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	p, err := parsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%w %q: a /0 would ban every address", ErrTarget, s)
	}
	if p.Addr().Is6() && !strings.Contains(s, "/") {
		p = keyPrefix(p.Addr(), v6Bits)
	}
	return p, nil
}

// keyPrefix returns the prefix a client key stands for: the IPv4 address as
// a /32, or the IPv6 address's /v6Bits.
func keyPrefix(a netip.Addr, v6Bits int) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	if v6Bits <= 0 || v6Bits > 128 {
		v6Bits = 64
	}
	p, _ := a.Prefix(v6Bits)
	return p
}

// formatPrefix writes a one-address prefix as the bare address.
func formatPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
