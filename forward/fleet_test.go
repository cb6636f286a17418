package forward

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
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

func (l redisRouteLimiter) AllowRoute(ctx context.Context, key string, lim RouteLimit, now time.Time) (RouteDecision, error) {
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
		Routes:       []Route{{Name: "checkout", Path: "/checkout", Shield: Shield{Closed: ClosedResponse{Status: 410, Body: "sold out"}}}},
		ClosedSwitch: SwitchConfig{Redis: redisconf.Config{Addrs: []string{srv.Addr}, Timeout: filters.Duration(time.Second)}, Channel: "test:closed"},
	}
	var nodes []*Forwarder
	for range 3 {
		nodes = append(nodes, newForwarder(t, cfg, Env{}))
	}
	status := func(f *Forwarder) int { return do(f, "GET", "/checkout", nil, clientReq("203.0.113.7")).Code }
	// Wait until every node has subscribed: a close sent before would only
	// reach them by the set's resync.
	waitFor(t, 5*time.Second, "subscriptions", func() bool {
		n, err := redis.NewClient(&redis.Options{Addr: srv.Addr}).PubSubNumSub(context.Background(), "test:closed").Result()
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
	for i, f := range nodes[1:] {
		waitFor(t, time.Second, fmt.Sprintf("node %d to close", i+1), func() bool { return status(f) == 410 })
	}
	t.Logf("closed on all nodes after %v", time.Since(start))
	// A node that starts now reads the closed routes before it serves.
	late := newForwarder(t, cfg, Env{})
	if s := status(late); s != 410 {
		t.Fatalf("a node started after the close answered %d, want 410", s)
	}
	toggle("DELETE")
	for i, f := range append(nodes, late) {
		waitFor(t, time.Second, fmt.Sprintf("node %d to reopen", i), func() bool { return status(f) == 200 })
	}
}

// With Redis gone, closing still works on this node and says the fleet did
// not hear it; closed checks never wait for Redis.
func TestClosedSwitchRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	b := startBackend(t, "shop", nil)
	f := newForwarder(t, Config{Upstream: b.url(), Routes: []Route{{Name: "checkout", Path: "/checkout"}},
		ClosedSwitch: SwitchConfig{Redis: redisconf.Config{Addrs: []string{srv.Addr}}}}, Env{})
	srv.Stop()
	rec := httptest.NewRecorder()
	f.AdminHandler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/routes/checkout/closed", nil))
	if rec.Code != 503 {
		t.Fatalf("close with Redis down: %d %s, want 503 saying it changed locally", rec.Code, rec.Body.String())
	}
	start := time.Now()
	if w := do(f, "GET", "/checkout", nil, clientReq("203.0.113.7")); w.Code != 503 || time.Since(start) > 10*time.Millisecond {
		t.Fatalf("closed route with Redis down: %d after %v", w.Code, time.Since(start))
	}
}
