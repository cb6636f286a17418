package quota

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
	"github.com/edgeguard/edgeguard/internal/usagepool"
	"github.com/redis/go-redis/v9"
)

// This file is the store path: a decision goes to the memory store, or to
// Redis through the breaker and, while Redis fails, to on_error's fallback.

// redisConn is a Redis client and the store on it, shared through
// redisConns by every Filter with the same Redis settings: successive ones
// across reloads, and the instances of several routes.
type redisConn struct {
	cfg    redisconf.Config
	batch  bool
	client redis.UniversalClient
	store  *RedisStore
}

func (c *redisConn) Close() error { return c.client.Close() }

// redisConns holds the clients of the process's quota Filters; the last
// Filter to close one closes it. fleets holds their announcers in the same
// way: the Filters of every route and of successive reloads are one node.
var (
	redisConns usagepool.Pool[*redisConn]
	fleets     usagepool.Pool[*fleet]
)

// connect gives f its Redis store (store: redis): the client of every
// Filter with the same Redis settings, the fleet it counts itself in for
// on_error: local, the local fallback limiter (taken over from prev, so a
// reload does not forget an outage's spending), and the breaker.
func (f *Filter) connect(cfg Config, prev *Filter) error {
	batch := cfg.Batch != BatchOff
	key := fmt.Sprintf("batch=%t %s", batch, cfg.Redis.Key())
	var err error
	f.conn, f.release, err = redisConns.Acquire(key, func() (*redisConn, error) { return dialRedis(cfg.Redis, batch) })
	if err != nil {
		return err
	}
	if cfg.FleetSize == FleetAuto && f.onError == OnErrorLocal {
		f.joinFleet(cfg.Fleet, key)
	}
	if prev != nil && prev.local != nil {
		f.local = prev.local
	} else if f.onError == OnErrorLocal {
		f.local = NewMemoryStore(cfg.MaxKeys)
	}
	b := cfg.Breaker
	fails, backoff, maxBackoff := b.Failures, b.Backoff.D(), b.MaxBackoff.D()
	if fails == 0 {
		fails = DefaultBreakerFails
	}
	if backoff == 0 {
		backoff = DefaultBreakerBackoff
	}
	if maxBackoff == 0 {
		maxBackoff = max(DefaultBreakerMax, backoff)
	}
	f.breaker = newBreaker(fails, backoff, maxBackoff)
	return nil
}

// joinFleet starts (or shares) this process's announcements in the fleet
// of the Redis under connKey and the key prefix.
func (f *Filter) joinFleet(cfg Fleet, connKey string) {
	every, ttl, node := cfg.Announce.D(), cfg.TTL.D(), cfg.Node
	if every == 0 {
		every = DefaultFleetAnnounce
	}
	if ttl == 0 {
		ttl = DefaultFleetTTLs * every
	}
	if node == "" {
		node = processNode()
	}
	setKey := f.prefix + "fleet"
	key := fmt.Sprintf("%s set=%s node=%s every=%s ttl=%s", connKey, setKey, node, every, ttl)
	client, log, timeout := f.conn.client, f.log, f.timeout
	f.fleet, f.fleetRelease, _ = fleets.Acquire(key, func() (*fleet, error) {
		return newFleet(client, setKey, node, every, ttl, timeout, log).start(), nil
	})
}

// share is the number of nodes on_error: local divides the quota by.
func (f *Filter) share() int64 {
	if f.fleet != nil {
		return f.fleet.Size()
	}
	return max(f.fleetSize, 1)
}

func dialRedis(cfg redisconf.Config, batch bool) (*redisConn, error) {
	o := cfg.Options()
	// Without this go-redis bounds each socket operation by the timeout but
	// not the call as a whole (pool wait + write + read); the per-request
	// context must be the bound.
	o.ContextTimeoutEnabled = true
	c := &redisConn{cfg: cfg, batch: batch, client: redis.NewUniversalClient(o)}
	c.store = NewRedisStore(c.client)
	if batch {
		ap, err := c.client.AsyncAutoPipeline()
		if err != nil {
			_ = c.client.Close()
			return nil, fmt.Errorf("quota: redis %v: auto-pipelining: %w", cfg.Addrs, err)
		}
		c.store = NewBatchedRedisStore(ap)
	}
	return c, nil
}

// stateKey is the Redis key of one client under one policy. The client
// part is the hash tag, so all of a client's policies live in one Cluster
// slot and one script call can decide them together.
func (f *Filter) stateKey(id [16]byte, policy string) string {
	var enc [22]byte
	base64.RawURLEncoding.Encode(enc[:], id[:])
	return f.prefix + "{" + string(enc[:]) + "}:" + policy
}

