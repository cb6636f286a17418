package quota

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// t0 is the fixed instant the conformance tables start at.
var t0 = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

const ms = time.Millisecond

type askSpec struct {
	key    string // the part after the case's hash tag
	limit  filters.Limit
	cost   int64
	shadow bool
}

type step struct {
	at   time.Duration // after t0
	asks []askSpec
	ok   bool
	want []Result
}

type conformanceCase struct {
	name  string
	steps []step
}

// every is the limit of one request per interval iv with the given burst.
func every(iv time.Duration, burst int64) filters.Limit {
	return filters.Limit{Rate: filters.Rate{Count: 1, Period: iv}, Burst: burst}
}

func one(l filters.Limit, cost int64) []askSpec { return []askSpec{{key: "k", limit: l, cost: cost}} }

func allow(rem int64, reset time.Duration) Result {
	return Result{Allowed: true, Remaining: rem, ResetAfter: reset}
}

func deny(rem int64, retry, reset time.Duration) Result {
	return Result{Remaining: rem, RetryAfter: retry, ResetAfter: reset}
}

// conformanceCases are computed by hand from the burst definition on Limit.
//
// redis_rate's published PerSecond(10) cases map directly: its
// PerSecond(10) is Rate 10, Burst 10, Period 1s, our every(100ms, 10). Its
// test runs on the wall clock, so it expects the 1000-unit retry "≈ 99s"
// within a second; over a fixed instant the exact value is 100s: the
// request would be allowed once the TAT (t0+1s+100s) minus the tolerance
// (1s) is reached.
var conformanceCases = []conformanceCase{
	{"redis_rate PerSecond(10)", []step{
		{0, one(every(100*ms, 10), 1), true, []Result{allow(9, 100*ms)}},
		{0, one(every(100*ms, 10), 2), true, []Result{allow(7, 300*ms)}},
		{0, one(every(100*ms, 10), 7), true, []Result{allow(0, time.Second)}},
		{0, one(every(100*ms, 10), 1000), false, []Result{deny(0, 100*time.Second, time.Second)}},
	}},
	{"burst then the sustained rate", []step{
		{0, one(every(100*ms, 3), 1), true, []Result{allow(2, 100*ms)}},
		{0, one(every(100*ms, 3), 1), true, []Result{allow(1, 200*ms)}},
		{0, one(every(100*ms, 3), 1), true, []Result{allow(0, 300*ms)}},
		{0, one(every(100*ms, 3), 1), false, []Result{deny(0, 100*ms, 300*ms)}},
		{100 * ms, one(every(100*ms, 3), 1), true, []Result{allow(0, 300*ms)}},
		{150 * ms, one(every(100*ms, 3), 1), false, []Result{deny(0, 50*ms, 250*ms)}},
		// Idle long enough: a full burst again.
		{time.Second, one(every(100*ms, 3), 1), true, []Result{allow(2, 100*ms)}},
		// A cost above what remains is denied though units remain.
		{time.Second, one(every(100*ms, 3), 3), false, []Result{deny(2, 100*ms, 100*ms)}},
		{time.Second, one(every(100*ms, 3), 2), true, []Result{allow(0, 300*ms)}},
	}},
	{"cost above burst is never admitted", []step{
		{0, one(every(time.Second, 2), 3), false, []Result{deny(2, time.Second, 0)}},
		{time.Hour, one(every(time.Second, 2), 3), false, []Result{deny(2, time.Second, 0)}},
	}},
	{"slow rate, exact boundary", []step{
		{0, one(every(time.Second, 1), 1), true, []Result{allow(0, time.Second)}},
		{999 * ms, one(every(time.Second, 1), 1), false, []Result{deny(0, ms, ms)}},
		{time.Second, one(every(time.Second, 1), 1), true, []Result{allow(0, time.Second)}},
	}},
	{"a denied ask commits nothing for the others", []step{
		{0, []askSpec{{"a", every(100*ms, 2), 1, false}, {"b", every(time.Second, 1), 1, false}}, true,
			[]Result{allow(1, 100*ms), allow(0, time.Second)}},
		{0, []askSpec{{"a", every(100*ms, 2), 1, false}, {"b", every(time.Second, 1), 1, false}}, false,
			[]Result{allow(0, 200*ms), deny(0, time.Second, time.Second)}},
		// a still has the unit the denied request would have taken.
		{0, []askSpec{{"a", every(100*ms, 2), 1, false}}, true, []Result{allow(0, 200*ms)}},
	}},
	{"a shadow deny blocks nothing and is not committed", []step{
		{0, []askSpec{{"a", every(100*ms, 5), 1, false}, {"s", every(time.Second, 1), 1, true}}, true,
			[]Result{allow(4, 100*ms), allow(0, time.Second)}},
		{0, []askSpec{{"a", every(100*ms, 5), 1, false}, {"s", every(time.Second, 1), 1, true}}, true,
			[]Result{allow(3, 200*ms), deny(0, time.Second, time.Second)}},
		{0, []askSpec{{"s", every(time.Second, 1), 1, true}}, true, []Result{deny(0, time.Second, time.Second)}},
	}},
	{"an enforced deny commits no shadow ask either", []step{
		{0, []askSpec{{"e", every(time.Second, 1), 1, false}}, true, []Result{allow(0, time.Second)}},
		{0, []askSpec{{"e", every(time.Second, 1), 1, false}, {"s", every(time.Second, 1), 1, true}}, false,
			[]Result{deny(0, time.Second, time.Second), allow(0, time.Second)}},
		{0, []askSpec{{"s", every(time.Second, 1), 1, true}}, true, []Result{allow(0, time.Second)}},
	}},
	// A million units, so the key's state spans a second of Redis's own
	// clock (its expiry): with 1 unit it lived 1ms, and a loaded machine's
	// next call found it gone. Served as 1ns, the reset would be 1ms.
	{"sub-microsecond interval is served as 1µs", []step{
		{0, one(every(time.Nanosecond, 2_000_000), 1_000_000), true, []Result{allow(1_000_000, time.Second)}},
		{0, one(every(time.Nanosecond, 2_000_000), 1_000_001), false, []Result{deny(1_000_000, time.Microsecond, time.Second)}},
	}},
}

