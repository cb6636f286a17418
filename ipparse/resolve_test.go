package ipparse

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// testTrusted are the trusted_proxies of most tests. The IPv4-mapped range
// must behave as 172.16.0.0/12.
var testTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
	netip.MustParsePrefix("::ffff:172.16.0.0/108"),
}

func newTestResolver(t testing.TB, header string, mod ...func(*Config)) *Resolver {
	t.Helper()
	c := Config{TrustedProxies: testTrusted, Header: header}
	for _, m := range mod {
		m(&c)
	}
	r, err := NewResolver(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rcase is one row of a rule table: the start address, the lines of the
// configured header (nil: absent), and the expected client.
type rcase struct {
	name  string
	start string // default 10.0.0.1:1234, a trusted proxy
	lines []string
	want  string // address; "" when err is set
	port  uint16
	src   filters.Source
	hops  int
	err   error
}

func runCases(t *testing.T, r *Resolver, cases []rcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := tc.start
			if start == "" {
				start = "10.0.0.1:1234"
			}
			h := http.Header{}
			if tc.lines != nil {
				h[r.Header()] = tc.lines
			}
			got, err := r.Resolve(netip.MustParseAddrPort(start), h)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Resolve(%s, %q) = %+v, %v; want error %v", start, tc.lines, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%s, %q): %v", start, tc.lines, err)
			}
			want := netip.MustParseAddr(tc.want)
			if got.Addr != want || got.Port != tc.port || got.Source != tc.src || got.Hops != tc.hops {
				t.Fatalf("Resolve(%s, %q) = %s port %d source %s hops %d; want %s port %d source %s hops %d",
					start, tc.lines, got.Addr, got.Port, got.Source, got.Hops, want, tc.port, tc.src, tc.hops)
			}
			if got.Key != filters.KeyOf(want, 64) {
				t.Fatalf("key %s, want %s", got.Key, filters.KeyOf(want, 64))
			}
		})
	}
}

const (
	peer   = filters.SourcePeer
	header = filters.SourceHeader
)

// Rule 2: a start address outside trusted_proxies is the client; headers are
// ignored, even huge or broken ones.
func TestRule2UntrustedStartIgnoresHeaders(t *testing.T) {
	for _, name := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		t.Run(name, func(t *testing.T) {
			r := newTestResolver(t, name, func(c *Config) { c.MaxHops = 2; c.MaxHeaderBytes = 16 })
			runCases(t, r, []rcase{
				{name: "no header", start: "203.0.113.9:5000", want: "203.0.113.9", port: 5000, src: peer},
				{name: "spoof", start: "203.0.113.9:5000", lines: []string{"1.2.3.4"}, want: "203.0.113.9", port: 5000, src: peer},
				{name: "spoof forwarded", start: "203.0.113.9:5000", lines: []string{"for=1.2.3.4"}, want: "203.0.113.9", port: 5000, src: peer},
				{name: "over both bounds", start: "203.0.113.9:5000", lines: []string{strings.Repeat("10.0.0.2, ", 100)}, want: "203.0.113.9", port: 5000, src: peer},
				{name: "ipv6 peer", start: "[2001:db8::9]:443", lines: []string{"1.2.3.4"}, want: "2001:db8::9", port: 443, src: peer},
				{name: "mapped peer", start: "[::ffff:203.0.113.9]:80", lines: []string{"1.2.3.4"}, want: "203.0.113.9", port: 80, src: peer},
				{name: "zoned peer", start: "[fe80::1%eth0]:80", lines: []string{"1.2.3.4"}, want: "fe80::1", port: 80, src: peer},
			})
		})
	}
}

