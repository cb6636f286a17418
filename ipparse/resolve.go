package ipparse

import (
	"errors"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"

	"github.com/edgeguard/edgeguard/filters"
)

var (
	// ErrTooManyHops: the walk would examine more than MaxHops entries of the
	// forwarding header. Answer 431.
	ErrTooManyHops = errors.New("ipparse: forwarding header has more hops than max_hops")
	// ErrHeaderTooLarge: the forwarding header holds more than
	// MaxHeaderBytes. Answer 431.
	ErrHeaderTooLarge = errors.New("ipparse: forwarding header longer than max_header_bytes")
	// ErrNoStart: Resolve was given no valid start address (a listener that
	// is not TCP, or ConnAddrs called before the PROXY header was read).
	ErrNoStart = errors.New("ipparse: no start address")
)

// headerKind is how the configured header is read.
type headerKind uint8

const (
	kindXFF       headerKind = iota // X-Forwarded-For: a comma list of nodes
	kindForwarded                   // RFC 7239 Forwarded: elements with for=
	kindSingle                      // one address (X-Real-IP, CF-Connecting-IP, ...)
)

// Result is the resolved client of one request.
type Result struct {
	// Addr is the client address: unmapped, without zone.
	Addr netip.Addr
	// Port is the client's port where known (the start address's, or the one
	// a forwarding header gave with the address), else 0.
	Port uint16
	// Source says how Addr was learned: SourcePeer when it is the start
	// address, SourceHeader when it came from the forwarding header. Resolve
	// never sets SourceProxy: it does not know where the start came from
	// (ResolveRequest does).
	Source filters.Source
	// Key is the client's key for limits and bans (IPv6 collapsed to
	// ipv6_prefix).
	Key filters.Key
	// Hops is how many trusted entries of the header the walk stepped over
	// before reaching the client.
	Hops int
}

// Resolver applies the client-IP rule of one Config. It is immutable and safe
// for concurrent use; a reload builds a new one.
type Resolver struct {
	trusted        prefixSet
	key            string // canonical header name, for direct map lookups
	kind           headerKind
	ipv6Prefix     int
	maxHops        int
	maxHeaderBytes int
}

// NewResolver validates c and builds its resolver.
func NewResolver(c Config) (*Resolver, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	name := strings.TrimSpace(c.Header)
	r := &Resolver{
		trusted:        newPrefixSet(c.TrustedProxies),
		key:            textproto.CanonicalMIMEHeaderKey(name),
		kind:           kindSingle,
		ipv6Prefix:     c.IPv6Prefix,
		maxHops:        c.MaxHops,
		maxHeaderBytes: c.MaxHeaderBytes,
	}
	switch {
	case strings.EqualFold(name, "X-Forwarded-For"):
		r.kind = kindXFF
	case strings.EqualFold(name, "Forwarded"):
		r.kind = kindForwarded
	}
	return r, nil
}

// Trusted reports whether a is in trusted_proxies. IPv4-mapped addresses
// count as IPv4, and zones are ignored.
func (r *Resolver) Trusted(a netip.Addr) bool {
	return r.trusted.contains(a.WithZone("").Unmap())
}

// Header returns the canonical name of the forwarding header r reads.
func (r *Resolver) Header() string { return r.key }

