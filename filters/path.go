package filters

import (
	"net"
	"net/netip"
	"path"
	"strings"
)

// MatchPath is p as every path-scoped setting compares it (routes, quota
// policies, the WAF's per-path settings): cleaned as net/http's ServeMux
// cleans (no "//", "." or ".."), with a trailing slash kept, and with the
// path parameters of each segment (";jsessionid=...", which Java servers
// drop before routing) removed. A client must not dodge a setting by
// spelling the same resource another way that the backend still serves as
// that resource.
func MatchPath(p string) string {
	p = StripPathParams(p)
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if c != "/" && p[len(p)-1] == '/' {
		c += "/"
	}
	return c
}

// StripPathParams removes the path parameters of each segment of p
// (";jsessionid=..." in "/a;jsessionid=1/b"), which Java servers drop before
// routing and so must not make one resource look like another.
func StripPathParams(p string) string {
	if strings.IndexByte(p, ';') < 0 {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}

// Spellings says which spellings of a path a path-scoped setting covers.
type Spellings uint8

const (
	// AnySpelling, the default, covers besides the normal form the
	// spellings that common backends serve as the same resource: case
	// variants ("/LOGIN": ASP.NET, IIS, Express), a format suffix on the
	// last segment ("/checkout.json": Rails, older Spring), and trailing
	// whitespace or dots on a segment ("/checkout%20", "/checkout.":
	// Windows servers drop them). See PathPrefix.Covers.
	AnySpelling Spellings = iota
	// StrictSpelling covers the normal form (MatchPath) only, for a
	// backend known to tell those spellings apart.
	StrictSpelling
)

// Boundary says where a path prefix may end inside a path.
type Boundary uint8

const (
	// AnyByte: "/search" covers "/search", "/search/x" and "/searches".
	AnyByte Boundary = iota
	// SegmentEnd: "/checkout" covers "/checkout" and "/checkout/pay" but
	// not "/checkouts".
	SegmentEnd
)

// PathPrefix is the path part of a path-scoped setting (a route, a quota
// policy): a prefix in normal form, where it may end, and which spellings
// of a request path it covers. A protection scoped to a path must hold for
// every spelling the backend serves as that path, or a client escapes it by
// writing "/LOGIN" for "/login". The zero value covers nothing.
type PathPrefix struct {
	clean    string // MatchPath(prefix)
	folded   string // foldPath(clean)
	boundary Boundary
	strict   bool
}

// NewPathPrefix compiles prefix (a path starting with "/"); an empty prefix
// gives the zero PathPrefix.
func NewPathPrefix(prefix string, b Boundary, s Spellings) PathPrefix {
	if prefix == "" {
		return PathPrefix{}
	}
	clean := MatchPath(prefix)
	return PathPrefix{clean: clean, folded: foldPath(clean), boundary: b, strict: s == StrictSpelling}
}

// IsZero reports whether pp is the zero PathPrefix, which covers nothing.
func (pp PathPrefix) IsZero() bool { return pp.clean == "" }

// String returns the prefix in normal form.
func (pp PathPrefix) String() string { return pp.clean }

// Len is the length of the prefix in normal form: the longer of two
// prefixes that cover a path is the more specific.
func (pp PathPrefix) Len() int { return len(pp.clean) }

// Covers reports whether the setting applies to a request path p, given in
// the form the caller matches (normal form, or as sent; p is not cleaned
// here). p is covered when it starts with the prefix or, unless the prefix
// is strict, when p folded starts with the prefix folded: both in lower
// case, each segment without trailing whitespace or dots, decoded or
// escaped ("%20", "%09"), unless that would empty it; p's last segment is
// also tried without each format suffix in turn (a dot and 1 to 8 letters
// and digits, the first a letter: ".json", ".xml", ".mp4"), so that
// "/Checkout.JSON%20" is covered by "/checkout" and "/robots.txt.json" by
// "/robots.txt". A path that needs no folding costs no allocation.
func (pp PathPrefix) Covers(p string) bool {
	if pp.clean == "" {
		return false
	}
	if hasPathPrefix(p, pp.clean, pp.boundary) {
		return true
	}
	if pp.strict {
		return false
	}
	for k := foldPath(p); ; {
		if hasPathPrefix(k, pp.folded, pp.boundary) {
			return true
		}
		next := trimFormat(k)
		if next == k {
			return false
		}
		k = next
	}
}

func hasPathPrefix(p, prefix string, b Boundary) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return b == AnyByte || len(p) == len(prefix) || prefix[len(prefix)-1] == '/' || p[len(prefix)] == '/'
}

