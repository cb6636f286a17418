package reputation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/internal/redistest"
)

// testSyncer is a syncer over store without its goroutines: the test runs
// its syncs and nothing flushes between them, as while Redis is down.
func testSyncer(t *testing.T, addr string, store *banStore) *syncer {
	t.Helper()
	s := makeSyncer(fleetConfig(addr).withDefaults(), store, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { s.client.Close() })
	return s
}

// heldPrefixes returns the prefixes of the bans in force in store, sorted.
func heldPrefixes(store *banStore, now time.Time) []string {
	var out []string
	for _, b := range store.active(now) {
		out = append(out, b.Prefix.String())
	}
	return out
}

// redisPrefixes returns the ban fields of the shared hash, sorted.
func redisPrefixes(t *testing.T, s *syncer) []string {
	t.Helper()
	all, err := s.client.HGetAll(context.Background(), s.key).Result()
	if err != nil {
		t.Fatal(err)
	}
	delete(all, epochField)
	return slices.Sorted(maps.Keys(all))
}

func TestDecodeWire(t *testing.T) {
	tests := []struct {
		in     string
		target string // "" when refused
		ban    bool
	}{
		{`{"op":"ban","target":"192.0.2.0/24","expires":5}`, "192.0.2.0/24", true},
		{`{"target":"2001:db8::/64","expires":5}`, "2001:db8::/64", true},
		{`{"op":"unban","target":"2001:db8::/64"}`, "2001:db8::/64", false},
		{`{"op":"ban","target":"128.0.0.0/1","expires":5}`, "128.0.0.0/1", true},
		// A /0 would ban every client of the fleet: refused like ParseTarget.
		{`{"op":"ban","target":"0.0.0.0/0","expires":5}`, "", false},
		{`{"target":"::/0","expires":5}`, "", false},
		{`{"op":"unban","target":"::/0"}`, "", false},
		{`{"op":"ban","target":"192.0.2.1/24","expires":5}`, "", false},
		{`{"op":"ban","target":"::ffff:1.2.3.4/128","expires":5}`, "", false},
		{`{"op":"ban","target":"192.0.2.1/32"}`, "", false},
		{`{"op":"ban","target":"192.0.2.1/32","expires":5,"level":63}`, "", false},
		{`{"op":"maybe","target":"192.0.2.1/32","expires":5}`, "", false},
	}
	for _, tt := range tests {
		_, p, b, err := decodeWire([]byte(tt.in))
		if tt.target == "" {
			if err == nil {
				t.Errorf("decodeWire(%s) = %s %+v, want an error", tt.in, p, b)
			}
			continue
		}
		if err != nil || p.String() != tt.target || (b != nil) != tt.ban || (b != nil && b.Prefix != p) {
			t.Errorf("decodeWire(%s) = %s %+v %v, want %s (ban %v)", tt.in, p, b, err, tt.target, tt.ban)
		}
	}
	if _, _, _, err := decodeWire([]byte(`{"target":"0.0.0.0/0","expires":5}`)); !errors.Is(err, ErrTarget) {
		t.Errorf("a /0: %v, want ErrTarget", err)
	}
}

