package forward

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/admission"
)

// go test -run '^$' -bench . -benchmem ./forward/

func BenchmarkPick(b *testing.B) {
	for _, pol := range []string{RoundRobin, LeastOutstanding, ConsistentHash} {
		b.Run(pol, func(b *testing.B) {
			p := testPool(b, pol, 10)
			now := t0.UnixNano()
			keys := make([]filters.Key, 1024)
			for i := range keys {
				keys[i] = keyN(i * 2654435761)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.pick(now, keys[i&1023], nil)
				i++
			}
		})
	}
}

func mustGate(b *testing.B, limit, room int) *admission.Gate {
	g, err := admission.New(limit, room, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkShieldAdmission is the decision for a request that need not
// wait (admit, later release) and for one refused because the room is full.
func BenchmarkShieldAdmission(b *testing.B) {
	ctx := context.Background()
	b.Run("admit", func(b *testing.B) {
		g := mustGate(b, 100, 200)
		b.ReportAllocs()
		for b.Loop() {
			if g.Acquire(ctx) == nil {
				g.Release()
			}
		}
	})
	b.Run("refuse", func(b *testing.B) {
		g := mustGate(b, 1, 0)
		g.Acquire(ctx)
		b.ReportAllocs()
		for b.Loop() {
			g.Acquire(ctx)
		}
	})
	b.Run("admit_parallel", func(b *testing.B) {
		g := mustGate(b, 1<<20, 200)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if g.Acquire(ctx) == nil {
					g.Release()
				}
			}
		})
	})
}

// BenchmarkThroughput forwards small GETs through the single-upstream
// shorthand and through a round-robin pool of three backends, in one run.
func BenchmarkThroughput(b *testing.B) {
	h := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }
	mk := func(n int) Config {
		var urls []string
		for range n {
			urls = append(urls, startBackend(b, "x", h).url())
		}
		if n == 1 {
			return Config{Upstream: urls[0]}
		}
		return Config{Upstreams: map[string]Pool{"web": {Backends: urls}}, Routes: []Route{{Path: "/", Upstream: "web"}}}
	}
	for _, c := range []struct {
		name string
		n    int
	}{{"single_upstream", 1}, {"pool_of_3", 3}} {
		b.Run(c.name, func(b *testing.B) {
			f := newForwarder(b, mk(c.n), Env{})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				fr := clientReq("203.0.113.7")
				for pb.Next() {
					r := httptest.NewRequest("GET", "/item", nil)
					r = r.WithContext(filters.WithRequest(r.Context(), fr))
					w := httptest.NewRecorder()
					f.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
		})
	}
}