// Rule 3, X-Forwarded-For: walk from the right, step over trusted hops, the
// first untrusted address is the client; all trusted: the leftmost; garbage
// stops the walk at the last address reached.
func TestRule3XForwardedFor(t *testing.T) {
	r := newTestResolver(t, "X-Forwarded-For")
	runCases(t, r, []rcase{
		{name: "absent", want: "10.0.0.1", port: 1234, src: peer},
		{name: "empty line", lines: []string{""}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "blank line", lines: []string{" \t "}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "one entry", lines: []string{"203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "spoofed leftmost ignored", lines: []string{"6.6.6.6, 203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "step over trusted hops", lines: []string{"6.6.6.6, 203.0.113.7, 192.168.1.1, 10.0.0.2"}, want: "203.0.113.7", src: header, hops: 2},
		{name: "all trusted: leftmost", lines: []string{"10.0.0.3, 192.168.0.7, 10.0.0.2"}, want: "10.0.0.3", src: header, hops: 2},
		{name: "garbage stops at hop to its right", lines: []string{"203.0.113.7, garbage, 10.0.0.3, 10.0.0.2"}, want: "10.0.0.3", src: header, hops: 1},
		{name: "garbage rightmost: start", lines: []string{"203.0.113.7, 10.0.0.2, garbage"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "unknown", lines: []string{"203.0.113.7, unknown"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "obfuscated", lines: []string{"203.0.113.7, _hidden, 10.0.0.2"}, want: "10.0.0.2", src: header},
		{name: "hostname", lines: []string{"203.0.113.7, proxy.example.com"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "hex-only hostname", lines: []string{"203.0.113.7, cafe.be"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "empty element", lines: []string{"203.0.113.7,,10.0.0.2"}, want: "10.0.0.2", src: header},
		{name: "trailing comma", lines: []string{"203.0.113.7, "}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "leading comma", lines: []string{", 10.0.0.2"}, want: "10.0.0.2", src: header},
		{name: "lines joined in order", lines: []string{"6.6.6.6, 203.0.113.7", "198.51.100.1, 10.0.0.2"}, want: "198.51.100.1", src: header, hops: 1},
		{name: "client on an earlier line", lines: []string{"6.6.6.6, 203.0.113.7", "10.0.0.3, 10.0.0.2"}, want: "203.0.113.7", src: header, hops: 2},
		{name: "empty line between", lines: []string{"203.0.113.7", "", "10.0.0.2"}, want: "203.0.113.7", src: header, hops: 1},
		{name: "garbage line stops", lines: []string{"203.0.113.7", "nonsense", "10.0.0.2"}, want: "10.0.0.2", src: header},
		{name: "space inside entry", lines: []string{"203.0.113.7 198.51.100.1"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "quoted entry", lines: []string{`"203.0.113.7"`}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "tabs", lines: []string{"\t203.0.113.7\t,\t10.0.0.2 "}, want: "203.0.113.7", src: header, hops: 1},
		{name: "trusted ipv6 hop", lines: []string{"203.0.113.7, 2001:db8:ffff::5"}, want: "203.0.113.7", src: header, hops: 1},
		{name: "ipv6 start", start: "[2001:db8:ffff::1]:443", lines: []string{"2001:db8:1::7"}, want: "2001:db8:1::7", src: header},
		{name: "mapped start is trusted", start: "[::ffff:10.0.0.1]:80", lines: []string{"203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "start in mapped range", start: "172.16.5.5:80", lines: []string{"203.0.113.7"}, want: "203.0.113.7", src: header},
	})
}

// Rule 3, Forwarded (RFC 7239): the for= parameter of each element, quoted or
// not, names case-insensitive; unknown and obfuscated nodes stop the walk.
func TestRule3Forwarded(t *testing.T) {
	r := newTestResolver(t, "Forwarded")
	runCases(t, r, []rcase{
		{name: "absent", want: "10.0.0.1", port: 1234, src: peer},
		{name: "token", lines: []string{"for=203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "spoofed leftmost ignored", lines: []string{"for=6.6.6.6, for=203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "step over trusted", lines: []string{"for=203.0.113.7;proto=https, for=10.0.0.2;by=10.0.0.1"}, want: "203.0.113.7", src: header, hops: 1},
		{name: "all trusted", lines: []string{"for=10.0.0.3, for=10.0.0.2"}, want: "10.0.0.3", src: header, hops: 1},
		{name: "quoted ipv6 with port", lines: []string{`For="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17", port: 4711, src: header},
		{name: "upper case name", lines: []string{"FOR=203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "quoted ipv4 with port", lines: []string{`for="203.0.113.7:8080"`}, want: "203.0.113.7", port: 8080, src: header},
		{name: "unquoted ipv4 with port", lines: []string{`for=203.0.113.7:8080`}, want: "203.0.113.7", port: 8080, src: header},
		{name: "unquoted brackets", lines: []string{`for=[2001:db8::7]`}, want: "2001:db8::7", src: header},
		{name: "obfuscated port", lines: []string{`for="[2001:db8::7]:_p1"`}, want: "2001:db8::7", src: header},
		{name: "for after other params", lines: []string{`proto=https;by=10.0.0.1;for=203.0.113.7`}, want: "203.0.113.7", src: header},
		{name: "unknown stops", lines: []string{"for=203.0.113.7, for=unknown"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "unknown left of trusted", lines: []string{"for=unknown, for=10.0.0.2"}, want: "10.0.0.2", src: header},
		{name: "obfuscated node", lines: []string{"for=203.0.113.7, for=_hidden, for=10.0.0.2"}, want: "10.0.0.2", src: header},
		{name: "no for", lines: []string{"for=203.0.113.7, proto=https;by=10.0.0.2"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "two for", lines: []string{"for=203.0.113.7;for=10.0.0.2"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "comma in quotes", lines: []string{`for="6.6.6.6, for=7.7.7.7", for=203.0.113.7`}, want: "203.0.113.7", src: header},
		{name: "quoted comma reached", lines: []string{`for="6.6.6.6, for=7.7.7.7", for=10.0.0.2`}, want: "10.0.0.2", src: header},
		{name: "client's unbalanced quote", lines: []string{`for="6.6.6.6, for=203.0.113.7`}, want: "203.0.113.7", src: header},
		{name: "unbalanced quote reached", lines: []string{`for="203.0.113.7, for=10.0.0.2`}, want: "10.0.0.2", src: header},
		{name: "escaped quote outside", lines: []string{`for=203.0.113.7\", for=10.0.0.2`}, want: "10.0.0.2", src: header},
		{name: "quoted-pair", lines: []string{`for="203.0.113.\7"`}, want: "203.0.113.7", src: header},
		{name: "escaped closing quote", lines: []string{`for="203.0.113.7\"`}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "quote inside token", lines: []string{`for=203.0"113.7"`}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "semicolon in quotes", lines: []string{`for=203.0.113.7;ext="a;for=6.6.6.6"`}, want: "203.0.113.7", src: header},
		{name: "empty pairs", lines: []string{"for=203.0.113.7;;proto=http"}, want: "203.0.113.7", src: header},
		{name: "empty element", lines: []string{"for=203.0.113.7, , for=10.0.0.2"}, want: "10.0.0.2", src: header},
		{name: "pair without =", lines: []string{"for"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "empty value", lines: []string{"for="}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "empty quoted value", lines: []string{`for=""`}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "bad name", lines: []string{"f(r=203.0.113.7"}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "ows around =", lines: []string{"for = 203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "lines joined in order", lines: []string{"for=6.6.6.6", "for=203.0.113.7;proto=http", "for=10.0.0.2"}, want: "203.0.113.7", src: header, hops: 1},
	})
}

// Rule 4: single-value headers, used only from a trusted start; an absent,
// repeated or invalid value leaves the start.
func TestRule4SingleValueHeaders(t *testing.T) {
	for _, name := range []string{"X-Real-IP", "cf-connecting-ip", "True-Client-IP", "X-Client-Address"} {
		t.Run(name, func(t *testing.T) {
			r := newTestResolver(t, name)
			runCases(t, r, []rcase{
				{name: "used from trusted start", lines: []string{"203.0.113.7"}, want: "203.0.113.7", src: header},
				{name: "ignored from untrusted start", start: "198.51.100.1:9", lines: []string{"203.0.113.7"}, want: "198.51.100.1", port: 9, src: peer},
				{name: "absent", want: "10.0.0.1", port: 1234, src: peer},
				{name: "empty", lines: []string{""}, want: "10.0.0.1", port: 1234, src: peer},
				{name: "invalid", lines: []string{"not-an-ip"}, want: "10.0.0.1", port: 1234, src: peer},
				{name: "a list is invalid", lines: []string{"203.0.113.7, 198.51.100.1"}, want: "10.0.0.1", port: 1234, src: peer},
				{name: "two lines are invalid", lines: []string{"203.0.113.7", "198.51.100.1"}, want: "10.0.0.1", port: 1234, src: peer},
				{name: "ows", lines: []string{" 203.0.113.7 "}, want: "203.0.113.7", src: header},
				{name: "ipv6 with port", lines: []string{"[2001:db8::7]:443"}, want: "2001:db8::7", port: 443, src: header},
				{name: "mapped", lines: []string{"::ffff:203.0.113.7"}, want: "203.0.113.7", src: header},
				{name: "trusted value is used", lines: []string{"10.0.0.9"}, want: "10.0.0.9", src: header},
			})
		})
	}
}

// Rule 5: the forms of an address.
func TestRule5Forms(t *testing.T) {
	r := newTestResolver(t, "X-Forwarded-For")
	bad := func(name, entry string) rcase {
		return rcase{name: name, lines: []string{entry}, want: "10.0.0.1", port: 1234, src: peer}
	}
	good := func(name, entry, want string, port uint16) rcase {
		return rcase{name: name, lines: []string{entry}, want: want, port: port, src: header}
	}
	runCases(t, r, []rcase{
		good("ipv4", "203.0.113.7", "203.0.113.7", 0),
		good("ipv4 port", "203.0.113.7:5678", "203.0.113.7", 5678),
		good("ipv4 port 0", "203.0.113.7:0", "203.0.113.7", 0),
		good("ipv4 port leading zeros", "203.0.113.7:00080", "203.0.113.7", 80),
		good("ipv6 bare", "2001:db8::7", "2001:db8::7", 0),
		good("ipv6 upper case", "2001:DB8::A", "2001:db8::a", 0),
		good("ipv6 brackets", "[2001:db8::7]", "2001:db8::7", 0),
		good("ipv6 brackets port", "[2001:db8::7]:443", "2001:db8::7", 443),
		good("mapped becomes ipv4", "::ffff:203.0.113.7", "203.0.113.7", 0),
		good("mapped hex", "::ffff:cb00:7107", "203.0.113.7", 0),
		good("mapped in brackets with port", "[::ffff:203.0.113.7]:80", "203.0.113.7", 80),
		good("zone stripped", "fe80::1%eth0", "fe80::1", 0),
		good("zone in brackets", "[fe80::1%eth0]:80", "fe80::1", 80),
		good("percent-encoded zone", "[fe80::1%25eth0]:80", "fe80::1", 80),
		good("nat64 stays ipv6", "64:ff9b::203.0.113.7", "64:ff9b::cb00:7107", 0),
		good("ipv4-compatible stays ipv6", "::203.0.113.7", "::cb00:7107", 0),
		{name: "mapped trusted hop stepped over", lines: []string{"203.0.113.7, ::ffff:10.0.0.2"}, want: "203.0.113.7", src: header, hops: 1},
		{name: "zoned trusted hop stepped over", lines: []string{"203.0.113.7, 2001:db8:ffff::2%eth0"}, want: "203.0.113.7", src: header, hops: 1},
		bad("port too large", "203.0.113.7:65536"),
		bad("empty port", "203.0.113.7:"),
		bad("signed port", "203.0.113.7:+80"),
		bad("ipv4 in brackets", "[203.0.113.7]"),
		bad("ipv4 in brackets port", "[203.0.113.7]:80"),
		bad("unclosed bracket", "[2001:db8::7"),
		bad("junk after bracket", "[2001:db8::7]x"),
		bad("leading zero octet", "203.0.113.07"),
		bad("ipv4 zone", "203.0.113.7%eth0"),
		bad("empty zone", "fe80::1%"),
		bad("zone with bad bytes", "fe80::1%a]b"),
		bad("ipv6 too many groups", "1:2:3:4:5:6:7:8:9"),
		bad("obfuscated port outside Forwarded", "203.0.113.7:_p"),
		bad("ipv4 five octets", "1.2.3.4.5"),
		bad("unicode", "２０３.0.113.7"),
		bad("too long", strings.Repeat("0", 200)),
	})
}

// Rule 6: bounded walk; beyond the bounds an error, never a guess.
func TestRule6Bounds(t *testing.T) {
	r := newTestResolver(t, "X-Forwarded-For", func(c *Config) { c.MaxHops = 3; c.MaxHeaderBytes = 64 })
	runCases(t, r, []rcase{
		{name: "client at the bound", lines: []string{"203.0.113.7, 10.0.0.3, 10.0.0.2"}, want: "203.0.113.7", src: header, hops: 2},
		{name: "all trusted at the bound", lines: []string{"10.0.0.4, 10.0.0.3, 10.0.0.2"}, want: "10.0.0.4", src: header, hops: 2},
		{name: "one hop too many", lines: []string{"203.0.113.7, 10.0.0.4, 10.0.0.3, 10.0.0.2"}, err: ErrTooManyHops},
		{name: "all trusted beyond", lines: []string{"10.0.0.5, 10.0.0.4, 10.0.0.3, 10.0.0.2"}, err: ErrTooManyHops},
		{name: "hops across lines", lines: []string{"203.0.113.7", "10.0.0.4", "10.0.0.3, 10.0.0.2"}, err: ErrTooManyHops},
		{name: "entries left of the client do not count", lines: []string{"1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "garbage before the bound", lines: []string{"1.1.1.1, x, 10.0.0.3, 10.0.0.2"}, want: "10.0.0.3", src: header, hops: 1},
		{name: "bytes at the bound", lines: []string{strings.Repeat(" ", 64-len("203.0.113.7")) + "203.0.113.7"}, want: "203.0.113.7", src: header},
		{name: "bytes beyond", lines: []string{strings.Repeat(" ", 65-len("203.0.113.7")) + "203.0.113.7"}, err: ErrHeaderTooLarge},
		{name: "lines joined at the bound", lines: []string{strings.Repeat("1", 31), strings.Repeat("2", 31)}, want: "10.0.0.1", port: 1234, src: peer},
		{name: "lines joined beyond", lines: []string{strings.Repeat("1", 32), strings.Repeat("2", 31)}, err: ErrHeaderTooLarge},
		{name: "33 empty lines fit", lines: make([]string, 33), want: "10.0.0.1", port: 1234, src: peer},
		{name: "34 empty lines count", lines: make([]string, 34), err: ErrHeaderTooLarge},
	})

	fwd := newTestResolver(t, "Forwarded", func(c *Config) { c.MaxHops = 2 })
	runCases(t, fwd, []rcase{
		{name: "forwarded within", lines: []string{"for=203.0.113.7, for=10.0.0.2"}, want: "203.0.113.7", src: header, hops: 1},
		{name: "forwarded beyond", lines: []string{"for=203.0.113.7, for=10.0.0.3, for=10.0.0.2"}, err: ErrTooManyHops},
	})

	single := newTestResolver(t, "X-Real-IP", func(c *Config) { c.MaxHeaderBytes = 8 })
	runCases(t, single, []rcase{
		{name: "single too large", lines: []string{"203.0.113.7"}, err: ErrHeaderTooLarge},
	})

	// Defaults: 32 hops, 8KiB.
	def := newTestResolver(t, "X-Forwarded-For")
	chain := func(n int) string {
		s := "203.0.113.7"
		for range n {
			s += ", 10.0.0.2"
		}
		return s
	}
	runCases(t, def, []rcase{
		{name: "default 31 trusted hops", lines: []string{chain(31)}, want: "203.0.113.7", src: header, hops: 31},
		{name: "default 32 trusted hops", lines: []string{chain(32)}, err: ErrTooManyHops},
		{name: "default 8KiB", lines: []string{strings.Repeat("1.1.1.1, ", 1000) + "203.0.113.7"}, err: ErrHeaderTooLarge},
	})
}

func TestResolveNoStart(t *testing.T) {
	r := newTestResolver(t, "")
	if _, err := r.Resolve(netip.AddrPort{}, nil); !errors.Is(err, ErrNoStart) {
		t.Fatalf("zero start: err %v, want ErrNoStart", err)
	}
}

func TestHeaderNameDefaultAndCase(t *testing.T) {
	for in, want := range map[string]string{"": "X-Forwarded-For", "x-forwarded-for": "X-Forwarded-For", "FORWARDED": "Forwarded", "x-real-ip": "X-Real-Ip"} {
		if got := newTestResolver(t, in).Header(); got != want {
			t.Errorf("Header() for %q = %q, want %q", in, got, want)
		}
	}
	// A lower-case config name reads the canonical request header.
	r := newTestResolver(t, "x-forwarded-for")
	h := http.Header{}
	h.Add("x-forwarded-for", "203.0.113.7")
	res, err := r.Resolve(netip.MustParseAddrPort("10.0.0.1:1"), h)
	if err != nil || res.Addr != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("got %v, %v", res.Addr, err)
	}
	// "forwarded" is the RFC 7239 list, not a single-value header.
	r = newTestResolver(t, "forwarded")
	h = http.Header{"Forwarded": {"for=6.6.6.6, for=203.0.113.7"}}
	if res, _ := r.Resolve(netip.MustParseAddrPort("10.0.0.1:1"), h); res.Addr != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("forwarded: got %v", res.Addr)
	}
}

func TestTrusted(t *testing.T) {
	r := newTestResolver(t, "")
	for a, want := range map[string]bool{
		"10.1.2.3":           true,
		"::ffff:10.1.2.3":    true,
		"172.16.0.1":         true, // via the IPv4-mapped prefix
		"172.32.0.1":         false,
		"2001:db8:ffff::1":   true,
		"2001:db8:ffff::1%x": true,
		"2001:db8:fffe::1":   false,
		"11.0.0.1":           false,
		"64:ff9b::a00:1":     false, // NAT64 of 10.0.0.1 is not 10.0.0.1
	} {
		if got := r.Trusted(netip.MustParseAddr(a)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", a, got, want)
		}
	}
	if r.Trusted(netip.Addr{}) {
		t.Error("the zero address is trusted")
	}
}

func TestKeyIPv6Prefix(t *testing.T) {
	r := newTestResolver(t, "X-Forwarded-For", func(c *Config) { c.IPv6Prefix = 48 })
	h := http.Header{"X-Forwarded-For": {"2001:db8:1:2:3:4:5:6"}}
	res, err := r.Resolve(netip.MustParseAddrPort("10.0.0.1:1"), h)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Key.String(), "2001:db8:1::"; got != want {
		t.Fatalf("key %s, want %s", got, want)
	}
	if res.Addr.String() != "2001:db8:1:2:3:4:5:6" {
		t.Fatalf("addr %s changed by keying", res.Addr)
	}
	res, _ = r.Resolve(netip.MustParseAddrPort("[::ffff:203.0.113.7]:1"), nil)
	if got := res.Key; got != filters.KeyOf(netip.MustParseAddr("203.0.113.7"), 48) {
		t.Fatalf("ipv4 key %s", got)
	}
}

func TestForwardedFor(t *testing.T) {
	cases := []struct {
		name   string
		header string
		start  string
		lines  []string
		want   string
	}{
		{"untrusted start", "", "198.51.100.1", []string{"6.6.6.6"}, "198.51.100.1"},
		{"no header", "", "10.0.0.1", nil, "10.0.0.1"},
		{"drops entries left of the client", "", "10.0.0.1", []string{"6.6.6.6, 203.0.113.7, 192.168.1.1, 10.0.0.2"}, "203.0.113.7, 192.168.1.1, 10.0.0.2, 10.0.0.1"},
		{"all trusted", "", "10.0.0.1", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3, 10.0.0.2, 10.0.0.1"},
		{"garbage", "", "10.0.0.1", []string{"203.0.113.7, junk, 10.0.0.3, 10.0.0.2"}, "10.0.0.3, 10.0.0.2, 10.0.0.1"},
		{"garbage rightmost", "", "10.0.0.1", []string{"203.0.113.7, junk"}, "10.0.0.1"},
		{"ports and brackets dropped", "", "10.0.0.1", []string{"[2001:db8::7]:443, 10.0.0.2:80"}, "2001:db8::7, 10.0.0.2, 10.0.0.1"},
		{"lines", "", "10.0.0.1", []string{"6.6.6.6, 203.0.113.7", "10.0.0.3", "10.0.0.2"}, "203.0.113.7, 10.0.0.3, 10.0.0.2, 10.0.0.1"},
		{"many hops", "", "10.0.0.1", []string{"203.0.113.7, 10.0.0.11, 10.0.0.10, 10.0.0.9, 10.0.0.8, 10.0.0.7, 10.0.0.6, 10.0.0.5, 10.0.0.4, 10.0.0.3, 10.0.0.2"},
			"203.0.113.7, 10.0.0.11, 10.0.0.10, 10.0.0.9, 10.0.0.8, 10.0.0.7, 10.0.0.6, 10.0.0.5, 10.0.0.4, 10.0.0.3, 10.0.0.2, 10.0.0.1"},
		{"forwarded", "Forwarded", "10.0.0.1", []string{`for=6.6.6.6, for="[2001:db8::7]:1";proto=https, for=10.0.0.2`}, "2001:db8::7, 10.0.0.2, 10.0.0.1"},
		{"single value", "X-Real-IP", "10.0.0.1", []string{"203.0.113.7"}, "203.0.113.7, 10.0.0.1"},
		{"single value invalid", "X-Real-IP", "10.0.0.1", []string{"x"}, "10.0.0.1"},
		{"mapped start", "", "::ffff:10.0.0.1", []string{"203.0.113.7"}, "203.0.113.7, 10.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestResolver(t, tc.header)
			h := http.Header{}
			if tc.lines != nil {
				h[r.Header()] = tc.lines
			}
			start := netip.MustParseAddr(tc.start)
			res, err := r.Resolve(netip.AddrPortFrom(start, 1), h)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.ForwardedFor(res, start, h); got != tc.want {
				t.Fatalf("ForwardedFor = %q, want %q", got, tc.want)
			}
			if !strings.HasPrefix(tc.want, res.Addr.String()) {
				t.Fatalf("X-Forwarded-For %q does not start at the client %s", tc.want, res.Addr)
			}
		})
	}
	// A PROXY-sourced client: just the start.
	r := newTestResolver(t, "")
	res := Result{Addr: netip.MustParseAddr("203.0.113.7"), Source: filters.SourceProxy}
	if got := r.ForwardedFor(res, res.Addr, http.Header{"X-Forwarded-For": {"6.6.6.6"}}); got != "203.0.113.7" {
		t.Fatalf("proxy source: %q", got)
	}
}

func TestResolveRequestWithoutConn(t *testing.T) {
	r := newTestResolver(t, "")
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "10.0.0.1:4444"
	req.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
	res, peerAddr, err := r.ResolveRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Addr != netip.MustParseAddr("203.0.113.7") || res.Source != header || peerAddr != netip.MustParseAddrPort("10.0.0.1:4444") {
		t.Fatalf("got %+v peer %s", res, peerAddr)
	}
	req.RemoteAddr = "not an address"
	if _, _, err := r.ResolveRequest(req); !errors.Is(err, ErrNoStart) {
		t.Fatalf("bad RemoteAddr: %v", err)
	}
}
