package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestRawAppliesGoFTWDefaults(t *testing.T) {
	body := "a=1"
	for _, tc := range []struct {
		name string
		r    request
		want []string
		not  []string
	}{
		{"bare GET", request{}, []string{"GET / HTTP/1.1\r\n", "Host: 127.0.0.1:1\r\n", "X-Forwarded-For: 100.64.0.1\r\n", "Connection: close\r\n"}, []string{"Content-Length", "Content-Type"}},
		{"body without type", request{method: "POST", uri: "/p", body: &body}, []string{"POST /p HTTP/1.1\r\n", "Content-Type: application/x-www-form-urlencoded\r\n", "Content-Length: 3\r\n", "\r\n\r\na=1"}, nil},
		{"own headers kept", request{headers: [][2]string{{"Host", "h"}, {"Connection", "keep-alive"}}, body: &body}, []string{"Host: h\r\n", "Connection: keep-alive\r\n"}, []string{"Host: 127.0.0.1:1", "Connection: close"}},
		{"version kept", request{version: "HTTP/1.0"}, []string{"GET / HTTP/1.0\r\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.r.raw("127.0.0.1:1", "100.64.0.1")
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in\n%s", n, got)
				}
			}
		})
	}
	if _, err := (request{headers: [][2]string{{"X", "a\r\nY: b"}}}).raw("t", "x"); err == nil {
		t.Error("a header with a line break was sent")
	}
}

// measure counts 403s per kind against a target that refuses what looks
// like an attack and a benign path it dislikes, and distinct client
// addresses reach it.
func TestMeasure(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Forwarded-For")] = true
		mu.Unlock()
		if strings.Contains(r.URL.RawQuery, "attack") || r.URL.Path == "/fp" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	reqs := []request{
		{kind: "attack-pl1", uri: "/?q=attack"},
		{kind: "attack-pl1", uri: "/?q=missed"},
		{kind: "attack-pl2", uri: "/?q=attack"},
		{kind: "benign", uri: "/"},
		{kind: "benign", uri: "/fp"},
	}
	got := measure(strings.TrimPrefix(srv.URL, "http://"), "t", reqs, 1, false)
	want := []string{"Q\tt\tattack-pl1\t2\t1\t0", "Q\tt\tattack-pl2\t1\t1\t0", "Q\tt\tbenign\t2\t1\t0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(reqs) {
		t.Fatalf("%d distinct client addresses for %d requests", len(seen), len(reqs))
	}
}

// The CRS inputs load, with every level present.
func TestAttacksFromCRS(t *testing.T) {
	dir := crsDirForTest(t)
	reqs, err := attacks(dir)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, r := range reqs {
		per[r.kind]++
	}
	t.Logf("attack inputs per level: %v", per)
	if per["attack-pl1"] < 1000 || per["attack-pl2"] == 0 || per["attack-pl3"] == 0 || per["attack-pl4"] == 0 {
		t.Fatalf("attacks per level: %v", per)
	}
}
