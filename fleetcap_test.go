package edgeguard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/gcratest"
	"github.com/edgeguard/edgeguard/internal/redistest"
)

// fleetCapConfig is three edge nodes' config: a route capped at 100/s with
// a burst of 10, counted where store says, and the quota stage on Redis
// (its one policy never meets the capped route's requests).
func fleetCapConfig(backend, redisAddr, store string) string {
	return `upstream: ` + backend + `
routes:
  - name: sale
    path: /sale
    upstream: default
    shield:
      cap: {rate: "100/s", burst: 10, store: ` + store + `, on_error: deny}
stages: [quota]
quota:
  store: redis
  redis: {addrs: ["` + redisAddr + `"], timeout: 1s}
  fleet_size: 3
  policies: [{name: elsewhere, rate: "10/s", match: {path_prefix: /elsewhere}}]
`
}

// capRun sends one client's requests to /sale round robin over guards, one
// at a time and as fast as they are answered, for window, and returns each
// decision with the wall-clock window it was made in.
func capRun(t *testing.T, guards []*Guard, window time.Duration) (ds []gcratest.Decision, admitted int) {
	t.Helper()
	start := time.Now()
	for i := 0; time.Since(start) < window; i++ {
		r := httptest.NewRequest("GET", "http://shop.test/sale", nil)
		r.RemoteAddr = "192.0.2.7:4000"
		w := httptest.NewRecorder()
		before := time.Now()
		guards[i%len(guards)].ServeHTTP(w, r)
		d := gcratest.Decision{Start: before, End: time.Now()}
		switch w.Code {
		case http.StatusOK:
			d.Allowed = true
			admitted++
		case http.StatusServiceUnavailable:
			if w.Header().Get("Retry-After") == "" {
				t.Fatalf("request %d: capped without Retry-After", i)
			}
		default:
			t.Fatalf("request %d on guard %d: status %d %s", i, i%len(guards), w.Code, w.Body)
		}
		ds = append(ds, d)
	}
	return ds, admitted
}

// TestFleetRouteCapAcrossThreeGuards: three Guards built from one config
// share a route cap through the quota stage's Redis store (the adapter
// the binary uses, guard.go's routeCaps), decided on Redis's TIME. Sent one
// client's requests round robin, far above the cap, they decide as one
// GCRA of the cap does: gcratest checks every decision against the
// wall-clock windows the requests ran in (redis-server runs on this
// machine, so its TIME is that clock). The same run with store: memory,
// each node counting on its own, fails that check: the contrast shows the
// test can see a cap that is not shared.
func TestFleetRouteCapAcrossThreeGuards(t *testing.T) {
	srv := redistest.Start(t)
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("sold"))
	}))
	defer backend.Close()
	lim := filters.Limit{Rate: filters.Rate{Count: 100, Period: time.Second}, Burst: 10}
	window := 2 * time.Second
	if testing.Short() {
		window = time.Second
	}

	three := func(store string) []*Guard {
		yaml := fleetCapConfig(backend.URL, srv.Addr, store)
		return []*Guard{mustGuard(t, yaml), mustGuard(t, yaml), mustGuard(t, yaml)}
	}
	ds, admitted := capRun(t, three("redis"), window)
	if err := gcratest.Check(lim, time.Microsecond, ds); err != nil {
		t.Fatalf("three Guards on one Redis admitted %d of %d: %v", admitted, len(ds), err)
	}
	if got := hits.Load(); got != int64(admitted) {
		t.Errorf("backend saw %d requests, the Guards admitted %d", got, admitted)
	}
	t.Logf("three Guards on one Redis admitted %d of %d in %v, each decision one GCRA of 100/s burst 10 can make", admitted, len(ds), window)

	// The cap's state is one key in Redis: a TAT in microseconds on the
	// server's clock, at most the burst's span (100ms) ahead of it.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "edgeguard:quota:") {
		t.Fatalf("keys in Redis %v, want the one route cap key", keys)
	}
	v, err := rdb.Get(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	tat, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("route cap state %q: %v", v, err)
	}
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ahead := time.UnixMicro(tat).Sub(now); ahead <= 0 || ahead > 100*time.Millisecond {
		t.Errorf("route cap TAT %d is %v ahead of Redis's TIME, want within (0, 100ms]", tat, ahead)
	}

	hits.Store(0)
	ds, admitted = capRun(t, three("memory"), window)
	err = gcratest.Check(lim, time.Microsecond, ds)
	if err == nil {
		t.Fatalf("three Guards counting the cap each on its own admitted %d of %d and passed the check", admitted, len(ds))
	}
	t.Logf("contrast, store: memory: %d of %d admitted, refused by the check: %v", admitted, len(ds), err)
}
