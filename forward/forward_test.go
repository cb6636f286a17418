package forward

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	proxyproto "github.com/pires/go-proxyproto"
)

func TestHeadersToUpstream(t *testing.T) {
	got := make(chan http.Header, 1)
	b := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		got <- h
	})
	f := newForwarder(t, Config{Upstream: b.url()}, Env{})
	fr := clientReq("203.0.113.7")
	fr.ID = "id-123"
	r := httptest.NewRequest("GET", "http://shop.example.com/cart?x=1", nil)
	r.Header.Set("X-Real-IP", "6.6.6.6")
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	r.Header.Set("X-Forwarded-Host", "evil.example")
	r.Header.Set("X-Forwarded-Proto", "gopher")
	r.Header.Set("X-Request-Id", "client-chosen")
	r.Header.Set("Forwarded", "for=6.6.6.6")
	r = r.WithContext(filters.WithRequest(r.Context(), fr))
	w := httptest.NewRecorder()
	f.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	h := <-got
	want := map[string]string{
		"X-Real-Ip":         "203.0.113.7",
		"X-Forwarded-For":   "203.0.113.7, 10.0.0.1",
		"X-Forwarded-Host":  "shop.example.com",
		"X-Forwarded-Proto": "http",
		"X-Request-Id":      "id-123",
		"Forwarded":         "",
		"Host":              b.addr,
	}
	for k, v := range want {
		if g := strings.Join(h.Values(k), ","); g != v {
			t.Errorf("upstream %s = %q, want %q", k, g, v)
		}
	}
	if g := w.Header().Get("X-Request-Id"); g != "id-123" {
		t.Errorf("response X-Request-Id = %q, want id-123", g)
	}
}

func TestPreserveHost(t *testing.T) {
	got := make(chan string, 1)
	b := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { got <- r.Host })
	f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {Backends: []string{b.url()}, PreserveHost: true}},
		Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{})
	do(f, "GET", "http://shop.example.com/", nil, clientReq("203.0.113.7"))
	if h := <-got; h != "shop.example.com" {
		t.Fatalf("Host %q, want the client's", h)
	}
}

func TestUpstreamDownIs502Once(t *testing.T) {
	logs := &countingHandler{level: slog.LevelWarn}
	f := newForwarder(t, Config{Upstream: "http://" + deadAddr(t)}, Env{Logger: slog.New(logs)})
	fr := clientReq("203.0.113.7")
	start := time.Now()
	w := do(f, "POST", "/order", []byte(`{"sku":1}`), fr)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("took %v: a dead upstream must not hang the client", took)
	}
	if w.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", w.Code)
	}
	if !strings.Contains(w.Body.String(), fr.ID) {
		t.Fatalf("body %q does not name request id %s", w.Body.String(), fr.ID)
	}
	if n := logs.count("upstream request failed"); n != 1 {
		t.Fatalf("%d log lines for one failed request, want 1 (%v)", n, logs.msgs)
	}
}

func TestAllDownIs503AtOnce(t *testing.T) {
	b1 := startBackend(t, "a", nil)
	b2 := startBackend(t, "b", nil)
	now := t0
	f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {Backends: []string{b1.url(), b2.url()},
		HealthCheck: HealthCheck{Path: "/healthz", Interval: filters.Duration(time.Hour), Timeout: filters.Duration(time.Second),
			HealthyThreshold: 2, UnhealthyThreshold: 1}}},
		Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{Clock: func() time.Time { return now }})
	p := f.byPool["web"]
	waitFor(t, 10*time.Second, "the first checks", func() bool { return b1.hits.Load() > 0 && b2.hits.Load() > 0 })
	for _, b := range p.backends {
		b.recordCheck(false, now)
	}
	hits := b1.hits.Load() + b2.hits.Load()
	start := time.Now()
	w := do(f, "GET", "/", nil, clientReq("203.0.113.7"))
	// Not contacting a backend is checked below by their hit counts; a
	// request that waited for a check instead would wait for the next one,
	// an hour away. The bound tells those apart on any machine.
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v, want an immediate answer", took)
	}
	if w.Code != 503 || w.Header().Get("Retry-After") != "7200" {
		t.Fatalf("got %d Retry-After %q, want 503 and 7200 (two check intervals)", w.Code, w.Header().Get("Retry-After"))
	}
	if b1.hits.Load()+b2.hits.Load() != hits {
		t.Fatal("a backend was contacted")
	}
	p.backends[1].recordCheck(true, now)
	p.backends[1].recordCheck(true, now)
	if w := do(f, "GET", "/", nil, clientReq("203.0.113.7")); w.Code != 200 || w.Header().Get("X-Backend") != "b" {
		t.Fatalf("after two passing checks: %d from %q, want 200 from b", w.Code, w.Header().Get("X-Backend"))
	}
}

