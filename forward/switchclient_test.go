package forward

import (
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
	"github.com/edgeguard/edgeguard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestReloadKeepsSwitchClient: a reload's new forwarder takes the closed
// switch's Redis client the old one holds instead of dialing another; the
// client outlives the old forwarder's Close, and the last Close closes it.
func TestReloadKeepsSwitchClient(t *testing.T) {
	srv := redistest.Start(t)
	b := startBackend(t, "shop", nil)
	rc := redisconf.Config{Addrs: []string{srv.Addr}, Timeout: filters.Duration(time.Second)}
	cfg := Config{Upstream: b.url(),
		Routes:       []Route{{Name: "checkout", Path: "/checkout", Shield: Shield{Closed: ClosedResponse{Status: 410}}}},
		ClosedSwitch: SwitchConfig{Redis: rc, Channel: "test:closed", Resync: filters.Duration(time.Hour)},
	}
	key := rc.Key()
	old, err := New(cfg, Env{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg, Env{Previous: old})
	if err != nil {
		t.Fatal(err)
	}
	if n := switchClients.Users(key); n != 2 {
		t.Fatalf("%d users of the switch client, want 2 (old and new forwarder)", n)
	}
	if old.fleet.rdb != f.fleet.rdb {
		t.Fatal("the reloaded forwarder dialed its own switch client")
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if n := switchClients.Users(key); n != 1 {
		t.Fatalf("%d users after the old forwarder closed, want 1", n)
	}
	// The client the old forwarder let go still carries the new one's
	// switch.
	if err := f.SetClosed(t.Context(), "checkout", true); err != nil {
		t.Fatalf("closing a route after the old forwarder closed: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if ok, err := rdb.SIsMember(t.Context(), "test:closed:set", "checkout").Result(); err != nil || !ok {
		t.Fatalf("Redis has checkout closed = %v (%v), want true", ok, err)
	}
	shared := f.fleet.rdb
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := switchClients.Users(key); n != 0 {
		t.Fatalf("%d users after the last forwarder closed, want 0", n)
	}
	if err := shared.Ping(t.Context()).Err(); err != redis.ErrClosed {
		t.Fatalf("Ping on the switch client after the last Close: %v, want redis.ErrClosed", err)
	}
}
