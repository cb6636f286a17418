package edgeguard

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAccessLine prices the access line on a cheap GET: the Guard
// with an empty chain in front of a handler that does nothing, the line
// off, on through slog's JSON handler, and on encoded straight to the
// access writer (the binary's path with log.format json), in one run; on
// minus off is the line's cost.
func BenchmarkAccessLine(b *testing.B) {
	for _, bc := range []struct {
		name, log string
		direct    bool
	}{
		{"off", "log: {access: false}\n", false},
		{"on", "", false},
		{"on-direct", "", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := mustConfig(b, "stages: []\n"+bc.log)
			opts := []Option{WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))}
			if bc.direct {
				opts = append(opts, WithAccessWriter(io.Discard))
			}
			g, err := New(cfg, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
			r := httptest.NewRequest("GET", "http://shop.example.com/products/42?ref=home&page=2", nil)
			r.RemoteAddr = "192.0.2.1:1000"
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
			}
		})
	}
}