func TestRetryOnFailedConnect(t *testing.T) {
	live := startBackend(t, "live", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body) // echo
	})
	f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {
		Backends: []string{"http://" + deadAddr(t), live.url()},
		Outlier:  Outlier{Failures: 100}, // keep the dead one in rotation: every other request meets it
	}}, Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{})
	for i := range 10 {
		body := []byte(strings.Repeat("x", 100+i))
		w := do(f, "POST", "/order", body, clientReq("203.0.113.7"))
		if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), body) {
			t.Fatalf("request %d: %d %q, want 200 with the body echoed", i, w.Code, w.Body.String())
		}
	}
	// Smooth round robin gives the dead backend every other first try: the
	// retry to the live one counts as the live one's turn, so the next
	// request starts there. Every try of the dead one was retried.
	if r := f.byPool["web"].retries.Load(); r != 5 {
		t.Fatalf("%d retries, want 5", r)
	}
}

// hangUp reads the request and closes the connection without an answer: the
// request reached the backend, which may have acted on it.
func hangUp(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestRetryAfterSendOnlyIdempotentAndAllowed(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		body       []byte
		idempotent bool
		want       int
	}{
		{"GET allowed", "GET", nil, true, 200},
		{"GET not allowed", "GET", nil, false, 502},
		{"POST never", "POST", []byte("pay"), true, 502},
		{"PUT with a body is not replayed", "PUT", []byte("x"), true, 502},
		{"DELETE allowed", "DELETE", nil, true, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := startBackend(t, "bad", hangUp)
			good := startBackend(t, "good", nil)
			f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {
				Backends: []string{bad.url(), good.url()},
				Retry:    Retry{Idempotent: tt.idempotent},
			}}, Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{})
			w := do(f, tt.method, "/", tt.body, clientReq("203.0.113.7")) // round robin: bad first
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if bad.hits.Load() != 1 {
				t.Fatalf("bad backend hits %d, want 1", bad.hits.Load())
			}
		})
	}
}

func TestPassiveEjectionOnGatewayFailure(t *testing.T) {
	sick := startBackend(t, "sick", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	well := startBackend(t, "well", nil)
	now := t0
	f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {
		Backends: []string{sick.url(), well.url()},
		Outlier:  Outlier{Failures: 3, Window: filters.Duration(time.Second), Ejection: filters.Duration(time.Minute)},
	}}, Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{Clock: func() time.Time { return now }})
	for range 6 {
		do(f, "GET", "/", nil, clientReq("203.0.113.7"))
	}
	if sick.hits.Load() != 3 {
		t.Fatalf("sick backend got %d requests, want 3 (then ejected)", sick.hits.Load())
	}
	for range 10 {
		if w := do(f, "GET", "/", nil, clientReq("203.0.113.7")); w.Code != 200 {
			t.Fatalf("status %d after ejection", w.Code)
		}
	}
	if sick.hits.Load() != 3 {
		t.Fatalf("ejected backend got traffic: %d", sick.hits.Load())
	}
	now = t0.Add(time.Minute)
	do(f, "GET", "/", nil, clientReq("203.0.113.7"))
	do(f, "GET", "/", nil, clientReq("203.0.113.7"))
	if sick.hits.Load() != 4 {
		t.Fatalf("after the back-off the backend should be tried again: %d", sick.hits.Load())
	}
}

