package ipparse

import (
	"errors"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// The fuzz targets check the resolver against what the rule promises,
// whatever the header holds:
//
//   - the client is the start address or an address that literally appears
//     in the header (after normalisation: brackets, ports, zones, IPv4-mapped
//     forms, quoted-pairs);
//   - a trusted client is only ever reached through a chain of trusted
//     entries that ends at the leftmost entry or at one that is not an
//     address; an untrusted start is always the client;
//   - errors are only the two 431 errors, and the walk never examines more
//     than MaxHops entries;
//   - for X-Forwarded-For, and for Forwarded without quotes, the answer
//     equals that of a naive reference written with strings.Split and
//     netip's parsers.
//
// Seeds are in testdata/fuzz/<Target>/ and below.

var fuzzSeeds = []string{
	"",
	"203.0.113.7",
	"6.6.6.6, 203.0.113.7, 10.0.0.2",
	"10.0.0.3, 10.0.0.2",
	"203.0.113.7, junk, 10.0.0.3",
	"203.0.113.7,,10.0.0.2",
	"[2001:db8::7]:443, 10.0.0.2:80",
	"::ffff:10.0.0.2, fe80::1%eth0",
	"64:ff9b::203.0.113.7\n10.0.0.2",
	"unknown, _hidden, 10.0.0.2",
	`for=203.0.113.7;proto=https, for=10.0.0.2`,
	`for="[2001:db8:cafe::17]:4711", For=unknown`,
	`for="6.6.6.6, for=7.7.7.7", for=10.0.0.2`,
	`for="203.0.113.7, for=10.0.0.2`,
	`for="203.0.113.\7";by=x, for=_p;for=1.2.3.4`,
	`for=10.0.0.2\", FOR = "[::ffff:10.0.0.3]:_x"`,
}

var fuzzTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
	netip.MustParsePrefix("::ffff:172.16.0.0/108"),
}

func fuzzResolver(t testing.TB, header string) *Resolver {
	r, err := NewResolver(Config{TrustedProxies: fuzzTrusted, Header: header, MaxHops: 8, MaxHeaderBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func FuzzXForwardedFor(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	r := fuzzResolver(f, "X-Forwarded-For")
	start := netip.MustParseAddrPort("10.0.0.1:1")
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{"X-Forwarded-For": strings.Split(s, "\n")}
		res := checkResolve(t, r, start, h)
		want, walked := refXFF(r, start.Addr(), h["X-Forwarded-For"])
		againstReference(t, r, s, res, h["X-Forwarded-For"], want, walked)
	})
}

func FuzzForwarded(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	r := fuzzResolver(f, "Forwarded")
	start := netip.MustParseAddrPort("10.0.0.1:1")
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{"Forwarded": strings.Split(s, "\n")}
		res := checkResolve(t, r, start, h)
		if strings.ContainsAny(s, "\"\\") {
			return // quoting: invariants only
		}
		want, walked := refForwarded(r, start.Addr(), h["Forwarded"])
		againstReference(t, r, s, res, h["Forwarded"], want, walked)
	})
}

// againstReference holds the resolver's answer for the header lines of
// input s to the naive reference walk's: the same client, ErrTooManyHops
// where the reference walks past the bound, and ErrHeaderTooLarge only for
// a header really over the byte bound (which the reference does not have).
func againstReference(t *testing.T, r *Resolver, s string, res checked, lines []string, want netip.Addr, walked int) {
	t.Helper()
	switch {
	case res.err == ErrHeaderTooLarge:
		if n := len(strings.Join(lines, ", ")); n <= r.maxHeaderBytes {
			t.Fatalf("%q (%d bytes joined): refused as larger than %d", s, n, r.maxHeaderBytes)
		}
	case walked > r.maxHops:
		if res.err != ErrTooManyHops {
			t.Fatalf("%q: the reference walks %d entries, resolver gave %v, %v", s, walked, res.Addr, res.err)
		}
	case res.err != nil || res.Addr != want:
		t.Fatalf("%q: resolver %v (%v), reference %v", s, res.Addr, res.err, want)
	}
}

var fuzzHeaders = []string{"X-Forwarded-For", "Forwarded", "X-Real-IP", "CF-Connecting-IP"}

