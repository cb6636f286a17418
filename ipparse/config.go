package ipparse

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"golang.org/x/net/http/httpguts"
)

// Defaults for the zero values of Config and ProxyProtocol.
const (
	// DefaultHeader is the forwarding header walked when Config.Header is empty.
	DefaultHeader = "X-Forwarded-For"
	// DefaultIPv6Prefix is the length IPv6 client keys are collapsed to: one
	// /64 is one subscriber's LAN, and a client holds every address in it.
	DefaultIPv6Prefix = 64
	// DefaultMaxHops is the most entries of the forwarding header one walk
	// examines. Real chains are a handful of hops; 32 is far beyond any
	// deployment and still bounds the work per request to a few microseconds.
	DefaultMaxHops = 32
	// DefaultMaxHeaderBytes is the most bytes the forwarding header may hold,
	// all its lines together. 32 IPv6 hops with ports and separators take
	// under 1600 bytes.
	DefaultMaxHeaderBytes = 8 << 10
	// DefaultHeaderTimeout bounds how long a peer may take to send its PROXY
	// header. A load balancer writes it in the first packet.
	DefaultHeaderTimeout = 5 * time.Second

	// maxHeaderTimeout is the longest header_timeout Validate accepts: a
	// longer one only lets a slowloris hold connections open.
	maxHeaderTimeout = time.Minute
	// maxMaxHops and maxMaxHeaderBytes are the largest bounds Validate
	// accepts; the bounds exist to keep the walk cheap.
	maxMaxHops        = 1024
	maxMaxHeaderBytes = 1 << 20
	// minIPv6Prefix is the shortest ipv6_prefix Validate accepts: shorter
	// prefixes would make whole providers share one client key.
	minIPv6Prefix = 16
)

// Config is the `client_ip:` block of the config file: how the address of the
// client behind a request is learned. The zero value is valid: no PROXY
// protocol, no trusted proxies, so the TCP peer is the client.
type Config struct {
	// ProxyProtocol says which peers may open a connection with a PROXY
	// protocol v1/v2 header, and whether they must.
	ProxyProtocol ProxyProtocol `yaml:"proxy_protocol" json:"proxy_protocol"`
	// TrustedProxies are the L7 proxies (load balancers, CDNs, ingress
	// controllers) whose forwarding header is believed. When the connection's
	// start address is not in one of these ranges it is the client and every
	// forwarding header is ignored. Never list ranges that clients can send
	// from: whoever is trusted can name any client address.
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies" json:"trusted_proxies"`
	// Header is the forwarding header the trusted proxies set:
	// X-Forwarded-For (the default) or Forwarded (RFC 7239), walked from the
	// right; or a single-address header such as X-Real-IP, CF-Connecting-IP,
	// True-Client-IP or any other name, taken as is from a trusted proxy.
	// Names are case-insensitive.
	Header string `yaml:"header" json:"header"`
	// IPv6Prefix is the prefix length IPv6 clients are collapsed to for
	// limits and bans (IPv4 clients are keyed by their address). Default 64;
	// 16 to 128.
	IPv6Prefix int `yaml:"ipv6_prefix" json:"ipv6_prefix"`
	// MaxHops is the most entries of the forwarding header one walk examines
	// (default 32, at most 1024). A request whose walk would need more is
	// refused with 431 rather than resolved to a guess.
	MaxHops int `yaml:"max_hops" json:"max_hops"`
	// MaxHeaderBytes is the most bytes the forwarding header may hold, all
	// its lines together as if joined with ", " (default 8192, at most 1MiB).
	// A longer one from a trusted start is refused with 431.
	MaxHeaderBytes int `yaml:"max_header_bytes" json:"max_header_bytes"`
}