// Kill one of three backends under load: requests keep succeeding (failed
// connects are retried), the backend is ejected passively, active checks
// keep it out while it is dead and bring it back once it is up again.
func TestKillBackendUnderLoad(t *testing.T) {
	var bs []*testBackend
	var urls []string
	for _, n := range []string{"a", "b", "c"} {
		b := startBackend(t, n, nil)
		bs = append(bs, b)
		urls = append(urls, b.url())
	}
	f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {
		Backends: urls,
		// The dead backend refuses connections, so its checks fail at
		// once; the timeout only has to spare live backends on a loaded
		// machine.
		HealthCheck: HealthCheck{Path: "/healthz", Interval: filters.Duration(500 * time.Millisecond),
			Timeout: filters.Duration(400 * time.Millisecond), HealthyThreshold: 2, UnhealthyThreshold: 2},
		// A long back-off: only the active checks can bring it back in
		// this test's time.
		Outlier: Outlier{Failures: 3, Window: filters.Duration(time.Second), Ejection: filters.Duration(time.Hour), MaxEjection: filters.Duration(time.Hour)},
		Retry:   Retry{Attempts: 3},
	}}, Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{})
	victim := f.byPool["web"].backends[1]

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// A wait below that fails ends the test; the load must end with it,
	// or it runs on under every later test of the package.
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()
	var mu sync.Mutex
	var failures []string
	var slowest time.Duration
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				w := do(f, "GET", "/", nil, clientReq("203.0.113.7"))
				took := time.Since(start)
				mu.Lock()
				slowest = max(slowest, took)
				if w.Code != 200 {
					failures = append(failures, w.Body.String())
				}
				mu.Unlock()
			}
		})
	}
	waitFor(t, 10*time.Second, "traffic on every backend", func() bool { return bs[1].hits.Load() > 10 })
	bs[1].kill()
	waitFor(t, 10*time.Second, "passive ejection", func() bool { return victim.ejections.Load() >= 1 })
	waitFor(t, 10*time.Second, "active checks marking it down", func() bool { return !victim.up.Load() })
	hitsWhileDead := bs[1].hits.Load()
	bs[1].revive(t)
	waitFor(t, 10*time.Second, "active checks bringing it back", func() bool { return victim.available(time.Now().UnixNano()) })
	waitFor(t, 10*time.Second, "traffic on the revived backend", func() bool { return bs[1].hits.Load() > hitsWhileDead+10 })
	halt()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed while a backend died, first: %q", len(failures), failures[0])
	}
	// Refused connects are retried at once (failures above); this bound
	// only catches a request that hangs, and stays far from a loaded
	// machine's scheduling.
	if slowest > 5*time.Second {
		t.Fatalf("slowest request took %v", slowest)
	}
	t.Logf("retries %d, slowest request %v", f.byPool["web"].retries.Load(), slowest)
}

func TestProxyProtocolV2ToBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := &proxyproto.Listener{Listener: ln, ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
		return proxyproto.REQUIRE, nil
	}}
	seen := make(chan string, 10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		seen <- r.RemoteAddr
	})}
	go srv.Serve(pl)
	t.Cleanup(func() { srv.Close() })

	f := newForwarder(t, Config{Upstreams: map[string]Pool{"l4": {
		Backends:      []string{"http://" + ln.Addr().String()},
		ProxyProtocol: true,
		// A timeout a loaded machine does not reach: a check fails when the
		// backend refuses it.
		HealthCheck: HealthCheck{Path: "/healthz", Interval: filters.Duration(500 * time.Millisecond), Timeout: filters.Duration(400 * time.Millisecond)},
	}}, Routes: []Route{{Path: "/", Upstream: "l4"}}}, Env{})
	for _, c := range []struct{ client, want string }{
		{"203.0.113.7", "203.0.113.7:40000"},
		{"2001:db8::5", "[2001:db8::5]:40000"},
		{"198.51.100.1", "198.51.100.1:40000"}, // a new connection per client
	} {
		w := do(f, "GET", "/", nil, clientReq(c.client))
		if w.Code != 200 {
			t.Fatalf("%s: status %d %s", c.client, w.Code, w.Body.String())
		}
		if got := <-seen; got != c.want {
			t.Fatalf("backend saw %s, want %s", got, c.want)
		}
	}
	// Health checks open with a LOCAL header, which the backend accepts:
	// two of them pass in a row (a failing one would reset the count).
	b := f.byPool["l4"].backends[0]
	waitFor(t, 10*time.Second, "two passing health checks", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.checkOK >= 2
	})
	if !b.up.Load() {
		t.Fatal("health checks with a LOCAL header failed")
	}
}