func FuzzResolve(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add("10.0.0.1:1", byte(i), s)
		f.Add("[::ffff:10.0.0.1]:2", byte(i), s)
		f.Add("203.0.113.9:3", byte(i), s)
		f.Add("[2001:db8:ffff::1%eth0]:4", byte(i), s)
	}
	f.Add("", byte(0), "1.2.3.4")
	var rs []*Resolver
	for _, name := range fuzzHeaders {
		rs = append(rs, fuzzResolver(f, name))
	}
	f.Fuzz(func(t *testing.T, startText string, which byte, s string) {
		r := rs[int(which)%len(rs)]
		start, err := netip.ParseAddrPort(startText)
		if err != nil {
			if _, err := r.Resolve(start, nil); !errors.Is(err, ErrNoStart) {
				t.Fatalf("invalid start: %v", err)
			}
			return
		}
		h := http.Header{r.Header(): strings.Split(s, "\n")}
		res := checkResolve(t, r, start, h)
		if res.err != nil {
			return
		}
		xff := r.ForwardedFor(res.Result, start.Addr(), h)
		if !strings.HasPrefix(xff, res.Addr.String()) || !strings.HasSuffix(xff, start.Addr().WithZone("").Unmap().String()) {
			t.Fatalf("ForwardedFor %q for client %s, start %s", xff, res.Addr, start)
		}
		for _, e := range strings.Split(xff, ", ") {
			a, err := netip.ParseAddr(e)
			if err != nil || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("ForwardedFor %q has entry %q", xff, e)
			}
		}
	})
}

type checked struct {
	Result
	err error
}

// checkResolve resolves and checks the invariants that hold for every
// header kind.
func checkResolve(t *testing.T, r *Resolver, start netip.AddrPort, h http.Header) checked {
	t.Helper()
	res, err := r.Resolve(start, h)
	sa := start.Addr().WithZone("").Unmap()
	if err != nil {
		if err != ErrTooManyHops && err != ErrHeaderTooLarge {
			t.Fatalf("unexpected error %v", err)
		}
		if !r.Trusted(sa) {
			t.Fatalf("error %v for an untrusted start %s", err, start)
		}
		return checked{err: err}
	}
	if !res.Addr.IsValid() || res.Addr.Zone() != "" || res.Addr.Is4In6() {
		t.Fatalf("client %v not normalised", res.Addr)
	}
	if res.Key != filters.KeyOf(res.Addr, r.ipv6Prefix) {
		t.Fatalf("key %s for %s", res.Key, res.Addr)
	}
	if !r.Trusted(sa) {
		if res.Addr != sa || res.Source != filters.SourcePeer {
			t.Fatalf("untrusted start %s resolved to %s (%s)", start, res.Addr, res.Source)
		}
		return checked{Result: res}
	}
	if res.Source == filters.SourcePeer {
		if res.Addr != sa || res.Port != start.Port() {
			t.Fatalf("source peer but client %s, start %s", res.Addr, start)
		}
		return checked{Result: res}
	}
	if !literalAddrs(strings.Join(h[r.Header()], "\n"))[res.Addr] {
		t.Fatalf("client %s does not appear in %q", res.Addr, h[r.Header()])
	}
	if r.kind != kindSingle {
		checkWalk(t, r, h[r.Header()], res)
	}
	return checked{Result: res}
}

// checkWalk replays the entries right to left and checks that the client is
// the first untrusted address, after Hops trusted ones; or, when trusted,
// that nothing usable is to its left.
func checkWalk(t *testing.T, r *Resolver, lines []string, res Result) {
	t.Helper()
	var buf [maxNodeLen]byte
	it := newEntries(lines, r.kind == kindForwarded)
	var seq []netip.Addr // parsed entries from the right, invalid for non-addresses
	for {
		elem, more, malformed := it.next()
		if !more {
			break
		}
		a, _, _ := r.entry(elem, malformed, &buf)
		seq = append(seq, a)
	}
	if res.Hops >= len(seq) || seq[res.Hops] != res.Addr {
		t.Fatalf("client %s is not entry %d from the right of %v", res.Addr, res.Hops, seq)
	}
	for _, a := range seq[:res.Hops] {
		if !a.IsValid() || !r.Trusted(a) {
			t.Fatalf("walk stepped over %v to reach %s (%v)", a, res.Addr, seq)
		}
	}
	if r.Trusted(res.Addr) && res.Hops+1 < len(seq) && seq[res.Hops+1].IsValid() {
		t.Fatalf("trusted client %s with the address %s to its left (%v)", res.Addr, seq[res.Hops+1], seq)
	}
	if res.Hops+1 > r.maxHops {
		t.Fatalf("walked %d entries, max %d", res.Hops+1, r.maxHops)
	}
}

