// Package ipparse finds the client address of a request, which a client must
// never be able to choose: PROXY protocol on the listener, forwarding headers
// behind trusted proxies, and the client key IPv6 addresses collapse to.
//
// # The trust model
//
// Every address a request carries was written by someone. The TCP peer's
// address was written by the network: the client cannot choose it (short of
// owning the route). Everything else, a PROXY header or a forwarding header,
// is a claim by whoever sent it, and is worth exactly as much as that sender
// is trusted. So the rule starts from the one fact, the peer, and believes a
// claim only when it comes from a peer the operator listed:
//
//  1. The start address is the TCP peer, or, when the peer is in
//     proxy_protocol.trusted and sent a PROXY header with an address, that
//     address. A PROXY header from any other peer gets the connection closed:
//     accepting it would let any client name its own address before HTTP even
//     begins, and a peer that is not a load balancer has no business sending
//     one. A malformed header, or a half-sent one at header_timeout, is closed
//     too; nothing is guessed.
//  2. If the start address is not in trusted_proxies, it is the client and
//     the forwarding headers are ignored, whatever they say.
//  3. Otherwise the forwarding header is read from the right. Each proxy
//     appends the address of the peer it saw, so the rightmost entry was
//     written by the trusted start, the next one by the proxy that entry
//     names if that proxy is trusted too, and so on. The first entry that is
//     not a trusted proxy was written by a trusted proxy about its own peer:
//     that is the client. Everything to its left was written by the client
//     or by proxies nobody vouches for, so it is never read: taking the
//     leftmost entry, as many frameworks do, lets any client choose its
//     address by sending "X-Forwarded-For: 1.2.3.4". If every entry is
//     trusted, the leftmost is the client (a request from inside). An entry
//     that is not an address (garbage, a hostname, "unknown", an obfuscated
//     "_id", an empty element) ends the walk at the last address reached: the
//     walk never goes left of what it cannot read.
//  4. A single-address header (X-Real-IP, CF-Connecting-IP, ...) is believed
//     when the start is trusted, and an invalid one leaves the start.
//  5. The walk is linear and bounded: at most max_hops entries and
//     max_header_bytes bytes, beyond which the request is refused (431), so a
//     huge header costs nothing and never resolves to a guess.
//
// Addresses are netip values throughout: IPv4-mapped IPv6 becomes IPv4, zones
// are dropped, NAT64 addresses stay IPv6. For limits and bans an IPv6 client
// is keyed by its ipv6_prefix (default /64), since one subscriber holds a
// whole /64.
//
// # Use
//
// Wrap the listener with ProxyProtocol.Listen and set http.Server.ConnContext
// to ConnContext. In the handler call Resolver.ResolveRequest (or ConnAddrs
// and Resolver.Resolve), answering 431 when the error is ErrTooManyHops or
// ErrHeaderTooLarge; Resolver.ForwardedFor gives the X-Forwarded-For to send
// upstream. Nothing in the accept loop may wait for a PROXY header: ConnAddrs
// never does, and a Listen connection's Raw gives the TCP socket. A check
// that must see the client before any HTTP or TLS byte is read (a ban) calls
// ReadHeader from a Read wrapper, on the connection's own goroutine.
package ipparse
