package forward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
	"github.com/edgeguard/edgeguard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// redisGCRA is this test's own route limiter over a real Redis (the real
// adapter over the quota store is the owner's). Times are microseconds, so
// Lua's doubles hold them exactly.
var redisGCRA = redis.NewScript(`
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tat - now - tolerance end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
return 0
`)

type redisRouteLimiter struct{ rdb redis.UniversalClient }

func (l redisRouteLimiter) AllowRoute(ctx context.Context, key string, lim filters.Limit, now time.Time) (RouteDecision, error) {
	iv := lim.Rate.Interval().Microseconds()
	wait, err := redisGCRA.Run(ctx, l.rdb, []string{"test:" + key}, now.UnixMicro(), iv, iv*int64(lim.Burst-1)).Int64()
	if err != nil {
		return RouteDecision{}, err
	}
	return RouteDecision{Allowed: wait == 0, RetryAfter: time.Duration(wait) * time.Microsecond}, nil
}

// Three forwarders share one route cap through Redis: together they pass
// what one cap allows, within 1%.
func TestRouteCapAcrossThreeNodes(t *testing.T) {
	srv := redistest.Start(t)
	b := startBackend(t, "shop", nil)
	const (
		rate  = 200 // per second
		burst = 20
		span  = 5 * time.Second
		step  = time.Millisecond
	)
	cfg := Config{Upstream: b.url(), Routes: []Route{{Name: "sale", Path: "/sale",
		Shield: Shield{Cap: Cap{Rate: filters.Rate{Count: rate, Period: time.Second}, Burst: burst, OnError: OnErrorDeny}}}}}
	var nodes []*Forwarder
	for range 3 {
		rdb := redisconf.Config{Addrs: []string{srv.Addr}, Timeout: filters.Duration(time.Second)}.NewClient()
		t.Cleanup(func() { rdb.Close() })
		nodes = append(nodes, newForwarder(t, cfg, Env{Limiter: redisRouteLimiter{rdb}}))
	}
	var allowed, denied atomic.Int64
	var wg sync.WaitGroup
	for _, f := range nodes {
		wg.Go(func() {
			// Each node sees 1,000 requests a second: 15x the cap together.
			for at := time.Duration(0); at < span; at += step {
				fr := clientReq("203.0.113.7")
				fr.Now = t0.Add(at)
				switch w := do(f, "GET", "/sale", nil, fr); w.Code {
				case 200:
					allowed.Add(1)
				case 503:
					denied.Add(1)
				default:
					t.Errorf("status %d", w.Code)
					return
				}
			}
		})
	}
	wg.Wait()
	want := float64(burst + rate*int(span/time.Second))
	got := float64(allowed.Load())
	t.Logf("allowed %v of %d across three nodes, cap allows %v", got, allowed.Load()+denied.Load(), want)
	if math.Abs(got-want)/want > 0.01 {
		t.Fatalf("allowed %v, want %v within 1%%", got, want)
	}
	if got != float64(b.hits.Load()) {
		t.Fatalf("backend saw %d, want %v", b.hits.Load(), got)
	}
}

