package filters

import "testing"

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
