// Package quota owns per-client business quotas enforced with GCRA (the
// generic cell rate algorithm): one limit per (policy, client), kept in
// Redis so that every edge node enforces the same quota, or in memory for a
// single node, with a defined behaviour when Redis fails.
package quota

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
	"github.com/edgeguard/edgeguard/internal/usagepool"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
)

// Name is the stage name, as in the config.
const Name = "quota"

// Filter is the quota stage. It is safe for concurrent use.
type Filter struct {
	mode     filters.Mode
	log      *slog.Logger
	sources  []KeySource
	policies []policy
	prefix   string
	onError  OnError
	timeout  time.Duration
	// keys are the hashes of the API keys header: and cookie: sources
	// accept (nil without keys_file); jwt verifies jwt: sources.
	keys map[KeyHash]struct{}
	jwt  *jwtVerifier

	fleetSize    int64  // fleet_size as a number; 0 with fleet
	fleet        *fleet // fleet_size: auto's count, nil otherwise
	fleetRelease func() error

	mem     *MemoryStore // the store when Config.Store is memory
	conn    *redisConn   // the store when Config.Store is redis
	release func() error // gives conn back to redisConns
	local   *MemoryStore // on_error: local's limiter
	breaker *breaker
	denied  *lru.Cache[deniedKey, int64]

	stats  stats
	closed atomic.Bool
}

// policy is a Policy compiled for the request path.
type policy struct {
	name    string
	limit   filters.Limit
	cost    int64
	shadow  bool
	item    string // RateLimit-Policy member for limit
	prefix  filters.PathPrefix
	methods []string
	host    string
	tierHdr string
	tiers   map[string]tier
}

// tier is one entry of Policy.Tiers. All tiers of a policy share the
// policy's state (one Redis key per client), so a client that switches
// tiers carries its debt along instead of getting each tier's quota anew.
type tier struct {
	limit filters.Limit
	item  string
	idx   int // 1-based; 0 is the policy's own limit
}

// deniedKey names an entry of the over-limit cache: one client under one
// policy. Pointer-free, so a large cache costs the GC nothing to scan.
type deniedKey struct {
	client [16]byte
	policy int
	tier   int
}

type stats struct {
	allowed, denied, shadowDenied   atomic.Int64
	cacheHits, storeErrors          atomic.Int64
	fbLocal, fbAllow, fbDeny, noKey atomic.Int64
	unverified                      atomic.Int64
}

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

// New builds the stage. With store: redis it connects lazily (New does not
// wait for Redis; Ready reports it). Filters with the same Redis settings
// share one client, so a reload does not reconnect (the new Filter is
// built while the old one still holds the client); the memory stores of a
// quota Filter in env.Previous are taken over, so a reload does not forget
// who has used what.
func New(cfg Config, env filters.Env) (*Filter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("quota: config: %w", err)
	}
	f := &Filter{
		mode:      cfg.Mode,
		log:       env.Log(Name),
		prefix:    cfg.KeyPrefix,
		onError:   cfg.OnError,
		fleetSize: int64(cfg.FleetSize),
		timeout:   cfg.Redis.CallTimeout(),
	}
	if err := f.loadVerifiers(cfg, env.Dir); err != nil {
		return nil, err
	}
	if f.mode == "" {
		f.mode = filters.ModeBlock
	}
	if f.prefix == "" {
		f.prefix = DefaultKeyPrefix
	}
	if f.onError == "" {
		f.onError = OnErrorLocal
	}
	keys := cfg.Key
	if len(keys) == 0 {
		keys = []string{"ip"}
	}
	for _, s := range keys {
		k, _ := ParseKeySource(s) // validated
		f.sources = append(f.sources, k)
		if (k.Kind == KeyHeader || k.Kind == KeyCookie) && f.keys == nil {
			f.log.Warn("quota key source not verified: without keys_file it is believed only on requests forwarded by a trusted proxy",
				"source", k.String())
		}
	}
	for _, p := range cfg.Policies {
		if p.Mode == filters.ModeOff {
			continue
		}
		f.policies = append(f.policies, compilePolicy(p))
	}
	size := cfg.LocalCacheSize
	if size == 0 {
		size = DefaultLocalCacheSize
	}
	denied, err := lru.New[deniedKey, int64](size)
	if err != nil {
		return nil, fmt.Errorf("quota: over-limit cache of %d entries: %w", size, err)
	}
	f.denied = denied
	prev, _ := env.Previous.(*Filter)

	if cfg.Store != StoreRedis {
		if prev != nil && prev.mem != nil {
			f.mem = prev.mem
		} else {
			f.mem = NewMemoryStore(cfg.MaxKeys)
		}
		return f, nil
	}
	batch := cfg.Batch != BatchOff
	key := fmt.Sprintf("batch=%t %s", batch, cfg.Redis.Key())
	f.conn, f.release, err = redisConns.Acquire(key, func() (*redisConn, error) { return dialRedis(cfg.Redis, batch) })
	if err != nil {
		return nil, err
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
	return f, nil
}

