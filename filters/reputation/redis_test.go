package reputation

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
	"github.com/edgeguard/edgeguard/internal/redistest"
)

// eventually polls cond until it holds or d has passed, and returns how long
// it took. Polling is right here: the condition is another node's view,
// reached through Redis, not a limiter's decision over time.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// messageWait bounds how long a ban or unban may take to reach another
// node. It is far below resyncEvery, and byMessage also checks that the
// node applied a pub/sub message: the change did not arrive by a full
// resync. How fast a message travels is the machine's business, not a
// property of the code; the test only logs it.
const messageWait = 10 * time.Second

// byMessage waits until cond holds on f and f has applied one more
// message of the kind counter counts (remoteBans or remoteUnbans) than
// before, and logs how long it took.
func byMessage(t *testing.T, counter *atomic.Uint64, before uint64, what string, cond func() bool) {
	t.Helper()
	took := eventually(t, messageWait, what, func() bool { return cond() && counter.Load() > before })
	t.Logf("%s in %s", what, took)
}

func fleetConfig(addr string) Config {
	return Config{
		Redis:   redisconf.Config{Addrs: []string{addr}, Timeout: filters.Duration(200 * time.Millisecond)},
		Strikes: Strikes{Threshold: 2},
		Ban:     BanPolicy{TTL: filters.Duration(time.Hour)},
	}
}

func bannedOn(f *Filter, addr string) bool { return f.Check(req(addr, time.Now())).Deny }

func TestFleetBansThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	cfg := fleetConfig(srv.Addr)
	a := newFilterClock(t, cfg, nil, time.Now)
	b := newFilterClock(t, cfg, nil, time.Now)
	eventually(t, 5*time.Second, "both nodes connected", func() bool { return a.RedisConnected() && b.RedisConnected() })

	// A ban earned by strikes on A is enforced on B, by a message.
	bans, unbans := b.sync.remoteBans.Load(), b.sync.remoteUnbans.Load()
	now := time.Now()
	a.Observe(deny(req("192.0.2.10", now), "waf", "sqli"))
	a.Observe(deny(req("192.0.2.10", now), "waf", "sqli"))
	if !bannedOn(a, "192.0.2.10") {
		t.Fatal("A did not ban on its own strikes")
	}
	byMessage(t, &b.sync.remoteBans, bans, "strike ban reaches B", func() bool { return bannedOn(b, "192.0.2.10") })
	if got := b.BansAt(time.Now()); len(got) != 1 || got[0].Source != "waf" || got[0].Reason != "sqli" {
		t.Errorf("B's copy of the ban: %+v", got)
	}

	// A ban made through A's admin API likewise, IPv6 /64 included.
	ha := a.AdminHandler()
	bans = b.sync.remoteBans.Load()
	if code, out := do(t, ha, "POST", "/v1/bans", `{"target": "2001:db8:1::5", "ttl": "10m", "reason": "abuse desk"}`); code != 201 {
		t.Fatalf("POST on A: %d %v", code, out)
	}
	byMessage(t, &b.sync.remoteBans, bans, "admin ban reaches B", func() bool { return bannedOn(b, "2001:db8:1::ffff") })

	// An unban on A is lifted on B, by a message.
	if code, _ := do(t, ha, "DELETE", "/v1/bans/192.0.2.10", ""); code != 200 {
		t.Fatalf("DELETE on A: %d", code)
	}
	byMessage(t, &b.sync.remoteUnbans, unbans, "unban reaches B", func() bool { return !bannedOn(b, "192.0.2.10") })
	// And the other way round: unban on B lifts it on A.
	aUnbans := a.sync.remoteUnbans.Load()
	if code, _ := do(t, b.AdminHandler(), "DELETE", "/v1/bans/2001:db8:1::/64", ""); code != 200 {
		t.Fatalf("DELETE on B: %d", code)
	}
	byMessage(t, &a.sync.remoteUnbans, aUnbans, "unban from B reaches A", func() bool { return !bannedOn(a, "2001:db8:1::1") })
	if m := collect(b); m["reputation_remote_updates_total,op=ban"] < 2 || m["reputation_redis_connected"] != 1 {
		t.Errorf("B's Redis metrics: %v", m)
	}
}

func TestFleetSurvivesRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	cfg := fleetConfig(srv.Addr)
	a := newFilterClock(t, cfg, nil, time.Now)
	b := newFilterClock(t, cfg, nil, time.Now)
	eventually(t, 5*time.Second, "both nodes connected", func() bool { return a.RedisConnected() && b.RedisConnected() })
	p := func(s string) netipPrefix { q, _ := ParseTarget(s, 64); return q }

	if _, err := a.BanAt(time.Now(), p("198.51.100.1"), time.Hour, "before"); err != nil {
		t.Fatal(err)
	}
	eventually(t, messageWait, "ban before the outage reaches B", func() bool { return bannedOn(b, "198.51.100.1") })

	srv.Stop()
	eventually(t, 5*time.Second, "A notices the outage", func() bool { return !a.RedisConnected() })

	// Bans made meanwhile work locally (that they never wait on Redis is
	// TestUnreachableRedisNeverBlocks's, against a Redis that never answers).
	if _, err := a.BanAt(time.Now(), p("198.51.100.2"), time.Hour, "during"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.Observe(deny(req("198.51.100.3", now), "volumetric", "rate"))
	a.Observe(deny(req("198.51.100.3", now), "volumetric", "rate"))
	if !bannedOn(a, "198.51.100.2") || !bannedOn(a, "198.51.100.3") || !bannedOn(a, "198.51.100.1") {
		t.Fatal("local bans not enforced while Redis is down")
	}
	if bannedOn(b, "198.51.100.2") {
		t.Fatal("B learned a ban with Redis down")
	}
	if m := collect(a); m["reputation_redis_pending"] < 2 {
		t.Errorf("pending changes not counted: %v", m["reputation_redis_pending"])
	}

	// Redis comes back empty (no persistence): B catches up on the bans made
	// during the outage, and the fleet writes back the ones made before.
	srv.Restart()
	took := eventually(t, 10*time.Second, "B catches up after Redis returns", func() bool {
		return bannedOn(b, "198.51.100.2") && bannedOn(b, "198.51.100.3")
	})
	t.Logf("B caught up %s after the restart", took)
	if !bannedOn(b, "198.51.100.1") || !bannedOn(a, "198.51.100.1") {
		t.Error("the ban made before the outage was lost")
	}
	// A node starting now loads the whole set.
	c := newFilterClock(t, cfg, nil, time.Now)
	eventually(t, 5*time.Second, "a new node loads every ban", func() bool {
		return bannedOn(c, "198.51.100.1") && bannedOn(c, "198.51.100.2") && bannedOn(c, "198.51.100.3")
	})
	client := cfg.Redis.NewClient()
	defer client.Close()
	all, err := client.HGetAll(context.Background(), DefaultKeyPrefix+"bans").Result()
	if err != nil || len(all) != 4 { // three bans and the epoch
		t.Errorf("Redis holds %v (%v), want three bans and the epoch", all, err)
	}
}

func TestUnbanMissedDuringPartitionIsRepaired(t *testing.T) {
	srv := redistest.Start(t)
	cfg := fleetConfig(srv.Addr)
	a := newFilterClock(t, cfg, nil, time.Now)
	b := newFilterClock(t, cfg, nil, time.Now)
	eventually(t, 5*time.Second, "both nodes connected", func() bool { return a.RedisConnected() && b.RedisConnected() })
	target, _ := ParseTarget("203.0.113.4", 64)
	a.BanAt(time.Now(), target, time.Hour, "")
	eventually(t, messageWait, "ban reaches B", func() bool { return bannedOn(b, "203.0.113.4") })

	// B misses the unban message (as if partitioned): remove the ban from
	// Redis behind its back. Its next full sync, with the same epoch, drops it.
	client := cfg.Redis.NewClient()
	defer client.Close()
	if err := client.HDel(context.Background(), DefaultKeyPrefix+"bans", target.String()).Err(); err != nil {
		t.Fatal(err)
	}
	b.sync.requestSync()
	eventually(t, messageWait, "B drops a ban Redis no longer has", func() bool { return !bannedOn(b, "203.0.113.4") })
}

// TestUnreachableRedisNeverBlocks: with a Redis that never answers (a
// listener the test holds open and never accepts from: the kernel
// completes each connection, nothing ever replies), building the filter,
// banning, earning strikes and checking make no Redis call on the way. A
// call that waited would wait the whole call timeout, 6s; the bound, half
// of it, is far from any machine's scheduling delay. Close waits at most
// one call timeout for the background work.
func TestUnreachableRedisNeverBlocks(t *testing.T) {
	const timeout = 6 * time.Second
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	cfg := fleetConfig(hung.Addr().String())
	cfg.Redis.Timeout = filters.Duration(timeout)
	start := time.Now()
	f := newFilterClock(t, cfg, nil, time.Now)
	target, _ := ParseTarget("192.0.2.1", 64)
	f.BanAt(time.Now(), target, time.Hour, "")
	now := time.Now()
	f.Observe(deny(req("192.0.2.2", now), "waf", "sqli"))
	f.Observe(deny(req("192.0.2.2", now), "waf", "sqli"))
	v, struck := f.Check(req("192.0.2.1", time.Now())), f.Check(req("192.0.2.2", time.Now()))
	if d := time.Since(start); d > timeout/2 {
		t.Errorf("New+BanAt+Observe+Check with Redis unreachable took %s: a call waited on Redis", d)
	}
	if !v.Deny || !struck.Deny || f.RedisConnected() {
		t.Errorf("verdicts %+v %+v, connected %v", v, struck, f.RedisConnected())
	}
	closed := make(chan struct{})
	go func() { f.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(timeout + 20*time.Second):
		t.Fatal("Close hangs with Redis unreachable")
	}
}

func TestReloadKeepsRedisConnection(t *testing.T) {
	srv := redistest.Start(t)
	cfg := fleetConfig(srv.Addr)
	a := newFilterClock(t, cfg, nil, time.Now)
	b := newFilterClock(t, cfg, nil, time.Now)
	eventually(t, 5*time.Second, "both nodes connected", func() bool { return a.RedisConnected() && b.RedisConnected() })
	a2, err := New(cfg, filters.Env{Previous: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a2.Close() })
	if a2.sync != a.sync {
		t.Fatal("same Redis settings, new connection")
	}
	a.Close()
	target, _ := ParseTarget("192.0.2.77", 64)
	b.BanAt(time.Now(), target, time.Hour, "")
	eventually(t, messageWait, "ban reaches the reloaded A", func() bool { return bannedOn(a2, "192.0.2.77") })

	// Different settings: a new connection, the bans still carried over.
	other := cfg
	other.KeyPrefix = "other:"
	a3, err := New(other, filters.Env{Previous: a2})
	if err != nil {
		t.Fatal(err)
	}
	defer a3.Close()
	if a3.sync == a2.sync || !bannedOn(a3, "192.0.2.77") {
		t.Fatal("changed Redis settings: want a new connection and the old bans")
	}
}
