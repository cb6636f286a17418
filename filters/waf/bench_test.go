package waf

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/edgeguard/edgeguard/filters"
)

// The benchmarks call handlers in-process (no sockets) so that the figures
// are the WAF's cost, not the loopback's: "stage" is the path the root
// package takes (filters.Request, Check, response wrappers, Finish), and
// "coraza" is Coraza's own http.WrapHandler over the very same coraza.WAF.

func okUpstream(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

// stageHandler does what the root package does around the stage.
func stageHandler(f *Filter, next http.Handler) http.Handler {
	peer := netip.MustParseAddrPort("127.0.0.1:40000")
	client := netip.MustParseAddr("198.51.100.20")
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := &filters.Request{HTTP: req, Peer: peer, Client: client, ClientPort: 51000,
			Key: filters.KeyOf(client, 64), Now: testNow, ID: "bench"}
		defer r.Finish()
		if v := f.Check(r); v.Deny && !v.Shadow {
			w.WriteHeader(v.StatusCode())
			return
		}
		next.ServeHTTP(r.ResponseWriter(w), req)
	})
}

// jsonBody returns a benign JSON document of about size bytes: an order
// with line items, five leaves each (2 KB is 144 leaves).
func jsonBody(size int) string {
	var b strings.Builder
	b.WriteString(`{"customer":{"id":"c-1842","name":"Ada Lovelace","email":"ada@example.com"},"items":[`)
	for i := 0; b.Len() < size-40; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","qty":%d,"price":%d.99,"gift":false,"color":"blue"}`, i, i%5+1, i%90+10)
	}
	b.WriteString(`],"note":"leave at the door"}`)
	return b.String()
}

type benchCase struct {
	name   string
	method string
	target string
	body   string
	hdr    map[string]string
	attack bool
}

func benignGET() benchCase {
	return benchCase{name: "GET", method: "GET", target: "/catalog/shoes?page=2&sort=price&color=blue", hdr: browserHeaders}
}

func benignJSONPost(size int) benchCase {
	return benchCase{name: fmt.Sprintf("JSON%dK", size/1024), method: "POST", target: "/api/orders", body: jsonBody(size), hdr: jsonHeaders()}
}

func (c benchCase) request() *http.Request {
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req := httptest.NewRequest(c.method, c.target, body)
	req.Host = "shop.example.com"
	req.RemoteAddr = "198.51.100.20:51000"
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	if c.body != "" {
		req.Header.Set("Content-Length", fmt.Sprint(len(c.body)))
	}
	return req
}

func runBench(b *testing.B, h http.Handler, c benchCase) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, c.request())
	want := http.StatusOK
	if c.attack {
		want = http.StatusForbidden
	}
	if rec.Code != want {
		b.Fatalf("%s: answered %d, want %d", c.name, rec.Code, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), c.request())
	}
}

func benchFilter(b *testing.B, cfg Config, opt engineOptions) *Filter {
	b.Helper()
	f, err := newFilter(cfg, filters.Env{}, opt)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkVsCoraza: the stage against Coraza's own middleware, same WAF.
func BenchmarkVsCoraza(b *testing.B) {
	f := benchFilter(b, Config{}, engineOptions{})
	up := http.HandlerFunc(okUpstream)
	for _, c := range []benchCase{benignGET(), benignJSONPost(2048)} {
		b.Run(c.name+"/coraza", func(b *testing.B) { runBench(b, txhttp.WrapHandler(f.waf, up), c) })
		b.Run(c.name+"/stage", func(b *testing.B) { runBench(b, stageHandler(f, up), c) })
	}
}

// BenchmarkParanoia: cost of paranoia levels 1 to 4.
func BenchmarkParanoia(b *testing.B) {
	up := http.HandlerFunc(okUpstream)
	for pl := 1; pl <= 4; pl++ {
		f := benchFilter(b, Config{Paranoia: pl, Mode: filters.ModeShadow}, engineOptions{})
		for _, c := range []benchCase{benignGET(), benignJSONPost(2048)} {
			b.Run(fmt.Sprintf("PL%d/%s", pl, c.name), func(b *testing.B) { runBench(b, stageHandler(f, up), c) })
		}
	}
}

// BenchmarkBodySize: cost of JSON bodies from 1 to 64 KB (64 KB is 4,679
// leaves, hence max_arguments).
func BenchmarkBodySize(b *testing.B) {
	f := benchFilter(b, Config{MaxArguments: 10000}, engineOptions{})
	up := http.HandlerFunc(okUpstream)
	for _, kb := range []int{1, 4, 16, 64} {
		c := benignJSONPost(kb * 1024)
		b.Run(c.name, func(b *testing.B) { runBench(b, stageHandler(f, up), c) })
	}
}

// BenchmarkSwitches: Coraza's and CRS's speed switches, one at a time.
// Multiphase evaluation is a build tag: run this benchmark again with
// -tags coraza.rule.multiphase_evaluation and compare "baseline".
func BenchmarkSwitches(b *testing.B) {
	up := http.HandlerFunc(okUpstream)
	off := false
	variants := []struct {
		name string
		cfg  Config
		opt  engineOptions
	}{
		{"baseline", Config{EarlyBlocking: &off}, engineOptions{}},
		{"early_blocking", Config{}, engineOptions{}},
	}
	for _, v := range variants {
		f := benchFilter(b, v.cfg, v.opt)
		// A scanner (913100, phase 1) sending a 16 KB body: what early
		// blocking is for.
		attack := benignJSONPost(8 << 10)
		attack.name, attack.attack = "scanner+JSON8K", true
		attack.hdr = map[string]string{"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"}
		for _, c := range []benchCase{benignGET(), benignJSONPost(2048), attack} {
			b.Run(v.name+"/"+c.name, func(b *testing.B) { runBench(b, stageHandler(f, up), c) })
		}
	}
}

// largeStringPost is a benign JSON document holding one string of about
// size bytes of English prose: the shape that makes CRS's cost per byte
// show (every rule that reads ARGS transforms and matches the whole value).
func largeStringPost(size int) benchCase {
	const sentence = "The committee will meet on Tuesday to review the quarterly figures and the plans for next year. "
	var b strings.Builder
	b.Grow(size + len(sentence) + 16)
	b.WriteString(`{"text":"`)
	for b.Len() < size {
		b.WriteString(sentence)
	}
	b.WriteString(`"}`)
	return benchCase{name: fmt.Sprintf("String%dK", size>>10), method: "POST", target: "/api/notes", body: b.String(), hdr: jsonHeaders()}
}

// BenchmarkLargeString: one JSON string of 64 KB and 1 MB, the stage against
// Coraza's own middleware over the same WAF (body_limit raised to hold it).
func BenchmarkLargeString(b *testing.B) {
	f := benchFilter(b, Config{BodyLimit: 2 << 20}, engineOptions{})
	up := http.HandlerFunc(okUpstream)
	for _, size := range []int{64 << 10, 1 << 20} {
		c := largeStringPost(size)
		b.Run(c.name+"/coraza", func(b *testing.B) { runBench(b, txhttp.WrapHandler(f.waf, up), c) })
		b.Run(c.name+"/stage", func(b *testing.B) { runBench(b, stageHandler(f, up), c) })
	}
}
