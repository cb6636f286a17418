package quota

import (
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redistest"
)

// TestReloadKeepsLocalFallback: during a Redis outage a reload takes over
// the local limiter of on_error: local, so a client that spent its local
// share before the reload does not get a fresh one after it.
func TestReloadKeepsLocalFallback(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop() // Redis is down for the whole test
	cfg := redisConfig([]string{srv.Addr}, false, func(c *Config) {
		c.OnError = OnErrorLocal
		c.Redis.Timeout = filters.Duration(50 * ms)
		c.Breaker = Breaker{Failures: 1, Backoff: filters.Duration(time.Hour), MaxBackoff: filters.Duration(time.Hour)}
		c.Policies = []Policy{{Name: "api", Rate: rate("1/m"), Burst: 2}}
	})
	t0 := time.Now()
	old := mustNew(t, cfg, filters.Env{})
	for i := range 2 {
		if v := old.Check(newReq("GET", "/", t0)); v.Deny {
			t.Fatalf("request %d within the local share denied: %+v", i+1, v)
		}
	}
	if v := old.Check(newReq("GET", "/", t0)); !v.Deny {
		t.Fatalf("request beyond the local share allowed: %+v", v)
	}
	fresh := mustNew(t, cfg, filters.Env{Previous: old})
	_ = old.Close()
	if v := fresh.Check(newReq("GET", "/", t0)); !v.Deny {
		t.Fatalf("after the reload the client got a fresh local share: %+v", v)
	}
}
