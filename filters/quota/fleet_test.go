package quota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// fleetNode is a quota Filter on srv that joins the fleet as node, with
// announcements left to the test (the ticker is an hour), and whose first
// announcement has landed.
func fleetNode(t *testing.T, addr, node string, mut func(*Config)) *Filter {
	t.Helper()
	f := mustNew(t, redisConfig([]string{addr}, false, func(c *Config) {
		c.Key = []string{"ip"}
		c.FleetSize = FleetAuto
		c.Fleet = Fleet{Node: node, Announce: filters.Duration(time.Hour)}
		if mut != nil {
			mut(c)
		}
	}), filters.Env{})
	if f.fleet != nil {
		<-f.fleet.first
	}
	return f
}

func announceAll(nodes ...*Filter) {
	for _, n := range nodes {
		n.fleet.announce(context.Background())
	}
}

func sizes(nodes ...*Filter) []int64 {
	var out []int64
	for _, n := range nodes {
		out = append(out, n.share())
	}
	return out
}

// TestFleetCount: nodes count each other through the sorted set; an entry
// whose expiry has passed is dropped by the next announcement, a node that
// closes leaves at once, and a fixed fleet_size or another on_error joins
// nothing.
func TestFleetCount(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	a, b, c := fleetNode(t, srv.Addr, "a", nil), fleetNode(t, srv.Addr, "b", nil), fleetNode(t, srv.Addr, "c", nil)
	announceAll(a, b, c)
	if got := fmt.Sprint(sizes(a, b, c)); got != "[3 3 3]" {
		t.Fatalf("sizes %s, want [3 3 3]", got)
	}
	// A node that died long ago: its score (expiry) is in the past.
	key := DefaultKeyPrefix + "fleet"
	if err := admin.ZAdd(context.Background(), key, redis.Z{Score: 1, Member: "dead"}).Err(); err != nil {
		t.Fatal(err)
	}
	announceAll(a)
	if got := a.share(); got != 3 {
		t.Fatalf("with an expired entry: size %d, want 3", got)
	}
	if n, _ := admin.ZScore(context.Background(), key, "dead").Result(); n != 0 {
		t.Fatal("expired entry not removed")
	}
	// The set expires with the TTL if every node is gone.
	if ttl := admin.PTTL(context.Background(), key).Val(); ttl <= 0 || ttl > DefaultFleetTTLs*time.Hour {
		t.Fatalf("set TTL %v, want within the entries' TTL", ttl)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	announceAll(a, b)
	if got := fmt.Sprint(sizes(a, b)); got != "[2 2]" {
		t.Fatalf("after c closed: sizes %s, want [2 2]", got)
	}
	// A reload of a (same settings) keeps the same node: no double count.
	a2 := mustNew(t, redisConfig([]string{srv.Addr}, false, func(cfg *Config) {
		cfg.Key = []string{"ip"}
		cfg.FleetSize = FleetAuto
		cfg.Fleet = Fleet{Node: "a", Announce: filters.Duration(time.Hour)}
	}), filters.Env{Previous: a})
	if a2.fleet != a.fleet {
		t.Fatal("a reload started a second announcer for the same node")
	}
	fixed := fleetNode(t, srv.Addr, "fixed", func(c *Config) { c.FleetSize = 4 })
	allow := fleetNode(t, srv.Addr, "allow", func(c *Config) { c.OnError = OnErrorAllow })
	if fixed.fleet != nil || allow.fleet != nil || fixed.share() != 4 {
		t.Errorf("fleet_size 4 joined %v with share %d, on_error allow joined %v; want no fleets and share 4",
			fixed.fleet != nil, fixed.share(), allow.fleet != nil)
	}
}

// outageRatio kills Redis under nodes and sends one client's requests
// round robin over them at 5× the policy's rate for window of request
// time, and returns what the fleet admitted over what one exact limiter
// admits for the same requests.
func outageRatio(t *testing.T, srv *redistest.Server, nodes []*Filter, window time.Duration) float64 {
	srv.Stop()
	l := nodes[0].policies[0].limit
	gap := l.Rate.Interval() / 5
	ref := NewMemoryStore(0)
	res := make([]Result, 1)
	admitted, ideal := 0, 0
	start := time.Now()
	for i := 0; time.Duration(i)*gap <= window; i++ {
		now := start.Add(time.Duration(i) * gap)
		if ok, _ := ref.TakeAt(now, []Ask{{Key: "ref", Limit: l, Cost: 1}}, res); ok {
			ideal++
		}
		if v := nodes[i%len(nodes)].Check(newReq("GET", "/", now)); !v.Deny {
			admitted++
		}
	}
	ratio := float64(admitted) / float64(ideal)
	t.Logf("outage of %v: the fleet admitted %d, one exact limiter %d: %.2f×", window, admitted, ideal, ratio)
	return ratio
}

// TestFleetAutoOutage is #15.6: three nodes sharing one Redis learn that
// they are three, and when Redis is killed, on_error: local keeps the
// fleet within 1.3× of the quota for the outage. With fleet_size 1, the
// old default, the same fleet admits about three times the quota.
func TestFleetAutoOutage(t *testing.T) {
	policy := func(c *Config) {
		c.Redis.Timeout = filters.Duration(50 * ms)
		c.Policies = []Policy{{Name: "api", Rate: rate("100/s"), Burst: 10}}
	}
	t.Run("auto", func(t *testing.T) {
		srv := redistest.Start(t)
		nodes := []*Filter{fleetNode(t, srv.Addr, "n1", policy), fleetNode(t, srv.Addr, "n2", policy), fleetNode(t, srv.Addr, "n3", policy)}
		announceAll(nodes...)
		announceAll(nodes...) // the first to announce saw only itself
		if ratio := outageRatio(t, srv, nodes, 10*time.Second); ratio > 1.3 || ratio < 0.9 {
			t.Errorf("fleet_size auto admitted %.2f× the quota during the outage, want within 1.3×", ratio)
		}
		// A failed announcement keeps the last count.
		announceAll(nodes...)
		if got := fmt.Sprint(sizes(nodes...)); got != "[3 3 3]" {
			t.Errorf("after announcing into a dead Redis: sizes %s, want the last seen [3 3 3]", got)
		}
	})
	t.Run("fleet_size 1", func(t *testing.T) {
		srv := redistest.Start(t)
		one := func(c *Config) { policy(c); c.FleetSize = 1 }
		nodes := []*Filter{fleetNode(t, srv.Addr, "m1", one), fleetNode(t, srv.Addr, "m2", one), fleetNode(t, srv.Addr, "m3", one)}
		if ratio := outageRatio(t, srv, nodes, 10*time.Second); ratio < 2.5 {
			t.Errorf("fleet_size 1 admitted %.2f× the quota, want about 3× (the contrast)", ratio)
		}
	})
}