func TestAdminUpstreamsAndMetrics(t *testing.T) {
	b := startBackend(t, "a", nil)
	f := newForwarder(t, Config{
		Upstreams: map[string]Pool{"web": {Backends: []string{b.url(), "http://" + deadAddr(t)}, Balance: LeastOutstanding}},
		Routes: []Route{
			{Name: "checkout", Path: "/checkout", Upstream: "web", Shield: Shield{MaxInFlight: 5, Queue: 7}},
			{Name: "rest", Path: "/", Upstream: "web"},
		},
	}, Env{})
	do(f, "GET", "/checkout", nil, clientReq("203.0.113.7"))
	srv := httptest.NewServer(f.AdminHandler())
	defer srv.Close()
	// The console reads in_flight and queued as fill of the shield's sizes.
	rresp, err := http.Get(srv.URL + "/v1/routes")
	if err != nil {
		t.Fatal(err)
	}
	var routes struct{ Routes []RouteStatus }
	json.NewDecoder(rresp.Body).Decode(&routes)
	rresp.Body.Close()
	wantRoutes := []RouteStatus{
		{Name: "checkout", Upstream: "web", MaxInFlight: 5, QueueSize: 7},
		{Name: "rest", Upstream: "web"},
	}
	if !reflect.DeepEqual(routes.Routes, wantRoutes) {
		t.Errorf("GET /v1/routes = %+v, want %+v", routes.Routes, wantRoutes)
	}
	resp, err := http.Get(srv.URL + "/v1/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Upstreams []PoolStatus }
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if len(got.Upstreams) != 1 || got.Upstreams[0].Name != "web" || got.Upstreams[0].Balance != LeastOutstanding ||
		len(got.Upstreams[0].Backends) != 2 || got.Upstreams[0].Backends[0].URL != b.url() {
		t.Fatalf("GET /v1/upstreams = %+v", got)
	}
	var names []string
	f.CollectMetrics(func(s filters.Sample) {
		names = append(names, s.Name)
		for i := 0; i < len(s.Labels); i += 2 {
			switch s.Labels[i] {
			case "pool", "backend", "route", "reason":
			default:
				t.Errorf("metric %s has label %q", s.Name, s.Labels[i])
			}
		}
	})
	for _, want := range []string{"forward_backend_healthy", "forward_backend_requests_total", "forward_route_in_flight", "forward_route_rejected_total"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("no %s sample", want)
		}
	}
}

func TestStandaloneWithoutChain(t *testing.T) {
	got := make(chan http.Header, 1)
	b := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	f := newForwarder(t, Config{Upstream: b.url()}, Env{})
	srv := httptest.NewServer(f)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Real-IP: 6.6.6.6\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	if h.Get("X-Real-IP") != "127.0.0.1" || h.Get("X-Request-Id") == "" || h.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") {
		t.Fatalf("upstream headers %v, response id %q", h, resp.Header.Get("X-Request-Id"))
	}
}

// Routes match the normal form of the path, as most backends serve it; a
// path whose raw form would take another route is ambiguous and refused,
// so "//checkout" and "/a/../checkout" can neither slip past the
// /checkout route to "/" nor borrow its settings.
func TestRouteNormalAndAmbiguousPaths(t *testing.T) {
	f := newForwarder(t, Config{Upstream: "http://127.0.0.1:1", Routes: []Route{
		{Name: "checkout", Path: "/checkout"},
		{Name: "api", Path: "/api/"},
		{Name: "site", Path: "/"},
	}}, Env{})
	const ambiguous = "ambiguous"
	for _, tt := range []struct{ path, raw, want string }{
		{"/checkout", "", "checkout"},
		{"/checkout/", "", "checkout"},
		{"/checkout;jsessionid=1", "", "checkout"},
		{"/checkout/../checkout/pay", "", "checkout"},
		{"/checkouts", "", "site"},
		{"//checkouts", "", "site"},
		{"/x/../cart", "", "site"},
		{"/api", "", "site"},
		{"/api/", "", "api"},
		{"", "", "site"},
		{"/café", "", "site"},
		{"//checkout", "", ambiguous},
		{"///checkout//pay", "", ambiguous},
		{"/a/../checkout", "", ambiguous},
		{"/./checkout", "", ambiguous},
		{"/static/..;/checkout/pay", "", ambiguous},
		{"/checkout/..", "", ambiguous},
		{"/checkout/../cart", "", ambiguous},
		{"//api//", "", ambiguous},
		{"/x/../api/v1", "", ambiguous},
		{"/checkout/../api/x", "/checkout/..%2Fapi/x", ambiguous},
		{"/api/x/../../checkout", "/api/x%2F..%2F..%2Fcheckout", ambiguous},
	} {
		got, err := routeOf(f, "shop.example.com", tt.path, tt.raw)
		switch {
		case tt.want == ambiguous && !errors.Is(err, ErrAmbiguousPath):
			t.Errorf("Route(%q, raw %q) = %q, %v; want ErrAmbiguousPath", tt.path, tt.raw, got, err)
		case tt.want != ambiguous && (err != nil || got != tt.want):
			t.Errorf("Route(%q, raw %q) = %q, %v; want %q", tt.path, tt.raw, got, err, tt.want)
		}
	}
}

