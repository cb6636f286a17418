package quota

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
)

func rate(s string) filters.Rate {
	r, err := filters.ParseRate(s)
	if err != nil {
		panic(err)
	}
	return r
}

func newReq(method, target string, now time.Time, hdr ...string) *filters.Request {
	h := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Header.Add(hdr[i], hdr[i+1])
	}
	addr := netip.MustParseAddr("192.0.2.7")
	return &filters.Request{HTTP: h, Client: addr, Key: filters.KeyOf(addr, 64), Now: now}
}

// proxied marks r as forwarded by a trusted L7 proxy, whose API key
// header is believed without a keys file (Config.Key).
func proxied(r *filters.Request) *filters.Request {
	r.Source = filters.SourceHeader
	return r
}

// keysFile writes a keys file listing keys and returns its path.
func keysFile(t testing.TB, keys ...string) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		h := HashKey(k)
		fmt.Fprintf(&b, "%x  %s\n", h[:], "label")
	}
	path := filepath.Join(t.TempDir(), "keys.sha256")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustNew(t testing.TB, cfg Config, env filters.Env) *Filter {
	t.Helper()
	f, err := New(cfg, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestValidate(t *testing.T) {
	good := Policy{Name: "default", Rate: rate("600/m"), Burst: 50}
	tests := []struct {
		name   string
		cfg    Config
		fields []string // FieldError paths expected, in order
	}{
		{"minimal", Config{Policies: []Policy{good}}, nil},
		{"no policies", Config{}, []string{"policies"}},
		{"bad store", Config{Store: "disk", Policies: []Policy{good}}, []string{"store"}},
		{"redis without addrs", Config{Store: StoreRedis, Policies: []Policy{good}}, []string{"redis.addrs"}},
		{"redis bad addr", Config{Store: StoreRedis, Redis: redisAddrs("nohost"), Policies: []Policy{good}}, []string{"redis.addrs[0]"}},
		{"bad on_error", Config{OnError: "panic", Policies: []Policy{good}}, []string{"on_error"}},
		{"bad mode", Config{Mode: "loud", Policies: []Policy{good}}, []string{"mode"}},
		{"bad key", Config{Key: []string{"ip", "query:x", "header:"}, Policies: []Policy{good}}, []string{"key[1]", "key[2]"}},
		{"duplicate key", Config{Key: []string{"header:x-api-key", "header:X-Api-Key"}, Policies: []Policy{good}}, []string{"key[1]"}},
		{"brace in prefix", Config{KeyPrefix: "a{b}", Policies: []Policy{good}}, []string{"key_prefix"}},
		{"policy errors", Config{Policies: []Policy{
			good,
			{Name: "default", Rate: rate("1/s")},
			{Name: "bad name!", Burst: 1},
			{Name: "tight", Rate: rate("1/s"), Burst: 2, Cost: 3},
			{Name: "m", Rate: rate("1/s"), Match: Match{PathPrefix: "api", Methods: []string{"get"}}},
			{Name: "t", Rate: rate("1/s"), Tiers: &Tiers{Header: "X-Plan", Values: map[string]TierLimit{"paid": {}}}},
		}}, []string{"policies[1].name", "policies[2].name", "policies[2].rate", "policies[3].burst",
			"policies[4].match.path_prefix", "policies[4].match.methods[0]", "policies[5].tiers.values.paid.rate"}},
		{"breaker", Config{Breaker: Breaker{Failures: -1, Backoff: filters.Duration(time.Minute), MaxBackoff: filters.Duration(time.Second)},
			Policies: []Policy{good}}, []string{"breaker.failures", "breaker.backoff"}},
		{"bad batch", Config{Batch: "yes", Policies: []Policy{good}}, []string{"batch"}},
		{"negative sizes", Config{FleetSize: -1, LocalCacheSize: -1, MaxKeys: -1, Policies: []Policy{good}},
			[]string{"fleet_size", "local_cache_size", "max_keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var got []string
			for _, fe := range filters.FieldErrors(err) {
				got = append(got, fe.Field)
			}
			if strings.Join(got, " ") != strings.Join(tt.fields, " ") {
				t.Errorf("fields = %v, want %v (err: %v)", got, tt.fields, err)
			}
		})
	}
}

// TestEnumTextForms pins the words of the config file: each typed value
// decodes from its documented text, and a config using it validates.
func TestEnumTextForms(t *testing.T) {
	tests := []struct {
		json    string
		store   StoreKind
		onError OnError
		kind    KeyKind
	}{
		{`{"store":"memory","on_error":"local","key":["ip"]}`, StoreMemory, OnErrorLocal, KeyIP},
		{`{"store":"redis","on_error":"allow","key":["header:X-Api-Key"]}`, StoreRedis, OnErrorAllow, KeyHeader},
		{`{"store":"memory","on_error":"deny","key":["cookie:session"]}`, StoreMemory, OnErrorDeny, KeyCookie},
	}
	for _, tc := range tests {
		var c Config
		if err := json.Unmarshal([]byte(tc.json), &c); err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		k, err := ParseKeySource(c.Key[0])
		if c.Store != tc.store || c.OnError != tc.onError || err != nil || k.Kind != tc.kind {
			t.Errorf("%s: store %q, on_error %q, key kind %q (%v); want %q, %q, %q", tc.json, c.Store, c.OnError, k.Kind, err, tc.store, tc.onError, tc.kind)
		}
		c.Redis = redisAddrs("127.0.0.1:6379")
		c.Policies = []Policy{{Name: "default", Rate: rate("600/m")}}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", tc.json, err)
		}
	}
}

func TestParseKeySource(t *testing.T) {
	tests := []struct {
		in   string
		want KeySource
		err  bool
	}{
		{"ip", KeySource{Kind: "ip"}, false},
		{"header:x-api-key", KeySource{Kind: "header", Name: "X-Api-Key"}, false},
		{"cookie:session_id", KeySource{Kind: "cookie", Name: "session_id"}, false},
		{"header:", KeySource{}, true},
		{"cookie:a b", KeySource{}, true},
		{"IP", KeySource{}, true},
		{"query:key", KeySource{}, true},
		{"header:a:b", KeySource{}, true},
	}
	for _, tt := range tests {
		got, err := ParseKeySource(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseKeySource(%q) = %+v, %v; want %+v, err %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrKeySource) {
			t.Errorf("ParseKeySource(%q): error %v does not wrap ErrKeySource", tt.in, err)
		}
	}
}

// TestCheckHeaders pins the draft-ietf-httpapi-ratelimit-headers-10 fields
// and the 429 with a Retry-After not below t.
func TestCheckHeaders(t *testing.T) {
	f := mustNew(t, Config{Policies: []Policy{{Name: "default", Rate: rate("10/s"), Burst: 3}}}, filters.Env{})
	steps := []struct {
		at         time.Duration
		deny       bool
		policy     string
		state      string
		retryAfter time.Duration
	}{
		{0, false, `"default";q=3;w=1`, `"default";r=2;t=1`, 0},
		{0, false, `"default";q=3;w=1`, `"default";r=1;t=1`, 0},
		{0, false, `"default";q=3;w=1`, `"default";r=0;t=1`, 0},
		{0, true, `"default";q=3;w=1`, `"default";r=0;t=1`, 100 * ms},
		{100 * ms, false, `"default";q=3;w=1`, `"default";r=0;t=1`, 0},
	}
	for i, st := range steps {
		v := f.Check(newReq("GET", "/x", t0.Add(st.at)))
		if v.Deny != st.deny {
			t.Fatalf("step %d: deny = %v, want %v", i, v.Deny, st.deny)
		}
		if got := v.Headers.Get("RateLimit-Policy"); got != st.policy {
			t.Errorf("step %d: RateLimit-Policy %q, want %q", i, got, st.policy)
		}
		if got := v.Headers.Get("RateLimit"); got != st.state {
			t.Errorf("step %d: RateLimit %q, want %q", i, got, st.state)
		}
		if st.deny {
			if v.Status != http.StatusTooManyRequests || v.Reason != "quota default" || v.RetryAfter != st.retryAfter {
				t.Errorf("step %d: deny %d %q retry %v, want 429 \"quota default\" %v", i, v.Status, v.Reason, v.RetryAfter, st.retryAfter)
			}
		}
	}
}

func TestCheckPolicies(t *testing.T) {
	cfg := Config{
		Key:      []string{"header:X-API-Key", "cookie:sid", "ip"},
		KeysFile: keysFile(t, "k1", "k1p", "k2", "k3", "k4", "s1"),
		Policies: []Policy{
			{Name: "all", Rate: rate("100/s"), Burst: 100},
			{Name: "writes", Rate: rate("1/m"), Burst: 1, Match: Match{Methods: []string{"POST"}, PathPrefix: "/api/", Host: "api.example"}},
			{Name: "plans", Rate: rate("1/m"), Burst: 1, Tiers: &Tiers{Header: "X-Plan", Values: map[string]TierLimit{"paid": {Rate: rate("100/m"), Burst: 3}}}},
		},
	}
	f := mustNew(t, cfg, filters.Env{})
	now := t0
	req := func(method, target, host string, hdr ...string) filters.Verdict {
		r := newReq(method, target, now, hdr...)
		r.HTTP.Host = host
		return f.Check(r)
	}
	// viaProxy is a request forwarded by a trusted proxy, whose tier header
	// counts.
	viaProxy := func(method, target, host string, hdr ...string) filters.Verdict {
		r := newReq(method, target, now, hdr...)
		r.HTTP.Host = host
		r.Source = filters.SourceHeader
		return f.Check(r)
	}

	// Only "all" and "plans" match a GET; "plans" admits one per minute on
	// the free tier.
	v := req("GET", "/", "x", "X-API-Key", "k1")
	if v.Deny || v.Headers.Get("RateLimit-Policy") != `"all";q=100;w=1, "plans";q=1;w=60` {
		t.Fatalf("first GET: %+v", v)
	}
	if v := req("GET", "/", "x", "X-API-Key", "k1"); !v.Deny || v.Reason != "quota plans" {
		t.Fatalf("second free GET: %+v, want deny by plans", v)
	}
	// The paid tier, named by a trusted proxy, has its own limit
	// (TestTiers pins whose word counts and the count tiers share).
	if v := viaProxy("GET", "/", "x", "X-API-Key", "k1p", "X-Plan", "paid"); v.Deny || !strings.Contains(v.Headers.Get("RateLimit-Policy"), `"plans";q=3;w=2`) {
		t.Fatalf("paid GET: %+v", v)
	}
	// Another API key is another client; the cookie and the ip are not
	// consulted while the header is present.
	if v := req("GET", "/", "x", "X-API-Key", "k2"); v.Deny {
		t.Fatalf("k2: %+v", v)
	}
	// POST /api/ on api.example:443 matches "writes" too.
	if v := req("POST", "/api/items", "API.example:443", "X-API-Key", "k3"); v.Deny || !strings.Contains(v.Headers.Get("RateLimit-Policy"), `"writes"`) {
		t.Fatalf("first write: %+v", v)
	}
	if v := req("POST", "/api/items", "api.example", "X-API-Key", "k3", "X-Plan", "paid"); !v.Deny || v.Reason != "quota writes" {
		t.Fatalf("second write: %+v", v)
	}
	if v := req("POST", "/other", "api.example", "X-API-Key", "k4"); strings.Contains(v.Headers.Get("RateLimit-Policy"), `"writes"`) {
		t.Fatalf("write outside /api/ matched writes: %+v", v)
	}
	// Falling back to the cookie, then to the ip.
	if v := req("GET", "/", "x", "Cookie", "sid=s1"); v.Deny {
		t.Fatalf("cookie client: %+v", v)
	}
	if v := req("GET", "/", "x"); v.Deny {
		t.Fatalf("ip client: %+v", v)
	}
	if v := req("GET", "/", "x"); !v.Deny {
		t.Fatalf("ip client again: %+v, want deny by plans", v)
	}
}

func TestNoKeyNoQuota(t *testing.T) {
	f := mustNew(t, Config{Key: []string{"header:X-API-Key"}, Policies: []Policy{{Name: "p", Rate: rate("1/h"), Burst: 1}}}, filters.Env{})
	for i := range 3 {
		if v := f.Check(newReq("GET", "/", t0)); v.Deny || len(v.Headers) != 0 {
			t.Fatalf("request %d without a key: %+v", i, v)
		}
	}
}

func TestShadow(t *testing.T) {
	// A policy on trial: its deny is a shadow deny, the enforced policy
	// still counts the request.
	f := mustNew(t, Config{Policies: []Policy{
		{Name: "enforced", Rate: rate("1/s"), Burst: 2},
		{Name: "trial", Rate: rate("1/m"), Burst: 1, Mode: filters.ModeShadow},
	}}, filters.Env{})
	if v := f.Check(newReq("GET", "/", t0)); v.Deny {
		t.Fatalf("first: %+v", v)
	}
	v := f.Check(newReq("GET", "/", t0))
	if !v.Deny || !v.Shadow || v.Reason != "quota trial" || v.Headers.Get("RateLimit") != `"enforced";r=0;t=2, "trial";r=0;t=60` {
		t.Fatalf("second: %+v, want a shadow deny by trial with enforced at r=0", v)
	}
	v = f.Check(newReq("GET", "/", t0))
	if !v.Deny || v.Shadow || v.Reason != "quota enforced" {
		t.Fatalf("third: %+v, want an enforced deny", v)
	}

	// The whole stage in shadow: denies are marked, so the chain lets them pass.
	f = mustNew(t, Config{Mode: filters.ModeShadow, Policies: []Policy{{Name: "p", Rate: rate("1/s"), Burst: 1}}}, filters.Env{})
	chain := filters.NewChain([]filters.Stage{{Filter: f, Mode: filters.ModeShadow}}, nil, nil)
	chain.Run(newReq("GET", "/", t0))
	out := chain.Run(newReq("GET", "/", t0))
	if out.Deny || out.Headers.Get("RateLimit") != `"p";r=0;t=1` {
		t.Fatalf("shadow stage: %+v, want allow with the enforced headers", out)
	}
}

func TestMetricsAndReload(t *testing.T) {
	cfg := Config{Policies: []Policy{{Name: "p", Rate: rate("1/m"), Burst: 1}}}
	f := mustNew(t, cfg, filters.Env{})
	f.Check(newReq("GET", "/", t0))
	f.Check(newReq("GET", "/", t0))
	f.Check(newReq("GET", "/", t0.Add(time.Second))) // from the over-limit cache
	got := map[string]float64{}
	f.CollectMetrics(func(s filters.Sample) {
		got[s.Name+strings.Join(s.Labels, ",")] = s.Value
	})
	for k, want := range map[string]float64{
		"quota_decisions_totalresult,allow": 1,
		"quota_decisions_totalresult,deny":  2,
		"quota_cache_hits_total":            1,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	// A reload keeps the memory store: the client stays over its quota.
	g := mustNew(t, cfg, filters.Env{Previous: f})
	_ = f.Close()
	if v := g.Check(newReq("GET", "/", t0.Add(2*time.Second))); !v.Deny {
		t.Fatalf("after reload: %+v, want the client still denied", v)
	}
}

func FuzzParseKeySource(f *testing.F) {
	for _, s := range []string{"ip", "header:X-API-Key", "cookie:sid", "header:", "cookie:a b", "query:x", "header:a:b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKeySource(s)
		if err != nil {
			if !errors.Is(err, ErrKeySource) {
				t.Fatalf("error %v does not wrap ErrKeySource", err)
			}
			return
		}
		// What parses prints back to a form that parses to the same source.
		again, err := ParseKeySource(k.String())
		if err != nil || again != k {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, k, k.String(), again, err)
		}
	})
}

