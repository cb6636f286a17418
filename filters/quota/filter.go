// Package quota owns per-client business quotas enforced with GCRA (the
// generic cell rate algorithm): one limit per (policy, client), kept in
// Redis so that every edge node enforces the same quota, or in memory for a
// single node, with a defined behaviour when Redis fails.
package quota

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	lru "github.com/hashicorp/golang-lru/v2"
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
	if err := f.connect(cfg, prev); err != nil {
		return nil, err
	}
	return f, nil
}

// loadVerifiers reads keys_file and the jwt block's keys, relative to dir.
func (f *Filter) loadVerifiers(cfg Config, dir string) error {
	var err error
	if cfg.KeysFile != "" {
		if f.keys, err = loadKeys(dir, cfg.KeysFile); err != nil {
			return &filters.FieldError{Field: "keys_file", Err: err}
		}
	}
	if cfg.JWT != nil {
		if f.jwt, err = newJWTVerifier(cfg.JWT, dir); err != nil {
			return filters.PrefixFields("jwt", err)
		}
	}
	return nil
}

// Name returns "quota".
func (f *Filter) Name() string { return Name }

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
