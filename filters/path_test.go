package filters

import (
	"strings"
	"testing"
)

func TestMatchPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "/",
		"/":                      "/",
		"/checkout":              "/checkout",
		"//checkout":             "/checkout",
		"/a/../checkout/":        "/checkout/",
		"/./checkout/pay":        "/checkout/pay",
		"checkout":               "/checkout",
		"/checkout;jsessionid=1": "/checkout",
		"/checkout;x=1/pay;y=2":  "/checkout/pay",
		"/;x/checkout":           "/checkout",
		"/checkout/..;/admin":    "/admin",
		"/checkouts":             "/checkouts",
		"/checkout/":             "/checkout/",
		"/checkout/..":           "/",
	} {
		if got := MatchPath(in); got != want {
			t.Errorf("MatchPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzMatchPath(f *testing.F) {
	for _, s := range []string{"/a//b", "/a;x/../b", "..;/", "/a/./b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		m := MatchPath(p)
		if m == "" || m[0] != '/' || MatchPath(m) != m {
			t.Fatalf("MatchPath(%q) = %q: not a stable, rooted path", p, m)
		}
	})
}

func TestStripPathParams(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"/a/b":                    "/a/b",
		"/a;jsessionid=1/b":       "/a/b",
		"/a/b;x=1;y=2":            "/a/b",
		"/;x/a":                   "//a",       // cleaning is MatchPath's job
		"/a%2F..;/b":              "/a%2F../b", // escapes are the caller's: nothing is decoded here
		"relative;x/not-resolved": "relative/not-resolved",
	} {
		if got := StripPathParams(in); got != want {
			t.Errorf("StripPathParams(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathPrefixCovers(t *testing.T) {
	seg := func(p string) PathPrefix { return NewPathPrefix(p, SegmentEnd, AnySpelling) }
	tests := []struct {
		prefix PathPrefix
		path   string
		want   bool
	}{
		// The spellings of issue #11: each reaches the protection.
		{seg("/login"), "/login", true},
		{seg("/login"), "/LOGIN", true},
		{seg("/login"), "/Login", true},
		{seg("/checkout"), "/checkout.json", true},
		{seg("/checkout"), "/CHECKOUT", true},
		{seg("/checkout"), "/Checkout/x", true},
		{seg("/checkout"), "/checkout ", true},   // "%20" decoded
		{seg("/checkout"), "/checkout%20", true}, // still escaped (raw form)
		{seg("/checkout"), "/checkout\t", true},  // "%09" decoded
		{seg("/checkout"), "/checkout%09/x", true},
		{seg("/checkout"), "/checkout./pay", true},
		{seg("/checkout"), "/Checkout.JSON%20", true},
		{seg("/checkout"), "/checkout.v2.json", true},
		{seg("/checkout"), "/checkout.xml/", true}, // a trailing slash after a suffix: Rails does not, we cover it anyway
		{seg("/robots.txt"), "/robots.txt", true},
		{seg("/robots.txt"), "/ROBOTS.TXT", true},
		{seg("/robots.txt"), "/robots.txt.json", true},
		{seg("/Login"), "/login", true}, // the prefix is folded too
		// Not the same resource.
		{seg("/checkout"), "/checkouts", false},
		{seg("/checkout"), "/checkout-old", false},
		{seg("/checkout"), "/checkout.2", false}, // not a format suffix
		{seg("/checkout"), "/checkout.toolongext", false},
		{seg("/checkout"), "/checkout.json.x_y", false},
		{seg("/checkout"), "/x/checkout", false},
		{seg("/api/"), "/api", false},
		{seg("/a/b"), "/a/./b", false}, // cleaning is MatchPath's job, and "." stays "."
		// Strict: the normal form only.
		{NewPathPrefix("/login", SegmentEnd, StrictSpelling), "/login/x", true},
		{NewPathPrefix("/login", SegmentEnd, StrictSpelling), "/LOGIN", false},
		{NewPathPrefix("/login", SegmentEnd, StrictSpelling), "/login.json", false},
		{NewPathPrefix("/login", SegmentEnd, StrictSpelling), "/login ", false},
		// Any byte: quota's path_prefix.
		{NewPathPrefix("/search", AnyByte, AnySpelling), "/searches", true},
		{NewPathPrefix("/search", AnyByte, AnySpelling), "/SEARCH", true},
		{NewPathPrefix("/search", AnyByte, AnySpelling), "/Search.json", true},
		{NewPathPrefix("/search", AnyByte, AnySpelling), "/sea", false},
		{PathPrefix{}, "/", false},
	}
	for _, tt := range tests {
		if got := tt.prefix.Covers(tt.path); got != tt.want {
			t.Errorf("%q (strict %v, boundary %d) covers %q = %v, want %v", tt.prefix.clean, tt.prefix.strict, tt.prefix.boundary, tt.path, got, tt.want)
		}
	}
}

func TestPathPrefixCoversAllocatesNothing(t *testing.T) {
	pp := NewPathPrefix("/checkout", SegmentEnd, AnySpelling)
	for _, p := range []string{"/static/app.js", "/checkout.json", "/index.html%20", "/"} {
		if n := testing.AllocsPerRun(100, func() { pp.Covers(p) }); n != 0 {
			t.Errorf("Covers(%q): %v allocations, want 0", p, n)
		}
	}
}

// FuzzPathPrefix checks the spelling rule's promises on any prefix and
// path: strict coverage implies loose coverage, and a covered path stays
// covered in upper case, with trailing whitespace (decoded or escaped),
// and, when it does not end in "/", with a trailing dot or a format suffix.
func FuzzPathPrefix(f *testing.F) {
	for _, s := range [][2]string{
		{"/login", "/LOGIN"}, {"/checkout", "/checkout.json"}, {"/checkout", "/Checkout/x"},
		{"/checkout", "/checkout%20"}, {"/robots.txt", "/robots.txt.json"}, {"/a.b", "/A.B%20/x"},
		{"/", "/x"}, {"/api/", "/api/v1.2"}, {"/a", "/a/../b"}, {"/x", "/x/ "},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, p string) {
		if prefix == "" || prefix[0] != '/' {
			return
		}
		for _, b := range []Boundary{AnyByte, SegmentEnd} {
			loose := NewPathPrefix(prefix, b, AnySpelling)
			strict := NewPathPrefix(prefix, b, StrictSpelling)
			if strict.Covers(p) && !loose.Covers(p) {
				t.Fatalf("boundary %d: strict %q covers %q, loose does not", b, prefix, p)
			}
			if !loose.Covers(p) {
				continue
			}
			variants := []string{upperASCII(p), p + "%20", p + "%09", p + " ", p + "\t"}
			if !strings.HasSuffix(p, "/") {
				// After a "/" these would start a segment of their own.
				variants = append(variants, p+".", p+".json", p+".XML")
			}
			for _, v := range variants {
				if !loose.Covers(v) {
					t.Fatalf("boundary %d: %q covers %q but not %q", b, prefix, p, v)
				}
			}
		}
	})
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestMatchHostAllocatesNothingForAName(t *testing.T) {
	// An address already in its canonical form is a name here too: the
	// "127.0.0.1:8080" a client sends to a host without a domain.
	for _, h := range []string{"shop.example.com", "shop.example.com:8080", "shop.example.com.",
		"127.0.0.1:8080", "192.0.2.1", "[2001:db8::1]:443"} {
		if n := testing.AllocsPerRun(100, func() { MatchHost(h) }); n != 0 {
			t.Errorf("MatchHost(%q): %v allocations, want 0", h, n)
		}
	}
}

func TestMatchHost(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":          "example.com",
		"API.Example.com.:443": "api.example.com",
		"example.com..":        "example.com",
		"[2001:DB8:0::1]:8080": "2001:db8::1",
		"[2001:db8::1]":        "2001:db8::1",
		"2001:DB8::1":          "2001:db8::1", // a bare IPv6 host: bareHost once cut it at its last colon
		"127.0.0.1:80":         "127.0.0.1",
		"192.0.2.1.":           "192.0.2.1",
		"[::FFFF:192.0.2.1]:1": "::ffff:192.0.2.1",
		"[2001:db8:0::1]:8080": "2001:db8::1",
		"*.Example.COM":        "*.example.com",
		"":                     "",
	} {
		if got := MatchHost(in); got != want {
			t.Errorf("MatchHost(%q) = %q, want %q", in, got, want)
		}
	}
}