// FuzzDecide checks GCRA invariants over arbitrary sequences: remaining
// never exceeds the burst, a deny changes nothing, and over any run no more
// than burst + elapsed/interval units are admitted.
func FuzzDecide(f *testing.F) {
	f.Add(int64(100_000), int64(3), []byte{1, 1, 1, 1, 0, 200, 3})
	f.Add(int64(1), int64(1), []byte{0, 0, 0})
	f.Add(int64(1_000_000), int64(10), []byte{5, 0, 5, 0, 1, 255})
	f.Fuzz(func(t *testing.T, iv, burst int64, steps []byte) {
		if iv < 1 || iv > 10_000_000 || burst < 1 || burst > 1000 || len(steps) > 500 {
			return
		}
		s := NewMemoryStore(0)
		lim := every(time.Duration(iv)*time.Microsecond, burst)
		now := t0
		admitted := int64(0)
		res := make([]Result, 1)
		shard := &s.shards[s.shardOf("{k}")]
		for i, b := range steps {
			cost := int64(b%4) + 1
			now = now.Add(time.Duration(b/4) * time.Duration(iv) * time.Microsecond / 8)
			tat := shard.tats["{k}"]
			ok, err := s.TakeAt(now, []Ask{{Key: "{k}", Limit: lim, Cost: cost}}, res)
			if !ok && shard.tats["{k}"] != tat {
				t.Fatalf("step %d: a deny moved the TAT from %d to %d", i, tat, shard.tats["{k}"])
			}
			if cost > burst {
				if ok || err != nil {
					t.Fatalf("step %d: cost %d above burst %d admitted (err %v)", i, cost, burst, err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			if r.Remaining < 0 || r.Remaining > burst {
				t.Fatalf("step %d: remaining %d outside [0,%d]", i, r.Remaining, burst)
			}
			if ok {
				admitted += cost
				if r.RetryAfter != 0 {
					t.Fatalf("step %d: allowed with retry %v", i, r.RetryAfter)
				}
			} else if r.RetryAfter <= 0 {
				t.Fatalf("step %d: denied with retry %v", i, r.RetryAfter)
			}
		}
		elapsed := now.Sub(t0).Microseconds()
		if limit := burst + elapsed/iv; admitted > limit {
			t.Fatalf("admitted %d units in %dµs; at most %d allowed", admitted, elapsed, limit)
		}
	})
}

func redisAddrs(a ...string) redisconf.Config { return redisconf.Config{Addrs: a} }

// TestTiers: the tier header is believed only from a trusted L7 proxy
// (Source header), and all tiers of a policy share one count per client,
// so switching tiers spends from one account instead of opening another.
func TestTiers(t *testing.T) {
	f := mustNew(t, Config{Key: []string{"header:X-API-Key"}, KeysFile: keysFile(t, "a", "b", "c", "d"), Policies: []Policy{
		{Name: "plans", Rate: rate("1/m"), Burst: 1, Tiers: &Tiers{Header: "X-Plan", Values: map[string]TierLimit{
			"paid": {Rate: rate("100/m"), Burst: 3}, // 600ms interval, 1.8s window
		}}},
	}}, filters.Env{})
	const free, paid = `"plans";q=1;w=60`, `"plans";q=3;w=2`
	steps := []struct {
		name   string
		key    string
		source filters.Source
		plan   string
		at     time.Duration
		deny   bool
		policy string
		retry  time.Duration
	}{
		// A client talking to us directly, or through a PROXY-protocol
		// balancer (which passes no headers of its own), cannot pick a tier.
		{"direct client claims paid", "a", filters.SourcePeer, "paid", 0, false, free, 0},
		{"direct client claims paid again", "a", filters.SourcePeer, "paid", 0, true, free, time.Minute},
		{"client behind PROXY protocol claims paid", "b", filters.SourceProxy, "paid", 0, false, free, 0},
		{"client behind PROXY protocol claims paid again", "b", filters.SourceProxy, "paid", 0, true, free, time.Minute},
		// Through a trusted proxy the header counts.
		{"proxied paid 1", "c", filters.SourceHeader, "paid", 0, false, paid, 0},
		{"proxied paid 2", "c", filters.SourceHeader, "paid", 0, false, paid, 0},
		{"proxied paid 3", "c", filters.SourceHeader, "paid", 0, false, paid, 0},
		// The free tier spends from the same account: the paid requests left
		// 1.8s of debt, one free request needs 60s, the window is 60s.
		{"proxied switch to free", "c", filters.SourceHeader, "", 0, true, free, 1800 * ms},
		{"proxied switch back to paid", "c", filters.SourceHeader, "paid", 0, true, paid, 600 * ms},
		// Moving to a tier with a shorter window waits for the debt to fit.
		{"proxied free", "d", filters.SourceHeader, "", 0, false, free, 0},
		{"proxied upgrade to paid", "d", filters.SourceHeader, "paid", 0, true, paid, 58800 * ms},
		{"proxied paid once the debt fits", "d", filters.SourceHeader, "paid", 58800 * ms, false, paid, 0},
	}
	for _, st := range steps {
		r := newReq("GET", "/", t0.Add(st.at), "X-API-Key", st.key)
		if st.plan != "" {
			r.HTTP.Header.Set("X-Plan", st.plan)
		}
		r.Source = st.source
		v := f.Check(r)
		if v.Deny != st.deny || v.Headers.Get("RateLimit-Policy") != st.policy || v.RetryAfter != st.retry {
			t.Errorf("%s: deny=%v policy %q retry %v; want deny=%v policy %q retry %v",
				st.name, v.Deny, v.Headers.Get("RateLimit-Policy"), v.RetryAfter, st.deny, st.policy, st.retry)
		}
	}
}

// TestMatchNormalForms: a path or host spelled another way that reaches the
// same upstream route matches the same policies.
func TestMatchNormalForms(t *testing.T) {
	f := mustNew(t, Config{Policies: []Policy{
		{Name: "api", Rate: rate("1/h"), Burst: 1, Match: Match{PathPrefix: "/api/", Host: "api.example.com"}},
		{Name: "v6", Rate: rate("1/h"), Burst: 1, Match: Match{Host: "[2001:db8::1]"}},
		{Name: "fqdn", Rate: rate("1/h"), Burst: 1, Match: Match{Host: "Admin.Example.com."}},
		{Name: "search", Rate: rate("1/h"), Burst: 1, Match: Match{PathPrefix: "/search", Host: "shop.example"}},
	}}, filters.Env{})
	tests := []struct {
		path, host string
		want       string // the policies matched, as in RateLimit-Policy
	}{
		{"/api/x", "api.example.com", "api"},
		{"//api/x", "api.example.com", "api"},
		{"/x/../api/x", "api.example.com", "api"},
		{"/./api/x", "api.example.com", "api"},
		{"/api//x", "api.example.com", "api"},
		{"/api/", "api.example.com", "api"},
		{"/api/x/", "api.example.com", "api"},
		{"api/x", "api.example.com", "api"},
		{"/api/x", "API.Example.COM", "api"},
		{"/api/x", "api.example.com.", "api"},
		{"/api/x", "api.example.com:8443", "api"},
		{"/api/x", "api.example.com.:443", "api"},
		{"/api", "api.example.com", ""},
		{"/apix", "api.example.com", ""},
		{"/api/../x", "api.example.com", "api"}, // sent under /api/: a backend that resolves nothing routes it there
		{"/api/x", "api.example.com.evil", ""},
		{"/api/x", "other.example.com", ""},
		{"/", "[2001:db8::1]:8080", "v6"},
		{"/", "[2001:DB8:0::1]", "v6"},
		{"/", "2001:db8::1", "v6"},
		{"/", "[2001:db8::2]", ""},
		{"/", "admin.example.com", "fqdn"},
		{"/", "ADMIN.example.com.:80", "fqdn"},
		// The spellings backends serve as the same resource (issue #11).
		{"/search", "shop.example", "search"},
		{"/SEARCH", "shop.example", "search"},
		{"/Search.json", "shop.example", "search"},
		{"/search ", "shop.example", "search"},
		{"/searches", "shop.example", "search"}, // path_prefix is a plain prefix
		{"/API/x", "api.example.com", "api"},
		{"/sea", "shop.example", ""},
	}
	for _, tt := range tests {
		r := newReq("GET", "/", t0)
		r.HTTP.URL.Path, r.HTTP.Host = tt.path, tt.host
		v := f.Check(r)
		var got []string
		for item := range strings.SplitSeq(v.Headers.Get("RateLimit-Policy"), ", ") {
			if name, _, ok := strings.Cut(item, ";"); ok {
				got = append(got, strings.Trim(name, `"`))
			}
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("path %q host %q matched %q, want %q", tt.path, tt.host, got, tt.want)
		}
	}
}

// TestLocalShareStaysDecidable: on_error local's per-node share of a valid
// policy is always an ask the local store can decide, however large the
// fleet, and it is never looser than the policy's share except where the
// interval had to be cut for one request's cost to fit.
func TestLocalShareStaysDecidable(t *testing.T) {
	const day = 24 * time.Hour
	span := time.Duration(maxSpan) * time.Microsecond
	tests := []struct {
		name        string
		limit       filters.Limit
		cost, fleet int64
		want        filters.Limit
	}{
		{"plain share", every(time.Second, 10), 1, 3, every(3*time.Second, 4)},
		{"cost above the burst share", every(time.Second, 10), 5, 3, every(3*time.Second, 5)},
		{"lone node", every(day, 366), 1, 1, every(day, 366)},
		{"burst cut to the span", every(day, 366), 1, 4, every(4*day, 91)},
		{"interval cut for the cost", every(day, 300), 200, 10, every(span/200, 200)},
		{"huge fleet", every(time.Second, 10), 1, 1 << 40, every(span, 1)},
	}
	for _, tt := range tests {
		got := localShare(tt.limit, tt.cost, tt.fleet)
		if got != tt.want {
			t.Errorf("%s: localShare(%+v, cost %d, fleet %d) = %+v, want %+v", tt.name, tt.limit, tt.cost, tt.fleet, got, tt.want)
		}
		if err := checkAsks([]Ask{{Key: "k", Limit: got, Cost: tt.cost}}, make([]Result, 1)); err != nil {
			t.Errorf("%s: the share is not decidable: %v", tt.name, err)
		}
	}
}