// ServeHTTP routes the same way: the closed checkout route holds for the
// spellings that reach it unambiguously, ambiguous ones get 400, and the
// path goes to the backend exactly as the client sent it.
func TestRoutePathsThroughServeHTTP(t *testing.T) {
	got := make(chan string, 16) // room for requests that wrongly get through
	b := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { got <- r.RequestURI })
	f := newForwarder(t, Config{Upstream: b.url(), Routes: []Route{
		{Name: "checkout", Path: "/checkout", Shield: Shield{Closed: ClosedResponse{Status: 410, Body: "sold out"}}},
		{Name: "site", Path: "/"},
	}}, Env{})
	if err := f.SetClosed(t.Context(), "checkout", true); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]int{
		"/checkout/../checkout/pay": 410, "/checkout/": 410, "/checkout;jsessionid=7": 410,
		"//checkout": 400, "/a/../checkout": 400,
	} {
		if w := do(f, "GET", p, nil, clientReq("203.0.113.7")); w.Code != want {
			t.Errorf("GET %s: %d, want %d", p, w.Code, want)
		}
	}
	if n := b.hits.Load(); n != 0 {
		t.Fatalf("backend got %d requests it should not have", n)
	}
	for _, p := range []string{"/x/../cart", "//checkouts?q=1"} {
		if w := do(f, "GET", p, nil, clientReq("203.0.113.7")); w.Code != 200 {
			t.Fatalf("GET %s: %d, want 200", p, w.Code)
		}
		if uri := <-got; uri != p {
			t.Errorf("backend saw %q, want the path unchanged, %q", uri, p)
		}
	}
}

// No client-address header the client sent reaches the upstream: the
// configured single-IP header carries the resolved client, the others in
// ClientAddressHeaders are removed.
func TestClientIPHeadersStripped(t *testing.T) {
	forged := append([]string{"X-Real-IP", "X-Forwarded-For", "Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto"},
		"X-Client-IP", "X-Cluster-Client-IP", "Client-IP", "X-Forwarded", "Forwarded-For",
		"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "True-Client-IP",
		"CF-Connecting-IP", "Fastly-Client-IP", "X-Original-Forwarded-For",
		"X-Originating-IP", "X-Remote-IP", "X-Remote-Addr")
	for _, tt := range []struct {
		configured string // Env.ClientIPHeader
		set        string // header carrying the resolved client, besides X-Real-IP and X-Forwarded-For
	}{
		{"", ""},
		{"X-Forwarded-For", ""},
		{"forwarded", ""},
		{"X-Real-IP", ""},
		{"cf-connecting-ip", "Cf-Connecting-Ip"},
		{"True-Client-IP", "True-Client-Ip"},
		{"X-My-Client", "X-My-Client"}, // any named single-IP header
	} {
		t.Run(tt.configured, func(t *testing.T) {
			got := make(chan http.Header, 1)
			b := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
			f := newForwarder(t, Config{Upstream: b.url()}, Env{ClientIPHeader: tt.configured})
			r := httptest.NewRequest("GET", "http://shop.example.com/", nil)
			sent := slices.Clone(forged)
			if tt.configured == "X-My-Client" {
				sent = append(sent, tt.configured)
			}
			for _, k := range sent {
				r.Header.Add(k, "127.0.0.1")
				r.Header.Add(k, "10.0.0.1")
			}
			r = r.WithContext(filters.WithRequest(r.Context(), clientReq("203.0.113.7")))
			w := httptest.NewRecorder()
			f.ServeHTTP(w, r)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			h := <-got
			want := map[string]string{
				"X-Real-Ip":         "203.0.113.7",
				"X-Forwarded-For":   "203.0.113.7, 10.0.0.1",
				"X-Forwarded-Host":  "shop.example.com",
				"X-Forwarded-Proto": "http",
			}
			if tt.set != "" {
				want[tt.set] = "203.0.113.7"
			}
			for _, k := range sent {
				k = http.CanonicalHeaderKey(k)
				if g, w := strings.Join(h.Values(k), ","), want[k]; g != w {
					t.Errorf("upstream %s = %q, want %q", k, g, w)
				}
			}
		})
	}
}