// Resolve returns the client of a request whose connection starts at start
// (the TCP peer, or the source of a trusted PROXY header) and carries the
// headers h. The rule, as DESIGN.md states it:
//
//   - start not in trusted_proxies: start is the client, headers are ignored;
//   - otherwise the configured list header (all its lines, in order) is walked
//     from the right, stepping over trusted entries; the first untrusted
//     address is the client, and if every entry is trusted the leftmost one
//     is; an entry that is not an address stops the walk, and the client is
//     the last address reached (the trusted entry to its right, or start);
//   - a single-address header is taken when start is trusted; an absent,
//     repeated or invalid one leaves start as the client.
//
// When the walk would examine more than MaxHops entries, or the header holds
// more than MaxHeaderBytes, Resolve returns ErrTooManyHops or
// ErrHeaderTooLarge (answer 431) and no client. It allocates nothing.
func (r *Resolver) Resolve(start netip.AddrPort, h http.Header) (Result, error) {
	sa := start.Addr().WithZone("").Unmap()
	if !sa.IsValid() {
		return Result{}, ErrNoStart
	}
	res := Result{Addr: sa, Port: start.Port(), Source: filters.SourcePeer}
	if !r.trusted.contains(sa) {
		return r.keyed(res), nil
	}
	lines := h[r.key]
	if len(lines) == 0 {
		return r.keyed(res), nil
	}
	size := 2 * (len(lines) - 1) // the ", " that would join the lines
	for _, l := range lines {
		if size += len(l); size > r.maxHeaderBytes {
			return Result{}, ErrHeaderTooLarge
		}
	}

	if r.kind == kindSingle {
		if len(lines) == 1 {
			if a, port, ok := parseNode(trimOWS(lines[0]), false); ok {
				res = Result{Addr: a, Port: port, Source: filters.SourceHeader}
			}
		}
		return r.keyed(res), nil
	}

	var buf [maxNodeLen]byte
	it := newEntries(lines, r.kind == kindForwarded)
	walked := 0
	for {
		elem, more, malformed := it.next()
		if !more {
			break // leftmost reached: the last address is the client
		}
		if walked == r.maxHops {
			return Result{}, ErrTooManyHops
		}
		walked++
		a, port, ok := r.entry(elem, malformed, &buf)
		if !ok {
			break // not an address: never look left of it
		}
		res = Result{Addr: a, Port: port, Source: filters.SourceHeader, Hops: walked - 1}
		if !r.trusted.contains(a) {
			break
		}
	}
	return r.keyed(res), nil
}

// entry returns the address of one element of the list header, as
// entries.next returned it; ok is false when it is not an address.
func (r *Resolver) entry(elem string, malformed bool, buf *[maxNodeLen]byte) (netip.Addr, uint16, bool) {
	if malformed {
		return netip.Addr{}, 0, false
	}
	if r.kind == kindForwarded {
		node, ok := forwardedFor(elem, buf)
		if !ok {
			return netip.Addr{}, 0, false
		}
		return parseNode(node, true)
	}
	return parseNode(trimOWS(elem), false)
}

func (r *Resolver) keyed(res Result) Result {
	res.Key = filters.KeyOf(res.Addr, r.ipv6Prefix)
	return res
}

// ForwardedFor returns the X-Forwarded-For to send upstream for a request
// resolved to res from start with headers h: the client first, then the
// trusted hops the walk stepped over (in header order), then start. Entries
// left of the client are the client's own claims and are dropped. When the
// client is start itself (res.Source is not SourceHeader), it is just start.
// Addresses are written without ports, IPv6 without brackets.
func (r *Resolver) ForwardedFor(res Result, start netip.Addr, h http.Header) string {
	start = start.WithZone("").Unmap()
	var out [256]byte
	b := out[:0]
	if res.Source == filters.SourceHeader {
		// Walk again rather than trust res: h decides what is forwarded.
		if got, err := r.Resolve(netip.AddrPortFrom(start, 0), h); err == nil && got.Source == filters.SourceHeader {
			b = got.Addr.AppendTo(b)
			b = r.appendHops(b, h[r.key], got.Hops)
			b = append(b, ", "...)
		}
	}
	b = start.AppendTo(b)
	return string(b)
}

// appendHops appends ", hop" for the n rightmost entries of the list header
// lines, in header order. Resolve has checked they are trusted addresses.
func (r *Resolver) appendHops(b []byte, lines []string, n int) []byte {
	var (
		arr [16]netip.Addr
		buf [maxNodeLen]byte
	)
	hops := arr[:0]
	it := newEntries(lines, r.kind == kindForwarded)
	for range n {
		elem, _, malformed := it.next()
		a, _, _ := r.entry(elem, malformed, &buf)
		hops = append(hops, a)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		b = append(b, ", "...)
		b = hops[i].AppendTo(b)
	}
	return b
}

// ResolveRequest resolves the client of req. The start address comes from
// the connection stored by ConnContext when there is one (ConnAddrs), else
// from req.RemoteAddr. When the start came from a PROXY header and is the
// client, Source is SourceProxy. peer is the TCP peer, for logs.
func (r *Resolver) ResolveRequest(req *http.Request) (res Result, peer netip.AddrPort, err error) {
	var start netip.AddrPort
	viaProxy := false
	if c := ConnFromContext(req.Context()); c != nil {
		peer, start, viaProxy = ConnAddrs(c)
	} else {
		start, _ = netip.ParseAddrPort(req.RemoteAddr)
		peer = start
	}
	res, err = r.Resolve(start, req.Header)
	if err == nil && viaProxy && res.Source == filters.SourcePeer {
		res.Source = filters.SourceProxy
	}
	return res, peer, err
}
