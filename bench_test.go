package edgeguard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkBannedClient prices a banned client's request with reputation
// first in the chain and last, beside a clean request that runs the WAF,
// all in one run. The point of the default order: a banned client must
// cost a small fraction of a WAF evaluation (the bound: 1/50).
func BenchmarkBannedClient(b *testing.B) {
	const stagesCfg = `
volumetric: {rate: "1000000/s", burst: 1000000}
waf: {paranoia: 1}
quota: {store: memory, key: [ip], policies: [{name: p, rate: "1000000/s"}]}
log: {access: false}
`
	browserGET := func(remote string) *http.Request {
		r := httptest.NewRequest("GET", "http://shop.example.com/products/42?ref=home", nil)
		r.RemoteAddr = remote
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		r.Header.Set("Accept-Language", "en-US,en;q=0.5")
		r.Header.Set("Accept-Encoding", "gzip, deflate, br")
		r.Header.Set("Cookie", "session=3f2a9c; theme=dark")
		return r
	}
	for _, bc := range []struct {
		name   string
		stages string
		client string
		want   int
	}{
		{"banned/reputation-first", "[reputation, volumetric, waf, quota]", "192.0.2.66:1000", 403},
		{"banned/reputation-last", "[volumetric, waf, quota, reputation]", "192.0.2.66:1000", 403},
		{"clean/runs-the-waf", "[reputation, volumetric, waf, quota]", "192.0.2.7:1000", 200},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := mustGuard(b, "stages: "+bc.stages+"\n"+stagesCfg)
			ban := netip.MustParsePrefix("192.0.2.66/32")
			if _, err := g.reputation.BanAt(time.Now(), ban, time.Hour, "bench"); err != nil {
				b.Fatal(err)
			}
			h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, browserGET(bc.client))
				if w.Code != bc.want {
					b.Fatalf("status %d, want %d", w.Code, bc.want)
				}
			}
		})
	}
}
