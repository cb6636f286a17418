package ipparse

import (
	"golang.org/x/net/http/httpguts"
	"net/netip"
	"strings"
)

// maxNodeLen is the longest node (address with brackets, zone and port) the
// parsers look at: "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%zone]:65535"
// with a generous zone. Anything longer is not an address.
const maxNodeLen = 128

// parseNode parses one address as forwarding headers write it:
//
//	1.2.3.4   1.2.3.4:8080   2001:db8::1   [2001:db8::1]   [2001:db8::1]:8080
//
// An IPv6 zone (fe80::1%eth0) is dropped and an IPv4-mapped IPv6 address
// becomes IPv4; NAT64 (64:ff9b::/96) and every other IPv6 address stay IPv6.
// With obfPort, a Forwarded obfuscated port ("[2001:db8::1]:_abc") is
// accepted and reported as port 0. Anything else (hostnames, "unknown",
// obfuscated "_id" nodes, empty strings, junk) is not ok.
func parseNode(s string, obfPort bool) (addr netip.Addr, port uint16, ok bool) {
	if s == "" || len(s) > maxNodeLen {
		return netip.Addr{}, 0, false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, 0, false
		}
		a, ok := parseIP(s[1:end])
		// Brackets hold IPv6 only; "[1.2.3.4]" is not an address form. The
		// check is on the parsed form, before unmapping.
		if !ok || !a.Is6() {
			return netip.Addr{}, 0, false
		}
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return netip.Addr{}, 0, false
			}
			if port, ok = parsePort(rest[1:], obfPort); !ok {
				return netip.Addr{}, 0, false
			}
		}
		return a.Unmap(), port, true
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		// Exactly one colon: IPv4 with a port (IPv6 has at least two).
		a, ok := parseIP(s[:i])
		if !ok || !a.Is4() {
			return netip.Addr{}, 0, false
		}
		if port, ok = parsePort(s[i+1:], obfPort); !ok {
			return netip.Addr{}, 0, false
		}
		return a, port, true
	}
	a, ok := parseIP(s)
	if !ok {
		return netip.Addr{}, 0, false
	}
	return a.Unmap(), 0, true
}

// parseIP parses a bare IPv4 or IPv6 address, dropping an IPv6 zone. The
// result is not unmapped. The zone is cut off as text rather than handed to
// netip, which would intern it: client-chosen zones must not cost memory.
func parseIP(s string) (netip.Addr, bool) {
	// One pass over the address characters: netip's error path allocates,
	// and most garbage (unknown, _obf, hostnames) is turned away here.
	zoned := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if !isZone(s[i+1:]) {
				return netip.Addr{}, false // "fe80::1%" or a zone with odd bytes
			}
			s, zoned = s[:i], true
			break
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '.' || c == ':') {
			return netip.Addr{}, false
		}
	}
	if s == "" || len(s) > 45 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || zoned && !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// parsePort parses a decimal port 0-65535, or with obf a Forwarded obfport
// ("_" then letters, digits, ".", "_", "-"), which yields 0.
func parsePort(s string, obf bool) (uint16, bool) {
	if obf && len(s) > 1 && s[0] == '_' {
		for i := 1; i < len(s); i++ {
			if !isObfChar(s[i]) {
				return 0, false
			}
		}
		return 0, true
	}
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return 0, false
		}
	}
	return uint16(n), true
}

// isZone reports whether s is a non-empty IPv6 zone of RFC 6874 characters
// (unreserved, and '%' for a percent-encoded one).
func isZone(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isObfChar(c) && c != '~' && c != '%' {
			return false
		}
	}
	return true
}

func isObfChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// trimOWS trims optional whitespace (spaces and tabs) from both ends.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// entries walks the elements of a list header (X-Forwarded-For or Forwarded)
// from the right: the last element of the last line first. A line that is
// empty or only whitespace holds no elements; an empty element inside a line
// ("a,,b", "a, ") is an element, and not an address.
//
// Splitting from the right matters for Forwarded: the elements to the right
// were written by trusted proxies and are well-formed, so they are found
// correctly whatever the client wrote to their left; a left-to-right
// tokenizer would let one unbalanced quote from the client swallow them.
type entries struct {
	lines     []string
	li        int // lines[li:] are done
	rest      string
	inLine    bool
	forwarded bool
}

func newEntries(lines []string, forwarded bool) entries {
	return entries{lines: lines, li: len(lines), forwarded: forwarded}
}