// runConformance walks every case through a store. tag makes the keys of
// one run unique, so a shared Redis needs no flush between runs.
func runConformance(t *testing.T, s Store, tag string) {
	for ci, c := range conformanceCases {
		t.Run(c.name, func(t *testing.T) {
			for si, st := range c.steps {
				asks := make([]Ask, len(st.asks))
				for i, a := range st.asks {
					asks[i] = Ask{Key: fmt.Sprintf("q:{%s-%d}:%s", tag, ci, a.key), Limit: a.limit, Cost: a.cost, Shadow: a.shadow}
				}
				got := make([]Result, len(asks))
				ok, err := s.Take(context.Background(), t0.Add(st.at), asks, got)
				if err != nil {
					t.Fatalf("step %d: %v", si, err)
				}
				if ok != st.ok {
					t.Errorf("step %d: ok = %v, want %v", si, ok, st.ok)
				}
				for i := range got {
					if got[i] != st.want[i] {
						t.Errorf("step %d ask %d: got %+v, want %+v", si, i, got[i], st.want[i])
					}
				}
			}
		})
	}
}

func TestConformanceMemory(t *testing.T) {
	runConformance(t, NewMemoryStore(0), "mem")
}

// The Redis store runs the production script with the decision time in
// ARGV (callerClock) instead of the server's TIME: the same arithmetic over
// the same fixed instants, so both stores must agree to the microsecond.
// Redis still expires keys on its own clock, which is why no step in the
// tables relies on a TTL shorter than a test step takes to run.
func TestConformanceRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	s := NewRedisStore(c)
	s.callerClock = true
	runConformance(t, s, strconv.FormatInt(time.Now().UnixNano(), 36))
}

func TestConformanceRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start takes seconds")
	}
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	defer c.Close()
	s := NewRedisStore(c)
	s.callerClock = true
	runConformance(t, s, strconv.FormatInt(time.Now().UnixNano(), 36))
}