// TestSlashZeroFromRedisIsIgnored: a /0 written to the shared hash or
// published on the channel by a bad writer bans no one.
func TestSlashZeroFromRedisIsIgnored(t *testing.T) {
	srv := redistest.Start(t)
	store := newBanStore(100, 100)
	s := testSyncer(t, srv.Addr, store)
	exp := time.Now().Add(time.Hour).UnixMilli()
	for _, target := range []string{"0.0.0.0/0", "::/0"} {
		v := fmt.Sprintf(`{"target":%q,"source":"waf","expires":%d}`, target, exp)
		if err := s.client.HSet(context.Background(), s.key, target, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.fullSync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := store.held(); n != 0 {
		t.Fatalf("a /0 in the hash: %d bans held, want none", n)
	}
	s.apply([]byte(fmt.Sprintf(`{"op":"ban","target":"::/0","expires":%d,"node":"other"}`, exp)))
	if n := store.held(); n != 0 {
		t.Fatalf("a /0 published: %d bans held, want none", n)
	}
}

// TestDroppedChangesSurviveTheResync: with Redis down the queue fills; a
// ban that finds it full stays local and an unban is queued anyway. When
// Redis returns with its data intact (same epoch), the next full sync
// writes the dropped ban back instead of deleting it as one Redis does not
// know, the unban is not undone by Redis's older copy, and a ban from
// before the outage that Redis lifted meanwhile is not written back.
func TestDroppedChangesSurviveTheResync(t *testing.T) {
	srv := redistest.Start(t)
	store := newBanStore(100, 100)
	s := testSyncer(t, srv.Addr, store)
	ctx := context.Background()
	now := time.Now() // syncs read the real clock: the bans last an hour
	ban := func(p string, created time.Time) *Ban {
		return &Ban{Prefix: netip.MustParsePrefix(p), Reason: "r", Source: "waf", Created: created, Expires: now.Add(time.Hour)}
	}
	local := func(b *Ban) { store.put(b); s.publish(b.Prefix, b) }

	before := now.Add(-time.Minute)
	lifted, liftedElsewhere := ban("192.0.2.1/32", before), ban("192.0.2.4/32", before)
	queued, dropped := ban("192.0.2.2/32", now), ban("192.0.2.3/32", now)
	local(lifted)
	local(liftedElsewhere)
	if err := s.fullSync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := redisPrefixes(t, s); !slices.Equal(got, []string{"192.0.2.1/32", "192.0.2.4/32"}) {
		t.Fatalf("Redis before the outage: %v", got)
	}

	// The outage: nothing is flushed from here to the next sync, and the
	// queue holds one change.
	s.maxPending = 1
	local(queued)
	local(dropped) // the queue is full: dropped
	store.remove(lifted.Prefix)
	s.publish(lifted.Prefix, nil) // an unban is queued past the bound
	if n := s.dropped.Load(); n != 1 {
		t.Fatalf("dropped %d changes, want 1", n)
	}
	// Another node lifts a ban meanwhile; this one misses the message.
	if err := s.client.HDel(ctx, s.key, liftedElsewhere.Prefix.String()).Err(); err != nil {
		t.Fatal(err)
	}

	if err := s.fullSync(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.2/32", "192.0.2.3/32"}
	if got := heldPrefixes(store, time.Now()); !slices.Equal(got, want) {
		t.Errorf("held after Redis returned: %v, want %v", got, want)
	}
	if got := redisPrefixes(t, s); !slices.Equal(got, want) {
		t.Errorf("Redis after it returned: %v, want %v", got, want)
	}
	if s.pending() != 0 {
		t.Errorf("%d changes still queued", s.pending())
	}
}

// TestAdoptKeepsChangesMadeDuringSync: a full sync replaces the bans with
// what it read from Redis, except where this node changed a prefix while
// it read: those changes are newer than what it read.
func TestAdoptKeepsChangesMadeDuringSync(t *testing.T) {
	now := t0
	ban := func(p string, expires time.Duration) *Ban {
		return &Ban{Prefix: netip.MustParsePrefix(p), Source: "waf", Created: now.Add(-2 * time.Hour), Expires: now.Add(expires)}
	}
	a, a2, b, c := ban("192.0.2.1/32", time.Hour), ban("192.0.2.1/32", 2*time.Hour), ban("192.0.2.2/32", time.Hour), ban("192.0.2.3/32", time.Hour)
	aExpired := ban("192.0.2.1/32", -time.Hour)
	tests := []struct {
		name           string
		before         []*Ban                           // stored when the sync began
		during         func(store *banStore, s *syncer) // while it read Redis
		redis          []*Ban                           // what it read
		want           []*Ban                           // stored after
		added, removed int
	}{
		{"a ban Redis no longer has is lifted", []*Ban{a}, nil, nil, nil, 0, 1},
		{"a ban Redis has is added", nil, nil, []*Ban{a}, []*Ban{a}, 1, 0},
		{"Redis's copy replaces an unchanged one", []*Ban{a}, nil, []*Ban{a2}, []*Ban{a2}, 1, 0},
		{"a ban made and queued meanwhile stays", nil, func(st *banStore, s *syncer) {
			st.put(b)
			s.publish(b.Prefix, b)
		}, nil, []*Ban{b}, 0, 0},
		{"a ban stored but not yet queued stays", nil, func(st *banStore, s *syncer) {
			st.put(b)
		}, nil, []*Ban{b}, 0, 0},
		{"a ban stored before and queued meanwhile stays", []*Ban{b}, func(st *banStore, s *syncer) {
			s.publish(b.Prefix, b)
		}, nil, []*Ban{b}, 0, 0},
		{"an unban not yet queued is not undone", []*Ban{a}, func(st *banStore, s *syncer) {
			st.remove(a.Prefix)
		}, []*Ban{a}, nil, 0, 0},
		{"a queued unban is not undone", []*Ban{a}, func(st *banStore, s *syncer) {
			st.remove(a.Prefix)
			s.publish(a.Prefix, nil)
		}, []*Ban{a}, nil, 0, 0},
		{"a message's unban is not undone", nil, func(st *banStore, s *syncer) {
			s.recent = map[netip.Prefix]bool{c.Prefix: true}
		}, []*Ban{c}, nil, 0, 0},
		{"a ban swept meanwhile comes back from Redis", []*Ban{aExpired}, func(st *banStore, s *syncer) {
			st.sweep(now)
		}, []*Ban{a}, []*Ban{a}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newBanStore(100, 100)
			s := testSyncer(t, "127.0.0.1:1", store) // never dialled
			for _, x := range tt.before {
				store.put(x)
			}
			since := store.table.Load()
			if tt.during != nil {
				tt.during(store, s)
			}
			want := map[netip.Prefix]*Ban{}
			for _, x := range tt.redis {
				want[x.Prefix] = x
			}
			added, removed := s.adopt(want, since, now)
			got := maps.Collect(store.table.Load().All())
			wantHeld := map[netip.Prefix]*Ban{}
			for _, x := range tt.want {
				wantHeld[x.Prefix] = x
			}
			if !maps.Equal(got, wantHeld) || added != tt.added || removed != tt.removed {
				t.Errorf("held %v (added %d, removed %d), want %v (added %d, removed %d)",
					got, added, removed, wantHeld, tt.added, tt.removed)
			}
			store.mu.Lock()
			defer store.mu.Unlock()
			if store.strikeBans != strikeBansIn(store) {
				t.Errorf("the store counts %d strike bans, holds %d", store.strikeBans, strikeBansIn(store))
			}
		})
	}
}

// TestPublishDoesNotWaitForAdopt: while a full sync rewrites the ban table,
// publish (the queueing a strike ban does on the request path) completes
// without waiting for it, and a message applied meanwhile is not undone by
// it. The store's hook holds the replace at its midpoint until the test
// lets it go, so the overlap is certain rather than a matter of timing.
func TestPublishDoesNotWaitForAdopt(t *testing.T) {
	now := t0
	ban := func(p string) *Ban {
		return &Ban{Prefix: netip.MustParsePrefix(p), Source: "waf", Created: now, Expires: now.Add(time.Hour)}
	}
	stale, fromRedis, lifted, struck := ban("192.0.2.1/32"), ban("192.0.2.2/32"), ban("192.0.2.3/32"), ban("192.0.2.4/32")
	store := newBanStore(100, 100)
	s := testSyncer(t, "127.0.0.1:1", store) // never dialled
	store.put(stale)
	since := store.table.Load()
	s.recent = map[netip.Prefix]bool{} // as fullSync sets it

	entered, release := make(chan struct{}), make(chan struct{})
	store.replacing = func() {
		close(entered)
		<-release
	}
	type result struct{ added, removed int }
	adopted := make(chan result, 1)
	go func() {
		added, removed := s.adopt(map[netip.Prefix]*Ban{fromRedis.Prefix: fromRedis, lifted.Prefix: lifted}, since, now)
		adopted <- result{added, removed}
	}()
	<-entered

	published := make(chan struct{})
	go func() {
		s.publish(struck.Prefix, struck)
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Error("publish waited for the replace of a full sync")
	}
	// Another node lifts a ban while the replace runs; it is applied after.
	msg := fmt.Sprintf(`{"op":"unban","target":%q,"node":"other"}`, lifted.Prefix)
	applied := make(chan struct{})
	go func() {
		s.apply([]byte(msg))
		close(applied)
	}()

	close(release)
	got := <-adopted
	<-published
	<-applied
	if got != (result{2, 1}) {
		t.Errorf("adopt added %d and removed %d bans, want 2 and 1", got.added, got.removed)
	}
	if held := heldPrefixes(store, now); !slices.Equal(held, []string{fromRedis.Prefix.String()}) {
		t.Errorf("held %v, want only %s", held, fromRedis.Prefix)
	}
	if n := s.pending(); n != 1 {
		t.Errorf("%d changes queued, want the ban published during the sync", n)
	}
}