// Closing a route on one node closes it on the others within a second,
// through Redis pub/sub; a node that starts later learns it from the set.
func TestClosedSwitchAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	b := startBackend(t, "shop", nil)
	cfg := Config{Upstream: b.url(),
		Routes: []Route{{Name: "checkout", Path: "/checkout", Shield: Shield{Closed: ClosedResponse{Status: 410, Body: "sold out"}}}},
		// No resync within the test: a change reaches the other nodes by
		// its pub/sub message or not at all.
		ClosedSwitch: SwitchConfig{Redis: redisconf.Config{Addrs: []string{srv.Addr}, Timeout: filters.Duration(time.Second)},
			Channel: "test:closed", Resync: filters.Duration(time.Hour)},
	}
	var nodes []*Forwarder
	for range 3 {
		nodes = append(nodes, newForwarder(t, cfg, Env{}))
	}
	status := func(f *Forwarder) int { return do(f, "GET", "/checkout", nil, clientReq("203.0.113.7")).Code }
	// Wait until every node has subscribed: a close sent before would only
	// reach them by the set's resync.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	waitFor(t, 5*time.Second, "subscriptions", func() bool {
		n, err := rdb.PubSubNumSub(context.Background(), "test:closed").Result()
		return err == nil && n["test:closed"] == 3
	})
	admin := httptest.NewServer(nodes[0].AdminHandler())
	defer admin.Close()
	toggle := func(method string) {
		req, _ := http.NewRequest(method, admin.URL+"/v1/routes/checkout/closed", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s closed: %v %v", method, err, resp)
		}
		resp.Body.Close()
	}
	start := time.Now()
	toggle("POST")
	if status(nodes[0]) != 410 {
		t.Fatal("the node that closed the route still serves it")
	}
	// How fast a message travels is the machine's business; the test
	// logs it. That it arrives long before any resync is the claim.
	for i, f := range nodes[1:] {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d to close", i+1), func() bool { return status(f) == 410 })
	}
	t.Logf("closed on all nodes after %v", time.Since(start))
	// A node that starts now reads the closed routes before it serves.
	late := newForwarder(t, cfg, Env{})
	if s := status(late); s != 410 {
		t.Fatalf("a node started after the close answered %d, want 410", s)
	}
	toggle("DELETE")
	for i, f := range append(nodes, late) {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d to reopen", i), func() bool { return status(f) == 200 })
	}
}

// With Redis unreachable, closing still works on this node and says the
// fleet did not hear it; closed checks never wait for Redis. This Redis
// never answers (a listener the test holds open and never accepts from:
// the kernel completes each connection, nothing ever replies): a check
// that waited on it would wait the whole call timeout, as the admin's
// change does, so the bound, half the timeout, tells the two apart
// whatever the machine's load.
func TestClosedSwitchRedisDown(t *testing.T) {
	const timeout = 4 * time.Second
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	b := startBackend(t, "shop", nil)
	f := newForwarder(t, Config{Upstream: b.url(), Routes: []Route{{Name: "checkout", Path: "/checkout"}},
		ClosedSwitch: SwitchConfig{Redis: redisconf.Config{Addrs: []string{hung.Addr().String()}, Timeout: filters.Duration(timeout)}}}, Env{})
	rec := httptest.NewRecorder()
	start := time.Now()
	f.AdminHandler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/routes/checkout/closed", nil))
	if rec.Code != 503 {
		t.Fatalf("close with Redis down: %d %s, want 503 saying it changed locally", rec.Code, rec.Body.String())
	}
	t.Logf("the close waited %v for Redis (timeout %v)", time.Since(start), timeout)
	start = time.Now()
	if w := do(f, "GET", "/checkout", nil, clientReq("203.0.113.7")); w.Code != 503 || time.Since(start) > timeout/2 {
		t.Fatalf("closed route with Redis down: %d after %v", w.Code, time.Since(start))
	}
}

