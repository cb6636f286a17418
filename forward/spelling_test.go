package forward

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// A route's shield covers every spelling of its path that common backends
// serve as the same resource: the closed switch and the cap hold for
// /LOGIN, /Login, /checkout.json, /Checkout/x and /checkout%20, unless the
// route asks for strict matching.
func TestShieldCoversPathSpellings(t *testing.T) {
	b := startBackend(t, "a", nil)
	spellings := []string{"/checkout", "/CHECKOUT", "/Checkout/x", "/checkout.json", "/checkout%20", "/checkout%09", "/Checkout.JSON%20"}
	t.Run("closed", func(t *testing.T) {
		f := newForwarder(t, Config{Upstream: b.url(), Routes: []Route{{Name: "checkout", Path: "/checkout"}}}, Env{})
		if err := f.SetClosed(context.Background(), "checkout", true); err != nil {
			t.Fatal(err)
		}
		for _, p := range spellings {
			if w := do(f, "GET", p, nil, clientReq("203.0.113.7")); w.Code != 503 || !strings.Contains(w.Body.String(), "closed") {
				t.Errorf("closed route, %s: %d %q, want the closed answer", p, w.Code, w.Body.String())
			}
		}
		if b.hits.Load() != 0 {
			t.Fatalf("%d requests reached the backend of a closed route", b.hits.Load())
		}
	})
	t.Run("cap", func(t *testing.T) {
		f := newForwarder(t, Config{Upstream: b.url(), Routes: []Route{{Name: "login", Path: "/login",
			Shield: Shield{Cap: Cap{Rate: filters.Rate{Count: 1, Period: time.Hour}, Burst: 1, Store: CapStoreMemory}}}}}, Env{})
		if w := do(f, "GET", "/login", nil, clientReq("203.0.113.7")); w.Code != 200 {
			t.Fatalf("first /login: %d", w.Code)
		}
		for _, p := range []string{"/login", "/LOGIN", "/Login", "/login.json", "/login%20", "/Login/"} {
			if w := do(f, "GET", p, nil, clientReq("203.0.113.7")); w.Code != 503 {
				t.Errorf("cap spent, %s: %d, want 503", p, w.Code)
			}
		}
	})
	t.Run("strict", func(t *testing.T) {
		f := newForwarder(t, Config{Upstream: b.url(), Routes: []Route{{Name: "checkout", Path: "/checkout", StrictPath: true}}}, Env{})
		f.SetClosed(context.Background(), "checkout", true)
		for _, p := range spellings[1:] {
			if p == "/Checkout/x" {
				continue
			}
			if w := do(f, "GET", p, nil, clientReq("203.0.113.7")); w.Code != 200 {
				t.Errorf("strict route, %s: %d, want 200 from the default route", p, w.Code)
			}
		}
		if w := do(f, "GET", "/checkout/x", nil, clientReq("203.0.113.7")); w.Code != 503 {
			t.Errorf("strict route, /checkout/x: %d, want the closed answer", w.Code)
		}
	})
}
