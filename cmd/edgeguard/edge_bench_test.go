package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/internal/bodymem"
)

// BenchmarkEdgeHandler prices one request through the edge listener's
// handler as serve builds it: the client pace, the generation count, the
// Guard with bench/run.sh's cheap stages (reputation, volumetric, a memory
// quota, limits far above the load), the JSON access line into the batched
// log writer, and the forwarder to a loopback upstream. Its allocs/op, set
// beside the same benchmark built from an earlier commit, is what a change
// to the request path saves per request (bench/edge.sh runs the two
// interleaved). The upstream and the client's side are in the process too:
// compare, do not read the absolute figure as edgeguard's own.
func BenchmarkEdgeHandler(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html>ok</html>"))
	}))
	defer up.Close()
	cfg, err := config.Parse("bench.yaml", []byte(`upstream: "`+up.URL+`"
client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
stages: [reputation, volumetric, quota]
volumetric: {rate: "1000000000/s", burst: 1000000000, max_clients: 100000}
quota: {store: memory, key: [ip], policies: [{name: default, rate: "1000000000/s", burst: 1000000000}]}
`))
	if err != nil {
		b.Fatal(err)
	}
	logOut := newBatchWriter(io.Discard)
	defer logOut.Close()
	s := &server{stderr: io.Discard, logOut: logOut}
	s.log = s.newLogger(cfg, logOut)
	s.metrics = edgeguard.NewMetrics()
	if err := s.install(cfg); err != nil {
		b.Fatal(err)
	}
	defer s.cur.Load().Close()
	pace := &clientPace{bodyTimeout: time.Minute, sendTimeout: time.Minute, pool: bodymem.NewPool(64 << 20)}
	h := pace.wrap(s.serveHTTP)
	const page = "http://shop.example/products/4711-trail-running-shoe?color=blue&size=42&ref=collection"
	body := strings.Repeat(`{"sku":"4711","qty":1},`, 90)
	for _, bc := range []struct {
		name, method, body string
	}{{"get", http.MethodGet, ""}, {"post", http.MethodPost, "[" + body + `{"sku":"1","qty":2}]`}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var rd io.Reader
				if bc.body != "" {
					rd = strings.NewReader(bc.body)
				}
				r := httptest.NewRequest(bc.method, page, rd)
				r.RemoteAddr = "127.0.0.1:40000"
				r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
				r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
				r.Header.Set("Accept-Language", "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7")
				r.Header.Set("Cookie", "session=4f9c2b7e1a8d4e0c9b3f6a2d5e7c1b08; cart=3; theme=dark")
				if bc.body != "" {
					r.Header.Set("Content-Type", "application/json")
				}
				w := httptest.NewRecorder()
				h(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