// take asks the store, and on_error's fallback when the store fails or the
// breaker is open. It never waits longer than the Redis timeout.
func (f *Filter) take(now time.Time, asks []Ask, results []Result) (bool, outcome) {
	if f.conn == nil {
		ok, err := f.mem.TakeAt(now, asks, results)
		if err != nil {
			// Only an ask the config validation should have refused.
			f.stats.storeErrors.Add(1)
			f.log.Error("quota decision refused", "err", err)
			return true, failOpen
		}
		return ok, fromStore
	}
	if f.breaker.allow(now) {
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		ok, err := f.conn.store.Take(ctx, now, asks, results)
		cancel()
		if err == nil {
			f.breaker.success()
			return ok, fromStore
		}
		f.stats.storeErrors.Add(1)
		if f.breaker.failure(now) {
			f.log.Warn("redis failing: breaker open, using on_error", "on_error", f.onError, "err", err)
		}
	}
	switch f.onError {
	case OnErrorAllow:
		f.stats.fbAllow.Add(1)
		return true, failOpen
	case OnErrorDeny:
		f.stats.fbDeny.Add(1)
		return false, failClosed
	}
	f.stats.fbLocal.Add(1)
	scaled := make([]Ask, len(asks))
	for i, a := range asks {
		a.Limit = localShare(a.Limit, a.Cost, f.share())
		scaled[i] = a
	}
	ok, err := f.local.TakeAt(now, scaled, results)
	if err != nil {
		f.log.Error("local quota decision refused", "err", err)
		return true, failOpen
	}
	return ok, fromLocal
}

// localShare is one node's share of l while the fleet's nodes decide alone
// (on_error: local): the rate and the burst divided by fleet, the burst
// rounded up and at least cost. The share stays within what a store can
// decide (burst and cost times interval within maxSpan, see checkAsks), or
// every request would fail open for the whole outage: the burst is cut to
// fit (stricter), and where even one request's cost would not fit, the
// interval is cut to the longest that fits it. cost is at least 1 and l
// passed checkLimit with it. The share's rate is one request per share
// interval, so that the interval is exactly fleet times the policy's.
func localShare(l filters.Limit, cost, fleet int64) filters.Limit {
	fleet = max(fleet, 1)
	longest := time.Duration(maxSpan/cost) * usTick
	iv := longest
	if l.Rate.Interval() <= longest/time.Duration(fleet) { // no overflow either
		iv = l.Rate.Interval() * time.Duration(fleet)
	}
	s := filters.Limit{Rate: filters.Rate{Count: 1, Period: iv}}
	burst := l.Burst / fleet
	if l.Burst%fleet != 0 {
		burst++
	}
	s.Burst = min(max(burst, cost), maxSpan/s.GCRA(usTick).Interval)
	return s
}

// ErrBreakerOpen is returned by TakeAt while the breaker keeps calls away
// from a failing Redis.
var ErrBreakerOpen = errors.New("quota: redis breaker open")

// TakeAt asks the stage's store for one GCRA decision on any key, with the
// stage's timeout and breaker but not its on_error: a failed store returns
// the error, so the caller's own failure policy decides. The forward
// shield's fleet-wide route caps use it; they carry their own on_error.
// key is hashed before it reaches Redis. An ask no store can decide is
// refused with ErrAsk before the breaker is consulted: it says nothing about
// Redis, so it must not open the breaker for every client quota.
func (f *Filter) TakeAt(now time.Time, key string, limit filters.Limit, cost int64) (Result, error) {
	if cost < 1 {
		cost = 1
	}
	id := hashID("take", key)
	var enc [22]byte
	base64.RawURLEncoding.Encode(enc[:], id[:])
	asks := []Ask{{Key: f.prefix + "{" + string(enc[:]) + "}", Limit: limit, Cost: cost}}
	results := make([]Result, 1)
	if err := checkAsks(asks, results); err != nil {
		return Result{}, err
	}
	if f.conn == nil {
		ok, err := f.mem.TakeAt(now, asks, results)
		results[0].Allowed = ok
		return results[0], err
	}
	if !f.breaker.allow(now) {
		return Result{}, ErrBreakerOpen
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	ok, err := f.conn.store.Take(ctx, now, asks, results)
	cancel()
	if err != nil {
		f.stats.storeErrors.Add(1)
		if f.breaker.failure(now) {
			f.log.Warn("redis failing: breaker open", "err", err)
		}
		return Result{}, err
	}
	f.breaker.success()
	results[0].Allowed = ok
	return results[0], nil
}

// Ready reports whether the store answers: nil for the memory store, a
// PING within the Redis timeout otherwise. Readiness asks it when Redis
// is a requirement.
func (f *Filter) Ready(ctx context.Context) error {
	if f.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return pingRedis(ctx, f.conn.client)
}