// foldPath is p in lower case with each segment trimmed (trimSegment).
func foldPath(p string) string {
	p = strings.ToLower(p)
	cut := strings.LastIndexByte(p, '/') + 1
	// trimSegment only cuts from the end: the last segment stays a
	// prefix of p[cut:], so an unchanged head needs no copy.
	last := trimSegment(p[cut:])
	head := p[:cut]
	if !innerJunk(head) {
		return p[:cut+len(last)]
	}
	segs := strings.Split(head, "/")
	for i, s := range segs {
		segs[i] = trimSegment(s)
	}
	return strings.Join(segs, "/") + last
}

// innerJunk reports whether a segment of head (a path up to and with its
// last "/") would be trimmed.
func innerJunk(head string) bool {
	start := 0
	for i := 0; i < len(head); i++ {
		if head[i] == '/' {
			if seg := head[start:i]; trimSegment(seg) != seg {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// trimSegment removes a segment's trailing whitespace, dots and escaped
// whitespace. A segment of dots ("." and "..") stays what it is, and so
// does a segment whose trimming would leave one.
func trimSegment(s string) string {
	if strings.Trim(s, ".") == "" {
		return s
	}
	for {
		n := trailingJunk(s)
		if n == 0 {
			return s
		}
		rest := s[:len(s)-n]
		if rest != "" && strings.Trim(rest, ".") == "" {
			return s
		}
		s = rest
	}
}

// trailingJunk is the length of the whitespace byte, dot or escaped
// whitespace ("%20", "%09", "%0a" to "%0d", lower case) that s ends with,
// or 0.
func trailingJunk(s string) int {
	n := len(s)
	if n == 0 {
		return 0
	}
	switch s[n-1] {
	case ' ', '\t', '\n', '\v', '\f', '\r', '.':
		return 1
	}
	if n >= 3 && s[n-3] == '%' {
		switch s[n-2:] {
		case "20", "09", "0a", "0b", "0c", "0d":
			return 3
		}
	}
	return 0
}

// trimFormat removes one format suffix from the last segment of the folded
// path k (the segment before a trailing "/", which stays), or returns k
// unchanged when it has none.
func trimFormat(k string) string {
	body, slash := k, ""
	if len(k) > 1 && k[len(k)-1] == '/' {
		body, slash = k[:len(k)-1], "/"
	}
	seg := body[strings.LastIndexByte(body, '/')+1:]
	i := strings.LastIndexByte(seg, '.')
	if i <= 0 {
		return k
	}
	ext := seg[i+1:]
	if len(ext) < 1 || len(ext) > 8 || ext[0] < 'a' || ext[0] > 'z' {
		return k
	}
	for j := 1; j < len(ext); j++ {
		if c := ext[j]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return k
		}
	}
	out := body[:len(body)-len(seg)+len(trimSegment(seg[:i]))]
	if slash != "" {
		return out + slash // rare: a format suffix before a trailing slash
	}
	return out
}

// MatchHost is h as every host-scoped setting compares it (routes, quota
// policies): the port, IPv6 brackets and the trailing dots of a fully
// qualified name removed, in lower case, and an IP address in its
// canonical form. So "API.example.com.:443" is "api.example.com" and
// "[2001:DB8:0::1]:8080" is "2001:db8::1". A wildcard such as
// "*.Example.com" keeps its star: "*.example.com".
func MatchHost(h string) string {
	// The checks before SplitHostPort and ParseAddr spare the common host
	// name the error each would allocate.
	if strings.IndexByte(h, ':') >= 0 {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
	}
	h = strings.TrimPrefix(h, "[")
	h = strings.TrimSuffix(h, "]")
	h = strings.TrimRight(h, ".")
	if h != "" && (strings.IndexByte(h, ':') >= 0 || '0' <= h[0] && h[0] <= '9') {
		if a, err := netip.ParseAddr(h); err == nil {
			// An address already in its canonical form (the common
			// "127.0.0.1:8080") is returned as it came, without a new
			// string per request.
			var buf [64]byte
			if string(a.AppendTo(buf[:0])) == h {
				return h
			}
			return a.String()
		}
	}
	return strings.ToLower(h)
}