// TestConformanceRedisTime runs the tables through the path production
// takes: the script decides at the server's TIME, not at a time the caller
// sends. The tables' instants cannot be reached on a real clock, so every
// step is replayed on Redis's: its keys are first given the TATs the
// table's earlier steps leave (the stored form TestRedisStoresOnlyTheTAT
// pins, shifted by the server's TIME read just before), then the step runs
// through the script. The script reads TIME a little later than the test
// did; that difference, at most the server's TIME after the step minus the
// TIME before it, is the whole tolerance: with it the clock only moves
// forward, so a wait or a reset can only be shorter by at most that much,
// the remaining count higher by at most that much over the interval, and a
// decision never changes, except a refusal whose wait is within it (then
// the step is replayed, up to 20 times, until the tolerance is below the
// wait). A step whose refusal waits less than timeResolution is left to
// the caller-clock tables: no round trip resolves a microsecond.
func TestConformanceRedisTime(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	s := NewRedisStore(c)
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	checked := 0
	for ci, cc := range conformanceCases {
		t.Run(cc.name, func(t *testing.T) {
			tats := map[string]time.Duration{} // each key's TAT after the steps so far, after t0
			for si, st := range cc.steps {
				keys := make([]string, len(st.asks))
				for i, a := range st.asks {
					keys[i] = fmt.Sprintf("q:{time-%s-%d}:%s", tag, ci, a.key)
				}
				if resolvable(st) {
					replayAtServerTime(t, c, s, si, st, keys, tats)
					checked++
				}
				if !st.ok {
					continue // a refused Take commits nothing
				}
				for i, w := range st.want {
					if w.Allowed {
						tats[keys[i]] = st.at + w.ResetAfter
					}
				}
			}
		})
	}
	if checked < 20 {
		t.Errorf("only %d steps resolvable at the server's clock, want at least 20", checked)
	}
}

// timeResolution is the shortest refusal wait a step may have to be
// replayed at the server's clock: a few round trips on a loaded machine.
const timeResolution = 5 * ms

func resolvable(st step) bool {
	for _, w := range st.want {
		if !w.Allowed && w.RetryAfter < timeResolution {
			return false
		}
	}
	return true
}

// replayAtServerTime places the keys' TATs relative to the server's TIME,
// runs st through s (the script reading TIME) and checks the results and
// what was stored within the difference between the TIME read before and
// after.
func replayAtServerTime(t *testing.T, c *redis.Client, s *RedisStore, si int, st step, keys []string, tats map[string]time.Duration) {
	t.Helper()
	ctx := context.Background()
	for attempt := 1; ; attempt++ {
		before := serverTime(t, c)
		for _, k := range keys {
			owed := tats[k] - st.at // what the key owes at the step's instant
			if owed <= 0 {
				c.Del(ctx, k)
				continue
			}
			tat := before.Add(owed).UnixMicro()
			if err := c.Set(ctx, k, strconv.FormatInt(tat, 10), owed.Round(ms)+ms).Err(); err != nil {
				t.Fatal(err)
			}
		}
		asks := make([]Ask, len(st.asks))
		for i, a := range st.asks {
			asks[i] = Ask{Key: keys[i], Limit: a.limit, Cost: a.cost, Shadow: a.shadow}
		}
		got := make([]Result, len(asks))
		ok, err := s.Take(ctx, time.Time{}, asks, got)
		if err != nil {
			t.Fatalf("step %d: %v", si, err)
		}
		tol := serverTime(t, c).Sub(before)
		if !decidedWithin(st, tol) {
			if attempt == 20 {
				t.Fatalf("step %d: the tolerance stayed above a refusal's wait for 20 attempts (last %v)", si, tol)
			}
			continue
		}
		if ok != st.ok {
			t.Errorf("step %d: ok = %v, want %v (tolerance %v)", si, ok, st.ok, tol)
		}
		for i := range got {
			if why := withinTolerance(got[i], st.want[i], st.asks[i].limit, tol); why != "" {
				t.Errorf("step %d ask %d: got %+v, want %+v within %v: %s", si, i, got[i], st.want[i], tol, why)
			}
			if !ok || !st.want[i].Allowed {
				continue
			}
			// The stored TAT is the step's, on the server's clock, later by
			// at most the tolerance.
			v, err := c.Get(ctx, keys[i]).Int64()
			if err != nil {
				t.Fatalf("step %d ask %d: reading the TAT: %v", si, i, err)
			}
			if late := time.UnixMicro(v).Sub(before.Add(st.want[i].ResetAfter)); late < 0 || late > tol {
				t.Errorf("step %d ask %d: stored TAT %v off the table's by %v, want within [0, %v]", si, i, time.UnixMicro(v), late, tol)
			}
		}
		return
	}
}