// literalAddrs returns every address written in s: runs of address
// characters (backslashes of quoted-pairs removed), parsed as an address, or
// as one with a ":port" suffix, normalised.
func literalAddrs(s string) map[netip.Addr]bool {
	s = strings.ReplaceAll(s, `\`, "")
	out := map[netip.Addr]bool{}
	for _, run := range addrRun.FindAllString(s, -1) {
		for _, cand := range []string{run, run[:max(strings.LastIndexByte(run, ':'), 0)]} {
			if a, err := netip.ParseAddr(cand); err == nil {
				out[a.WithZone("").Unmap()] = true
			}
		}
	}
	return out
}

var addrRun = regexp.MustCompile(`[0-9A-Za-z.:%_~-]+`)

// refXFF is the rule for X-Forwarded-For written the obvious way. It returns
// the client and the number of entries the walk examines.
func refXFF(r *Resolver, start netip.Addr, lines []string) (netip.Addr, int) {
	var elems []string
	for _, l := range lines {
		if strings.Trim(l, " \t") != "" {
			elems = append(elems, strings.Split(l, ",")...)
		}
	}
	return refWalk(r, start, elems, func(e string) (netip.Addr, bool) {
		return refNode(strings.Trim(e, " \t"))
	})
}

// refForwarded is the rule for Forwarded without quoted strings.
func refForwarded(r *Resolver, start netip.Addr, lines []string) (netip.Addr, int) {
	var elems []string
	for _, l := range lines {
		if strings.Trim(l, " \t") != "" {
			elems = append(elems, strings.Split(l, ",")...)
		}
	}
	return refWalk(r, start, elems, func(e string) (netip.Addr, bool) {
		var fors []string
		for _, pair := range strings.Split(e, ";") {
			if pair = strings.Trim(pair, " \t"); pair == "" {
				continue
			}
			name, value, ok := strings.Cut(pair, "=")
			if name = strings.Trim(name, " \t"); !ok || !tokenRE.MatchString(name) {
				return netip.Addr{}, false
			}
			if strings.EqualFold(name, "for") {
				fors = append(fors, strings.Trim(value, " \t"))
			}
		}
		if len(fors) != 1 {
			return netip.Addr{}, false
		}
		node := fors[0]
		if i := strings.LastIndex(node, ":_"); i > 0 && obfRE.MatchString(node[i+1:]) {
			if a, ok := refNode(node[:i]); ok && (a.Is4() || strings.HasPrefix(node, "[")) {
				return a, true
			}
			return netip.Addr{}, false
		}
		return refNode(node)
	})
}

var (
	tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	obfRE   = regexp.MustCompile(`^_[A-Za-z0-9._-]+$`)
	zoneRE  = regexp.MustCompile(`^[A-Za-z0-9._~%-]+$`)
)

func refWalk(r *Resolver, start netip.Addr, elems []string, parse func(string) (netip.Addr, bool)) (netip.Addr, int) {
	client, walked := start, 0
	for i := len(elems) - 1; i >= 0; i-- {
		walked++
		a, ok := parse(elems[i])
		if !ok {
			break
		}
		client = a
		if !r.Trusted(a) {
			break
		}
	}
	return client, walked
}

// refNode parses an address form with netip's own parsers.
func refNode(s string) (netip.Addr, bool) {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if b, err := netip.ParseAddr(s); err == nil {
		a = b
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if b, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && b.Is6() {
			a = b
		}
	}
	if !a.IsValid() || len(s) > maxNodeLen || a.Zone() != "" && !zoneRE.MatchString(a.Zone()) {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}
