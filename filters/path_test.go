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