// next returns the next element to the left. ok is false when there are no
// more. An element whose quoting cannot be matched comes back as "" with
// malformed set; the walk stops there.
func (e *entries) next() (elem string, ok, malformed bool) {
	for !e.inLine {
		if e.li == 0 {
			return "", false, false
		}
		e.li--
		if l := e.lines[e.li]; trimOWS(l) != "" {
			e.rest, e.inLine = l, true
		}
	}
	var i int
	if e.forwarded {
		i, malformed = lastForwardedComma(e.rest)
		if malformed {
			e.inLine, e.li = false, 0 // nothing left of it is reachable
			return "", true, true
		}
	} else {
		i = strings.LastIndexByte(e.rest, ',')
	}
	elem = e.rest[i+1:]
	if i < 0 {
		e.inLine = false
	} else {
		e.rest = e.rest[:i]
	}
	return elem, true, false
}

// lastForwardedComma returns the index of the last comma of s that is not
// inside a quoted string, or -1. Scanning from the right, a '"' preceded by
// an even number of backslashes (zero included) opens or closes a quoted
// string and one preceded by an odd number is a quoted-pair; this reads
// every well-formed RFC 7239 quoted-string exactly as a left-to-right reader
// would. A quote that cannot be matched makes the element malformed.
func lastForwardedComma(s string) (int, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ',':
			return i, false
		case '"':
			if oddBackslashes(s, i) {
				return 0, true // an escaped quote outside a quoted string
			}
			j := i - 1
			for ; j >= 0; j-- {
				if s[j] == '"' && !oddBackslashes(s, j) {
					break
				}
			}
			if j < 0 {
				return 0, true
			}
			i = j
		}
	}
	return -1, false
}

// oddBackslashes reports whether s[i] is preceded by an odd run of '\'.
func oddBackslashes(s string, i int) bool {
	n := 0
	for i--; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// forwardedFor returns the node of the one for= parameter of a Forwarded
// element (RFC 7239: pairs separated by ';', names case-insensitive, values
// tokens or quoted strings), unquoted into buf when it holds quoted-pairs.
// ok is false when the element is malformed, has no for=, or has several.
// Other parameters (by, host, proto, extensions) are skipped.
func forwardedFor(elem string, buf *[maxNodeLen]byte) (node string, ok bool) {
	found := false
	for elem != "" {
		pair, rest, ok := cutPair(elem)
		if !ok {
			return "", false
		}
		elem = rest
		pair = trimOWS(pair)
		if pair == "" {
			continue // "for=a;;proto=http": empty pairs are allowed
		}
		eq := strings.IndexByte(pair, '=')
		if eq < 0 {
			return "", false
		}
		name := trimOWS(pair[:eq])
		if !httpguts.ValidHeaderFieldName(name) {
			return "", false
		}
		if !strings.EqualFold(name, "for") {
			continue
		}
		if found {
			return "", false // RFC 7239 §4: a parameter occurs once per element
		}
		found = true
		node = trimOWS(pair[eq+1:])
	}
	if !found {
		return "", false
	}
	return unquote(node, buf)
}

// cutPair splits off the first pair of a Forwarded element: up to the first
// ';' outside a quoted string. ok is false for an unterminated quote.
func cutPair(s string) (pair, rest string, ok bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			return s[:i], s[i+1:], true
		}
	}
	if quoted {
		return "", "", false
	}
	return s, "", true
}

// unquote returns the value of a Forwarded parameter: a token as is, or the
// content of a quoted string with its quoted-pairs resolved. A quote anywhere
// but around the whole value is malformed.
func unquote(v string, buf *[maxNodeLen]byte) (string, bool) {
	if v == "" || v[0] != '"' {
		if strings.IndexByte(v, '"') >= 0 || strings.IndexByte(v, '\\') >= 0 {
			return "", false
		}
		return v, true
	}
	if len(v) < 2 || v[len(v)-1] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	if strings.IndexByte(in, '\\') < 0 {
		if strings.IndexByte(in, '"') >= 0 {
			return "", false
		}
		return in, true
	}
	n := 0
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch c {
		case '"':
			return "", false // an unescaped quote inside: not one quoted string
		case '\\':
			i++
			if i == len(in) {
				return "", false // the closing quote was escaped
			}
			c = in[i]
		}
		if n == len(buf) {
			return "", false // longer than any address
		}
		buf[n] = c
		n++
	}
	return string(buf[:n]), true
}