// ProxyProtocol is the `client_ip.proxy_protocol:` block: PROXY protocol
// v1/v2 on the listener (HAProxy's spec, as load balancers such as AWS NLB,
// HAProxy and many CDNs send it).
type ProxyProtocol struct {
	// Trusted are the peers that may send a PROXY header; the address in it
	// replaces theirs as the connection's start address. A PROXY header from
	// any other peer gets the connection closed. Empty: nobody may send one.
	Trusted []netip.Prefix `yaml:"trusted" json:"trusted"`
	// Required makes the header mandatory for trusted peers: a trusted peer
	// that does not send one gets the connection closed. Peers outside
	// Trusted are unaffected. Needs Trusted.
	Required bool `yaml:"required" json:"required"`
	// HeaderTimeout bounds how long any peer may take to send the header
	// (default 5s, at most 1m). A peer that is still sending a PROXY header
	// when it expires is cut off; a peer that has sent nothing yet is served
	// as one without a header (unless Required and trusted).
	HeaderTimeout filters.Duration `yaml:"header_timeout" json:"header_timeout"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if strings.TrimSpace(c.Header) == "" {
		c.Header = DefaultHeader
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.MaxHops == 0 {
		c.MaxHops = DefaultMaxHops
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	c.ProxyProtocol = c.ProxyProtocol.WithDefaults()
	return c
}

// WithDefaults returns c with a zero HeaderTimeout set to its default.
func (c ProxyProtocol) WithDefaults() ProxyProtocol {
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = filters.Duration(DefaultHeaderTimeout)
	}
	return c
}

// Validate checks c and returns every problem, each a *filters.FieldError
// whose Field is relative to the client_ip block ("ipv6_prefix",
// "trusted_proxies[2]", "proxy_protocol.header_timeout"), joined with
// errors.Join; nil when c is usable. Zero values are valid: they mean the
// defaults.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, filters.FieldErrorf(field, format, args...))
	}
	checkPrefixes := func(field string, ps []netip.Prefix) {
		for i, p := range ps {
			if msg := prefixProblem(p); msg != "" {
				add(field+"["+strconv.Itoa(i)+"]", "%s", msg)
			}
		}
	}

	pp := c.ProxyProtocol
	checkPrefixes("proxy_protocol.trusted", pp.Trusted)
	if pp.Required && len(pp.Trusted) == 0 {
		add("proxy_protocol.required", "true needs proxy_protocol.trusted: no peer could send the required header")
	}
	if d := pp.HeaderTimeout.D(); d > maxHeaderTimeout {
		add("proxy_protocol.header_timeout", "%s is longer than %s; a load balancer sends the header in its first packet, and a long timeout only helps slow-header attacks", d, maxHeaderTimeout)
	}

	checkPrefixes("trusted_proxies", c.TrustedProxies)
	if name := strings.TrimSpace(c.Header); name != "" && !httpguts.ValidHeaderFieldName(name) {
		add("header", "%q is not a valid header name", c.Header)
	}
	if c.IPv6Prefix != 0 && (c.IPv6Prefix < minIPv6Prefix || c.IPv6Prefix > 128) {
		add("ipv6_prefix", "%d: want %d to 128 (default %d)", c.IPv6Prefix, minIPv6Prefix, DefaultIPv6Prefix)
	}
	if c.MaxHops < 0 || c.MaxHops > maxMaxHops {
		add("max_hops", "%d: want 1 to %d (default %d)", c.MaxHops, maxMaxHops, DefaultMaxHops)
	}
	if c.MaxHeaderBytes < 0 || c.MaxHeaderBytes > maxMaxHeaderBytes {
		add("max_header_bytes", "%d: want 1 to %d (default %d)", c.MaxHeaderBytes, maxMaxHeaderBytes, DefaultMaxHeaderBytes)
	}
	return errors.Join(errs...)
}

// prefixProblem says what is wrong with a trusted range, or "".
func prefixProblem(p netip.Prefix) string {
	if !p.IsValid() {
		return "not a valid address range"
	}
	n := normPrefix(p)
	if n.Bits() == 0 {
		return p.String() + " trusts every address, so any client could choose its own IP; list your proxies' ranges"
	}
	if n.Masked() != n {
		return p.String() + " has host bits set; did you mean " + n.Masked().String() + "?"
	}
	return ""
}

// normPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into its
// IPv4 form, which is what unmapped addresses are checked against.
func normPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// prefixSet answers "is this address in one of the ranges". Addresses given
// to contains must be unmapped and zone-less (netip.Prefix.Contains is false
// for a zoned or IPv4-mapped address against an IPv4 range).
type prefixSet struct {
	v4, v6 []netip.Prefix
}

func newPrefixSet(ps []netip.Prefix) prefixSet {
	var s prefixSet
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		p = normPrefix(p).Masked()
		if p.Addr().Is4() {
			s.v4 = append(s.v4, p)
		} else {
			s.v6 = append(s.v6, p)
		}
	}
	return s
}

func (s *prefixSet) contains(a netip.Addr) bool {
	ps := s.v6
	if a.Is4() {
		ps = s.v4
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Trusts returns the test Listen applies to a peer: whether it may send a
// PROXY header. Built once, it is safe for concurrent use; callers outside
// the listener (an accept-time ban check) must use it rather than their own
// prefix matching, so that both agree on mapped and zoned addresses.
func (c ProxyProtocol) Trusts() func(netip.Addr) bool {
	set := newPrefixSet(c.Trusted)
	return func(a netip.Addr) bool { return set.contains(a.Unmap().WithZone("")) }
}