func TestClientIPHeaderInvalidName(t *testing.T) {
	if _, err := New(Config{Upstream: "http://127.0.0.1:1"}, Env{ClientIPHeader: "CF Connecting IP"}); err == nil {
		t.Fatal("New accepted a client IP header name with spaces")
	}
}

// An h2c upgrade offer is dropped and the request served as HTTP/1.1: an
// accepted upgrade would be an HTTP/2 tunnel no stage sees.
func TestH2COfferDropped(t *testing.T) {
	var sawUpgrade atomic.Value
	b := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		sawUpgrade.Store(r.Header.Get("Upgrade") + "|" + r.Header.Get("Http2-Settings"))
	})
	f := newForwarder(t, Config{Upstream: b.url()}, Env{})
	for _, tt := range []struct {
		upgrade []string
		dropped bool
	}{
		{[]string{"h2c"}, true},
		{[]string{"H2C"}, true},
		{[]string{"websocket, h2c"}, true},
		{[]string{"websocket", " h2c "}, true}, // two header lines
		{[]string{"h2c/2"}, true},
		{[]string{"h2"}, false},
		{[]string{"h2cx"}, false},
		{nil, false},
	} {
		sawUpgrade.Store("")
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
		r.Header.Set("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
		for _, v := range tt.upgrade {
			r.Header.Add("Upgrade", v)
		}
		r = r.WithContext(filters.WithRequest(r.Context(), clientReq("203.0.113.7")))
		w := httptest.NewRecorder()
		f.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Errorf("Upgrade %q: status %d, want 200 (served as HTTP/1.1)", tt.upgrade, w.Code)
		}
		if seen := sawUpgrade.Load().(string); tt.dropped && strings.Contains(strings.ToLower(seen), "h2c") {
			t.Errorf("Upgrade %q reached the backend as %q", tt.upgrade, seen)
		}
	}
}

// ClientAddressHeaders are deleted from header maps without canonicalising:
// each must already be in canonical form, or it would never be found.
func TestClientAddressHeadersCanonical(t *testing.T) {
	for _, name := range ClientAddressHeaders {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("%q is not canonical (%q)", name, c)
		}
	}
}

// TestRewriteValuesIndependent: the outbound header values rewrite sets
// share one array, but an append to one (a transport or a hook adding a
// value) never overwrites another.
func TestRewriteValuesIndependent(t *testing.T) {
	b := startBackend(t, "a", nil)
	f := newForwarder(t, Config{Upstream: b.url()}, Env{ClientIPHeader: "CF-Connecting-IP"})
	p := f.byPool[DefaultPool]
	fr := clientReq("203.0.113.7")
	fr.ID = "id-1"
	in := httptest.NewRequest("GET", "http://shop.example.com/", nil)
	in = in.WithContext(context.WithValue(in.Context(), attemptKey{}, &attempt{fr: fr, route: f.def, pool: p, first: p.backends[0]}))
	out := in.Clone(in.Context())
	f.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	before := out.Header.Clone()
	for name := range before {
		out.Header[name] = append(out.Header[name], "appended")
		for other, want := range before {
			if other == name {
				continue
			}
			if got := out.Header[other]; len(got) != len(want) || got[0] != want[0] {
				t.Fatalf("appending to %s changed %s: %q, want %q", name, other, got, want)
			}
		}
		out.Header[name] = before[name]
	}
	if got := out.Header.Get("X-Request-Id"); got != "id-1" {
		t.Fatalf("X-Request-Id %q", got)
	}
}
