package forward

import (
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// FuzzMatch: whatever the Host header and path, Match returns a configured
// route whose host and prefix really match the cleaned path, or "" for the
// default; the cleaned path is clean (no empty, "." or ".." segments) and
// cleaning it again changes nothing.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"shop.example.com", "/checkout/pay"}, {"SHOP.EXAMPLE.COM:443", "/checkout"}, {"[::1]:80", "/api/x"},
		{"a.example.com", "/api/"}, {"", ""}, {"example.com.", "/checkouts"}, {":", "/"}, {"[", "//"},
		{"shop.example.com", "//checkout"}, {"a.example.com", "/x/../api/v1"}, {"", "/checkout/../checkout/"},
	} {
		f.Add(s[0], s[1])
	}
	fw, err := New(Config{
		Upstream:  "http://127.0.0.1:1",
		Upstreams: map[string]Pool{"web": {Backends: []string{"http://127.0.0.1:2"}}},
		Routes: []Route{
			{Name: "checkout", Path: "/checkout", Upstream: "web"},
			{Name: "shop", Host: "shop.example.com", Path: "/checkout", Upstream: "web"},
			{Name: "sub", Host: "*.example.com", Path: "/api/", Upstream: "web"},
			{Name: "api", Path: "/api/"},
		},
	}, Env{})
	if err != nil {
		f.Fatal(err)
	}
	defer fw.Close()
	f.Fuzz(func(t *testing.T, host, raw string) {
		path := filters.MatchPath(raw)
		if again := filters.MatchPath(path); again != path {
			t.Fatalf("filters.MatchPath(%q) = %q, which cleans to %q", raw, path, again)
		}
		if !strings.HasPrefix(path, "/") || strings.Contains(path, "//") || strings.Contains(path+"/", "/./") || strings.Contains(path+"/", "/../") {
			t.Fatalf("filters.MatchPath(%q) = %q, not clean", raw, path)
		}
		name, err := routeOf(fw, host, raw, "")
		if cleanName, cerr := routeOf(fw, host, path, ""); cerr != nil || (err == nil && cleanName != name) {
			t.Fatalf("Route(%q, %q) = %q, %v; the cleaned %q takes %q, %v", host, raw, name, err, path, cleanName, cerr)
		}
		if err != nil {
			return // ambiguous: refused, nothing more to check
		}
		if name == "" {
			for _, rt := range fw.routes {
				if rt.matchHost(filters.MatchHost(host)) && rt.path.Covers(path) {
					t.Fatalf("Route(%q, %q) = default, but route %q matches", host, path, rt.name)
				}
			}
			return
		}
		rt := fw.byName[name]
		if rt == nil {
			t.Fatalf("Route returned unknown route %q", name)
		}
		if !rt.path.Covers(path) || !rt.matchHost(filters.MatchHost(host)) {
			t.Fatalf("Route(%q, %q) = %q, which does not match", host, path, name)
		}
		for _, other := range fw.routes {
			if other.path.Len() > rt.path.Len() && other.matchHost(filters.MatchHost(host)) && other.path.Covers(path) {
				t.Fatalf("Route(%q, %q) = %q, but longer %q matches", host, path, name, other.name)
			}
		}
	})
}

// FuzzParseBackend: an accepted backend URL is reduced to scheme and an
// explicit host:port, and parses again to itself.
func FuzzParseBackend(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:8080", "https://[::1]:443", "http://backend", "http://u:p@h:1", "http://h:1/path",
		"ftp://h:1", "http://h:1?x", "http://:80", "http://h:", "//h:1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseBackend(raw)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Path != "" || u.User != nil {
			t.Fatalf("parseBackend(%q) = %v", raw, u)
		}
		again, err := parseBackend(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("parseBackend(%q) = %v, which parses to %v, %v", raw, u, again, err)
		}
	})
}