// decidedWithin reports whether no refusal of st waits as little as tol:
// then no instant within tol after the step's changes its decision.
func decidedWithin(st step, tol time.Duration) bool {
	for _, w := range st.want {
		if !w.Allowed && w.RetryAfter <= tol {
			return false
		}
	}
	return true
}

// withinTolerance compares got with the table's want for a decision made
// up to tol after the table's instant: waits shorter by at most tol, the
// remaining count higher by at most tol over the interval, the same
// decision. It says what is off, or "".
func withinTolerance(got, want Result, lim filters.Limit, tol time.Duration) string {
	iv := time.Duration(lim.GCRA(usTick).Interval) * usTick
	switch {
	case got.Allowed != want.Allowed:
		return "another decision"
	case got.RetryAfter > want.RetryAfter || got.RetryAfter < want.RetryAfter-tol:
		return "retry after"
	case got.ResetAfter > want.ResetAfter || got.ResetAfter < want.ResetAfter-tol:
		return "reset after"
	case got.Remaining < want.Remaining || got.Remaining > want.Remaining+int64((tol+iv-1)/iv):
		return "remaining"
	}
	return ""
}

// serverTime reads Redis's TIME.
func serverTime(t *testing.T, c *redis.Client) time.Time {
	t.Helper()
	now, err := c.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// TestRedisStoresOnlyTheTAT pins the storage contract: one string key per
// (policy, client) holding the TAT in microseconds, with a TTL of its
// remaining life, and nothing written by a denied request.
func TestRedisStoresOnlyTheTAT(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	s := NewRedisStore(c)
	s.callerClock = true
	ctx := context.Background()
	now := time.Now()
	asks := []Ask{{Key: "q:{x}:p", Limit: every(10*time.Second, 2), Cost: 1}}
	res := make([]Result, 1)
	if ok, err := s.Take(ctx, now, asks, res); err != nil || !ok {
		t.Fatalf("first take: ok=%v err=%v", ok, err)
	}
	keys, _ := c.Keys(ctx, "*").Result()
	if len(keys) != 1 || keys[0] != "q:{x}:p" {
		t.Fatalf("keys = %v, want exactly [q:{x}:p]", keys)
	}
	v, _ := c.Get(ctx, "q:{x}:p").Result()
	if want := strconv.FormatInt(now.UnixMicro()+10_000_000, 10); v != want {
		t.Errorf("stored %q, want the TAT %s", v, want)
	}
	ttl, _ := c.PTTL(ctx, "q:{x}:p").Result()
	if ttl <= 9*time.Second || ttl > 10*time.Second {
		t.Errorf("TTL %v, want about 10s", ttl)
	}
	_, _ = s.Take(ctx, now, asks, res) // second unit of the burst
	before, _ := c.Get(ctx, "q:{x}:p").Result()
	if ok, _ := s.Take(ctx, now, asks, res); ok {
		t.Fatal("third take at the same instant allowed; burst is 2")
	}
	after, _ := c.Get(ctx, "q:{x}:p").Result()
	if before != after {
		t.Errorf("a denied take changed the TAT from %s to %s", before, after)
	}
}

func TestAskValidation(t *testing.T) {
	s := NewMemoryStore(0)
	for _, a := range []Ask{
		{Key: "k", Limit: every(time.Second, 1), Cost: 0},
		{Key: "k", Limit: every(time.Second, 0), Cost: 1},
		{Key: "k", Limit: every(time.Hour, 1<<40), Cost: 1},
	} {
		if _, err := s.Take(context.Background(), t0, []Ask{a}, make([]Result, 1)); err == nil {
			t.Errorf("ask %+v accepted", a)
		}
	}
}

func TestMemoryStoreBounded(t *testing.T) {
	s := NewMemoryStore(memShards * 8)
	res := make([]Result, 1)
	for i := range 10_000 {
		a := []Ask{{Key: fmt.Sprintf("{c%d}", i), Limit: every(time.Hour, 5), Cost: 1}}
		if _, err := s.TakeAt(t0, a, res); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n > memShards*8 {
		t.Errorf("store holds %d keys, bound is %d", n, memShards*8)
	}
}

// TestMemoryStoreEvictsExpiredFirst: a full shard makes room by dropping
// the keys whose TAT has passed, which changes no decision (such a key is
// in the same state as one never seen), before it forgets any live key.
// Every shard is filled with seven live keys, each with its burst spent,
// and one expired key; one more key then needs room. Were any key dropped
// (as a plain LRU or random eviction does), a live one would go seven
// times in eight per shard, and its client would find a fresh burst.
func TestMemoryStoreEvictsExpiredFirst(t *testing.T) {
	const perShard = 8
	s := NewMemoryStore(memShards * perShard)
	res := make([]Result, 1)
	live, short := every(time.Hour, 1), every(time.Millisecond, 1)
	take := func(at time.Time, key string, l filters.Limit) bool {
		ok, err := s.TakeAt(at, []Ask{{Key: key, Limit: l, Cost: 1}}, res)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// keysOf[shard] are keys landing in that shard: 7 live, 1 expiring, 1 new.
	keysOf := make([][]string, memShards)
	for i := 0; ; i++ {
		k := fmt.Sprintf("{c%d}", i)
		sh := s.shardOf(k)
		if len(keysOf[sh]) < perShard+1 {
			keysOf[sh] = append(keysOf[sh], k)
		}
		if full := slices.IndexFunc(keysOf, func(ks []string) bool { return len(ks) < perShard+1 }); full < 0 {
			break
		}
	}
	for _, ks := range keysOf {
		for _, k := range ks[:perShard-1] {
			if !take(t0, k, live) {
				t.Fatalf("first request of live key %s denied", k)
			}
		}
		if !take(t0, ks[perShard-1], short) {
			t.Fatalf("first request of key %s denied", ks[perShard-1])
		}
	}
	if n := s.Len(); n != memShards*perShard {
		t.Fatalf("store holds %d keys, want every shard full (%d)", n, memShards*perShard)
	}
	later := t0.Add(time.Second) // the short keys' TATs have passed
	for _, ks := range keysOf {
		if !take(later, ks[perShard], live) {
			t.Fatalf("new key %s denied", ks[perShard])
		}
	}
	for _, ks := range keysOf {
		for _, k := range ks[:perShard-1] {
			if take(later, k, live) {
				t.Fatalf("live key %s (its one-an-hour burst spent a second ago) was forgotten: a fresh burst admitted it", k)
			}
		}
	}
	if n := s.Len(); n != memShards*perShard {
		t.Errorf("store holds %d keys after the new ones, want %d (the expired ones dropped)", n, memShards*perShard)
	}
	// The expired key decides as a fresh one does.
	fresh := make([]Result, 1)
	if _, err := NewMemoryStore(0).TakeAt(later, []Ask{{Key: "{x}", Limit: short, Cost: 1}}, fresh); err != nil {
		t.Fatal(err)
	}
	for _, ks := range keysOf {
		if !take(later, ks[perShard-1], short) || res[0] != fresh[0] {
			t.Fatalf("expired key %s after its eviction: %+v, want a fresh key's %+v", ks[perShard-1], res[0], fresh[0])
		}
	}
}

func BenchmarkMemoryStore(b *testing.B) {
	s := NewMemoryStore(0)
	asks := []Ask{{Key: "edgeguard:quota:{AAAAAAAAAAAAAAAAAAAAAA}:default", Limit: every(time.Microsecond, 1<<30), Cost: 1}}
	res := make([]Result, 1)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if _, err := s.TakeAt(now, asks, res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryStoreParallel(b *testing.B) {
	s := NewMemoryStore(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("edgeguard:quota:{%p}:default", pb)
		asks := []Ask{{Key: key, Limit: every(time.Microsecond, 1<<30), Cost: 1}}
		res := make([]Result, 1)
		now := t0
		for pb.Next() {
			now = now.Add(time.Microsecond)
			_, _ = s.TakeAt(now, asks, res)
		}
	})
}