// loadVerifiers reads keys_file and the jwt block's keys, relative to dir.
func (f *Filter) loadVerifiers(cfg Config, dir string) error {
	var err error
	if cfg.KeysFile != "" {
		if f.keys, err = loadKeys(dir, cfg.KeysFile); err != nil {
			return fmt.Errorf("keys_file: %w", err)
		}
	}
	if cfg.JWT != nil {
		if f.jwt, err = newJWTVerifier(cfg.JWT, dir); err != nil {
			return fmt.Errorf("jwt: %w", err)
		}
	}
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

func compilePolicy(p Policy) policy {
	cost := p.Cost
	if cost == 0 {
		cost = 1
	}
	c := policy{
		name:    p.Name,
		limit:   filters.LimitOf(p.Rate, p.Burst),
		cost:    cost,
		shadow:  p.Mode == filters.ModeShadow,
		prefix:  filters.NewPathPrefix(p.Match.PathPrefix, filters.AnyByte, filters.AnySpelling),
		methods: p.Match.Methods,
		host:    filters.MatchHost(p.Match.Host),
	}
	c.item = policyItem(c.name, c.limit)
	if p.Tiers != nil {
		c.tierHdr = http.CanonicalHeaderKey(p.Tiers.Header)
		c.tiers = make(map[string]tier, len(p.Tiers.Values))
		for i, v := range slices.Sorted(maps.Keys(p.Tiers.Values)) {
			l := filters.LimitOf(p.Tiers.Values[v].Rate, p.Tiers.Values[v].Burst)
			c.tiers[v] = tier{limit: l, item: policyItem(c.name, l), idx: i + 1}
		}
	}
	return c
}

// Name returns "quota".
func (f *Filter) Name() string { return Name }

// matches reports whether r is subject to p. The host is compared in its
// normal form (filters.MatchHost); the path prefix holds when it covers
// (filters.PathPrefix, every spelling) either the normal form of the path
// (filters.MatchPath) or the path as sent: a normalising backend routes the
// one, a backend that resolves nothing the other, and the policy must hold
// for both.
func (p *policy) matches(r *http.Request) bool {
	if !p.prefix.IsZero() && !p.prefix.Covers(filters.MatchPath(r.URL.Path)) && !p.prefix.Covers(sentPath(r.URL)) {
		return false
	}
	if len(p.methods) > 0 {
		found := false
		for _, m := range p.methods {
			if m == r.Method {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if p.host != "" && filters.MatchHost(r.Host) != p.host {
		return false
	}
	return true
}

// tierFor returns r's tier of p (the policy's own limit as tier 0). The
// tier header is believed only on a request that came through a trusted
// L7 proxy (its client address was read from a forwarding header, which
// ipparse reads only from trusted_proxies): anyone else could name the
// tier they like, so they get the policy's own limit.
func (p *policy) tierFor(r *filters.Request) tier {
	if p.tiers != nil && r.HTTP != nil && r.Source == filters.SourceHeader {
		if t, ok := p.tiers[r.HTTP.Header.Get(p.tierHdr)]; ok {
			return t
		}
	}
	return tier{limit: p.limit, item: p.item}
}

// clientID hashes the first key source of r that is present and trusted,
// with the source's name, so that equal values from different sources stay
// different clients and no raw API key or cookie leaves the process. byIP
// says the source was the client address. A source the client could have
// invented is trusted only when verified (see Config.Key); one that fails
// is counted and passes to the next source, so an invented key meets the
// per-IP limit rather than a fresh bucket.
func (f *Filter) clientID(r *filters.Request) (id [16]byte, byIP, ok bool) {
	for _, s := range f.sources {
		if s.Kind == KeyIP {
			if r.Client.IsValid() {
				return hashID(string(KeyIP), string(r.Key[:])), true, true
			}
			continue
		}
		if r.HTTP == nil {
			continue
		}
		value, present, trusted := f.keyValue(r, s)
		if !present {
			continue
		}
		if !trusted {
			f.stats.unverified.Add(1)
			continue
		}
		return hashID(s.String(), value), false, true
	}
	return [16]byte{}, false, false
}

// keyValue reads source s of r: present says the request carries it,
// trusted that it passed verification.
func (f *Filter) keyValue(r *filters.Request, s KeySource) (value string, present, trusted bool) {
	switch s.Kind {
	case KeyHeader:
		value = r.HTTP.Header.Get(s.Name)
	case KeyCookie:
		if c, err := r.HTTP.Cookie(s.Name); err == nil {
			value = c.Value
		}
	case KeyJWT:
		if r.HTTP.Header.Get(f.jwt.header) == "" {
			return "", false, false
		}
		value, trusted = f.jwt.claim(r.HTTP, s.Name, r.Now)
		return value, true, trusted
	}
	if value == "" {
		return "", false, false
	}
	if f.keys == nil {
		// Nothing to verify against: believed only from a trusted L7
		// proxy (client_ip.trusted_proxies), which must set it.
		return value, true, r.Source == filters.SourceHeader
	}
	_, known := f.keys[HashKey(value)]
	return value, true, known
}

func hashID(source, value string) [16]byte {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(value))
	var sum [32]byte
	var id [16]byte
	copy(id[:], h.Sum(sum[:0]))
	return id
}

// stateKey is the Redis key of one client under one policy. The client
// part is the hash tag, so all of a client's policies live in one Cluster
// slot and one script call can decide them together.
func (f *Filter) stateKey(id [16]byte, policy string) string {
	var enc [22]byte
	base64.RawURLEncoding.Encode(enc[:], id[:])
	return f.prefix + "{" + string(enc[:]) + "}:" + policy
}

// outcome says where a decision came from.
type outcome uint8

const (
	fromStore outcome = iota
	fromLocal
	failOpen
	failClosed
)

// Check decides r against every matching policy.
func (f *Filter) Check(r *filters.Request) filters.Verdict {
	id, byIP, ok := f.clientID(r)
	if !ok {
		f.stats.noKey.Add(1)
		return filters.Allow
	}
	var (
		askBuf  [4]Ask
		idxBuf  [4]deniedKey
		itemBuf [4]string
	)
	// A deny counted against an API key or a token says nothing about the
	// address that sent it: anyone may send a victim's key.
	q := asking{asks: askBuf[:0], idx: idxBuf[:0], items: itemBuf[:0], notClient: !byIP}
	for i := range f.policies {
		p := &f.policies[i]
		if r.HTTP != nil && !p.matches(r.HTTP) {
			continue
		}
		t := p.tierFor(r)
		q.asks = append(q.asks, Ask{Key: f.stateKey(id, p.name), Limit: t.limit, Cost: p.cost, Shadow: p.shadow})
		q.idx = append(q.idx, deniedKey{id, i, t.idx})
		q.items = append(q.items, t.item)
	}
	if len(q.asks) == 0 {
		return filters.Allow
	}
	now := r.Now
	if v, ok := f.cachedDeny(now, &q); ok {
		return v
	}

	var resBuf [4]Result
	results := resBuf[:len(q.asks)]
	if len(q.asks) > len(resBuf) {
		results = make([]Result, len(q.asks))
	}
	allowed, how := f.take(now, q.asks, results)

	switch how {
	case failOpen:
		f.stats.allowed.Add(1)
		r.Annotate(Name, "store unavailable: allowed (on_error allow)")
		return filters.Verdict{Headers: filters.RateLimitHeaders(q.items, nil)}
	case failClosed:
		// An outage is not the client's doing: 503, not 429, and no
		// strike (Overload). No RateLimit state is known to send.
		f.stats.denied.Add(1)
		return filters.Verdict{
			Deny:       true,
			Status:     http.StatusServiceUnavailable,
			Reason:     "quota store unavailable",
			RetryAfter: max(f.breaker.retryIn(now), time.Second),
			Overload:   true,
			Shadow:     f.mode == filters.ModeShadow,
		}
	case fromLocal:
		r.Annotate(Name, "store unavailable: local limit (on_error local)")
	}
	return f.verdict(now, &q, results, allowed, how)
}

// asking is one request's asks, each with its over-limit cache entry and
// its RateLimit-Policy member, and what its denies are counted against.
// It holds no time.Time (whose *Location would make the escape analysis
// move the caller's stack buffers to the heap).
type asking struct {
	asks      []Ask
	idx       []deniedKey
	items     []string
	notClient bool
}

// cachedDeny denies q at now without a store call while the over-limit
// cache holds one of its policies: a client Redis denied until T is denied
// here until T, as a GCRA deny writes nothing, so nothing can make it pass
// sooner.
func (f *Filter) cachedDeny(now time.Time, q *asking) (filters.Verdict, bool) {
	for i := range q.asks {
		if q.asks[i].Shadow {
			continue
		}
		until, ok := f.denied.Get(q.idx[i])
		if !ok {
			continue
		}
		left := time.Duration(until - now.UnixNano())
		if left <= 0 {
			f.denied.Remove(q.idx[i])
			continue
		}
		f.stats.cacheHits.Add(1)
		f.stats.denied.Add(1)
		name := f.policies[q.idx[i].policy].name
		return filters.Verdict{
			Deny:       true,
			Status:     http.StatusTooManyRequests,
			Reason:     "quota " + name,
			RetryAfter: left,
			Headers:    filters.RateLimitHeaders(q.items, []string{stateItem(name, Result{RetryAfter: left})}),
			Shadow:     f.mode == filters.ModeShadow,
			NotClient:  q.notClient,
		}, true
	}
	return filters.Verdict{}, false
}

// verdict turns the results of q's decision into the stage's verdict,
// caching the denies the store made.
func (f *Filter) verdict(now time.Time, q *asking, results []Result, allowed bool, how outcome) filters.Verdict {
	states := make([]string, len(q.asks))
	var (
		denyName, shadowName string
		retry                time.Duration
	)
	for i := range q.asks {
		res := &results[i]
		name := f.policies[q.idx[i].policy].name
		states[i] = stateItem(name, *res)
		if res.Allowed {
			continue
		}
		if q.asks[i].Shadow {
			if shadowName == "" {
				shadowName = name
			}
			continue
		}
		if denyName == "" {
			denyName = name
		}
		retry = max(retry, res.RetryAfter)
		if how == fromStore {
			f.denied.Add(q.idx[i], now.Add(res.RetryAfter).UnixNano())
		}
	}
	headers := filters.RateLimitHeaders(q.items, states)
	switch {
	case !allowed:
		f.stats.denied.Add(1)
		return filters.Verdict{
			Deny:       true,
			Status:     http.StatusTooManyRequests,
			Reason:     "quota " + denyName,
			RetryAfter: retry,
			Headers:    headers,
			Shadow:     f.mode == filters.ModeShadow,
			NotClient:  q.notClient,
		}
	case shadowName != "":
		// A policy on trial would have denied: the chain reports it and
		// lets the request pass.
		f.stats.shadowDenied.Add(1)
		return filters.Verdict{
			Deny:      true,
			Shadow:    true,
			Status:    http.StatusTooManyRequests,
			Reason:    "quota " + shadowName,
			Headers:   headers,
			NotClient: q.notClient,
		}
	}
	f.stats.allowed.Add(1)
	return filters.Verdict{Headers: headers}
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

// Readiness implements filters.ReadinessReporter: the stage decides from
// its own on_error. A node whose quota falls back to local limiting or
// fails open still serves correctly without Redis; only on_error: deny
// makes Redis a requirement, and only then may its loss take the node out
// of the load balancer (taking every node out at once would turn a Redis
// outage into a full one).
func (f *Filter) Readiness(ctx context.Context) error {
	if f.onError != OnErrorDeny {
		return nil
	}
	return f.Ready(ctx)
}

// Close releases the Redis client unless a newer Filter took it over. The
// Filter still answers afterwards, through on_error.
func (f *Filter) Close() error {
	if f.closed.Swap(true) || f.release == nil {
		return nil
	}
	if f.fleetRelease != nil {
		_ = f.fleetRelease() // before the client it announces on
	}
	return f.release()
}

// CollectMetrics implements filters.MetricsSource.
func (f *Filter) CollectMetrics(emit func(filters.Sample)) {
	s := &f.stats
	counter := func(name, help string, v int64, labels ...string) {
		emit(filters.Sample{Name: name, Help: help, Kind: filters.Counter, Labels: labels, Value: float64(v)})
	}
	const decisions = "quota_decisions_total"
	const decisionsHelp = "Quota decisions by result."
	counter(decisions, decisionsHelp, s.allowed.Load(), "result", "allow")
	counter(decisions, decisionsHelp, s.denied.Load(), "result", "deny")
	counter(decisions, decisionsHelp, s.shadowDenied.Load(), "result", "shadow_deny")
	counter(decisions, decisionsHelp, s.noKey.Load(), "result", "no_key")
	counter("quota_unverified_keys_total", "Key sources a request carried that failed verification (an unknown API key, a forged or expired token) and passed to the next source.", s.unverified.Load())
	counter("quota_cache_hits_total", "Requests denied by the local over-limit cache without a store call.", s.cacheHits.Load())
	counter("quota_store_errors_total", "Failed quota store calls (errors and timeouts).", s.storeErrors.Load())
	const fb = "quota_fallbacks_total"
	const fbHelp = "Decisions made by on_error because the store failed or the breaker was open."
	counter(fb, fbHelp, s.fbLocal.Load(), "on_error", string(OnErrorLocal))
	counter(fb, fbHelp, s.fbAllow.Load(), "on_error", string(OnErrorAllow))
	counter(fb, fbHelp, s.fbDeny.Load(), "on_error", string(OnErrorDeny))
	if f.conn != nil && f.onError == OnErrorLocal {
		emit(filters.Sample{Name: "quota_fleet_size", Help: "Nodes on_error: local divides the quota by: the count last seen in Redis (fleet_size: auto) or the configured number.",
			Kind: filters.Gauge, Value: float64(f.share())})
	}
	if f.breaker != nil {
		emit(filters.Sample{Name: "quota_breaker_state", Help: "Redis circuit breaker: 0 closed, 1 open, 2 half-open.",
			Kind: filters.Gauge, Value: float64(f.breaker.state.Load())})
		counter("quota_breaker_opens_total", "Times the Redis circuit breaker opened.", f.breaker.opens.Load())
	}
}

var (
	_ filters.Filter            = (*Filter)(nil)
	_ filters.MetricsSource     = (*Filter)(nil)
	_ filters.Closer            = (*Filter)(nil)
	_ filters.ReadinessReporter = (*Filter)(nil)
)

// sentPath is the path as the client sent it, decoded unless decoding
// would change it (an escaped "/").
func sentPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.Path
}