// A route closed while Redis is down stays closed when Redis comes back
// empty and a resync reads it: the local change is kept over the load, then
// written to Redis by the resync, so the other nodes close too.
func TestClosedDuringOutageSurvivesResync(t *testing.T) {
	srv := redistest.Start(t)
	b := startBackend(t, "shop", nil)
	cfg := Config{Upstream: b.url(),
		Routes: []Route{{Name: "checkout", Path: "/checkout", Shield: Shield{Closed: ClosedResponse{Status: 410, Body: "sold out"}}}},
		// Resyncs happen when the test calls them (and on resubscription).
		ClosedSwitch: SwitchConfig{Redis: redisconf.Config{Addrs: []string{srv.Addr}, Timeout: filters.Duration(time.Second)},
			Channel: "test:closed", Resync: filters.Duration(time.Hour)},
	}
	a := newForwarder(t, cfg, Env{})
	other := newForwarder(t, cfg, Env{})
	status := func(f *Forwarder) int { return do(f, "GET", "/checkout", nil, clientReq("203.0.113.7")).Code }

	srv.Stop()
	rec := httptest.NewRecorder()
	a.AdminHandler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/routes/checkout/closed", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "this node only") {
		t.Fatalf("close with Redis down: %d %s, want 503 saying it changed on this node only", rec.Code, rec.Body.String())
	}
	a.fleet.load(t.Context()) // a resync while Redis is still down
	if s := status(a); s != 410 {
		t.Fatalf("after a failed resync the route answers %d, want 410", s)
	}

	srv.Restart() // an empty dataset: Redis never heard of the close
	a.fleet.load(t.Context())
	if s := status(a); s != 410 {
		t.Fatalf("after a resync from the restarted Redis the route answers %d, want 410 (closed on this node)", s)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if ok, err := rdb.SIsMember(t.Context(), "test:closed:set", "checkout").Result(); err != nil || !ok {
		t.Fatalf("after the resync Redis has checkout closed = %v (%v), want the local change written", ok, err)
	}
	if o := a.closed.overrides(); len(o) != 0 {
		t.Fatalf("overrides %v remain after they were written", o)
	}
	other.fleet.load(t.Context())
	if s := status(other); s != 410 {
		t.Fatalf("another node's resync: %d, want 410", s)
	}
	if s := status(a); s != 410 {
		t.Fatalf("the closing node: %d, want 410", s)
	}

	// Reopening goes through the fleet again, overrides gone.
	rec = httptest.NewRecorder()
	a.AdminHandler().ServeHTTP(rec, httptest.NewRequest("DELETE", "/v1/routes/checkout/closed", nil))
	if rec.Code != 200 {
		t.Fatalf("reopen: %d %s", rec.Code, rec.Body.String())
	}
	a.fleet.load(t.Context())
	other.fleet.load(t.Context())
	if sa, so := status(a), status(other); sa != 200 || so != 200 {
		t.Fatalf("after reopening: %d and %d, want 200 on both", sa, so)
	}
}

// A change kept on this node only carries over a reload, and the new
// forwarder writes it when Redis is back.
func TestClosedDuringOutageSurvivesReload(t *testing.T) {
	srv := redistest.Start(t)
	b := startBackend(t, "shop", nil)
	cfg := Config{Upstream: b.url(),
		Routes: []Route{{Name: "checkout", Path: "/checkout", Shield: Shield{Closed: ClosedResponse{Status: 410}}}},
		ClosedSwitch: SwitchConfig{Redis: redisconf.Config{Addrs: []string{srv.Addr}, Timeout: filters.Duration(time.Second)},
			Channel: "test:closed", Resync: filters.Duration(time.Hour)},
	}
	old, err := New(cfg, Env{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := old.SetClosed(t.Context(), "checkout", true); !errors.Is(err, ErrSwitch) {
		t.Fatalf("SetClosed with Redis down: %v, want ErrSwitch", err)
	}
	f := newForwarder(t, cfg, Env{Previous: old})
	old.Close() // the owner closes the old one after the swap
	srv.Restart()
	f.fleet.load(t.Context())
	if s := do(f, "GET", "/checkout", nil, clientReq("203.0.113.7")).Code; s != 410 {
		t.Fatalf("reloaded node after Redis came back: %d, want 410", s)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if ok, err := rdb.SIsMember(t.Context(), "test:closed:set", "checkout").Result(); err != nil || !ok {
		t.Fatalf("Redis has checkout closed = %v (%v), want the carried-over change written", ok, err)
	}
}

// The override logic itself: a local-only change holds over a replace in
// both directions until written, and a newer change from the fleet wins.
func TestClosedSetOverrides(t *testing.T) {
	var s closedSet
	s.set("a", true)
	s.keepLocal("a", true)
	s.set("b", false)
	s.keepLocal("b", false)
	s.replace([]string{"b", "c"})
	if !s.isClosed("a") || s.isClosed("b") || !s.isClosed("c") {
		t.Fatalf("after replace: a=%v b=%v c=%v, want closed, open, closed", s.isClosed("a"), s.isClosed("b"), s.isClosed("c"))
	}
	s.written("a", false) // an older write of another value does not drop it
	s.written("b", false)
	if o := s.overrides(); len(o) != 1 || !o["a"] {
		t.Fatalf("overrides %v, want only a closed", o)
	}
	s.setFromFleet("a", false) // someone reopened it through the fleet since
	s.replace([]string{"b"})
	if s.isClosed("a") || !s.isClosed("b") || len(s.overrides()) != 0 {
		t.Fatalf("after the fleet's change: a=%v b=%v overrides %v", s.isClosed("a"), s.isClosed("b"), s.overrides())
	}
}
