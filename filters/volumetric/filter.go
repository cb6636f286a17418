package volumetric

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// Name is the stage's name in the config and in verdicts.
const Name = "volumetric"

// Filter is the volumetric stage: it refuses a request with 429 and an
// exact Retry-After when the client's bucket is full. It implements
// filters.Filter and filters.MetricsSource; it holds no background work,
// so it has no Close.
type Filter struct {
	cfg    Config // with defaults applied
	lim    *Limiter
	shadow bool
	log    *slog.Logger
	// policy is the RateLimit-Policy header of every 429, the same for
	// all clients: built once.
	policy []string
	// denyHeaders holds the headers of a 429 by its wait in whole seconds,
	// built on first use and shared by every verdict (nobody changes a
	// verdict's Headers): a flood is refused without allocating.
	denyHeaders [maxSharedWait]atomic.Pointer[http.Header]
	// base holds the counters of the limiters this one replaced on
	// reloads, so the exposed counters never go backwards.
	base Stats
}

// New builds the stage. When env.Previous is a volumetric Filter it takes
// over the client buckets. Bursts are compared resolved, so burst: 0 and
// burst equal to the rate's count are the same burst:
//
//   - same rate, burst, max_clients and shards: it shares the previous
//     limiter, so every bucket carries over exactly, even requests that
//     arrive during the swap;
//   - same interval and burst, other size or shards: it copies the buckets
//     that still hold debt (a drained bucket is the same as none); when
//     more of them land in one new shard than it holds, the ones copied
//     last stay (see Limiter.absorb);
//   - another interval or burst: it starts empty. An old TAT encodes debt
//     in the old interval and cannot be reinterpreted exactly, so every
//     client starts with its full burst: at most burst extra requests each,
//     once per such reload.
//
// Counters carry over in every case.
func New(cfg Config, env filters.Env) (*Filter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	eff := cfg.withDefaults()
	f := &Filter{cfg: eff, shadow: eff.Mode == filters.ModeShadow, log: env.Log(Name)}
	window := time.Duration(eff.Burst) * eff.Rate.Interval() // Validate bounds it by maxTolerance
	f.policy = []string{filters.RateLimitPolicyItem(Name, int64(eff.Burst), window)}

	prev, _ := env.Previous.(*Filter)
	if prev != nil && prev.cfg.Rate == eff.Rate && prev.cfg.Burst == eff.Burst &&
		prev.cfg.MaxClients == eff.MaxClients && prev.cfg.Shards == eff.Shards {
		f.lim, f.base = prev.lim, prev.base
		f.log.Info("reload: buckets kept", "clients", f.lim.Len())
		return f, nil
	}
	lim, err := NewLimiter(eff)
	if err != nil {
		return nil, err
	}
	f.lim = lim
	if prev == nil {
		return f, nil
	}
	old := prev.lim.Stats()
	f.base = Stats{
		EvictedDrained: prev.base.EvictedDrained + old.EvictedDrained,
		EvictedForced:  prev.base.EvictedForced + old.EvictedForced,
		Denied:         prev.base.Denied + old.Denied,
	}
	if lim.sameBuckets(prev.lim) {
		n := lim.absorb(prev.lim)
		f.log.Info("reload: buckets copied to the resized cache", "clients", n, "max_clients", eff.MaxClients, "shards", eff.Shards)
	} else {
		f.log.Info("reload: rate or burst changed, buckets start empty", "dropped", old.Clients, "rate", eff.Rate.String(), "burst", eff.Burst)
	}
	return f, nil
}

// Name returns "volumetric".
func (f *Filter) Name() string { return Name }

// Limiter returns the limiter behind the stage (for explain and tests).
func (f *Filter) Limiter() *Limiter { return f.lim }

// Check meters r against its client's bucket at r.Now.
func (f *Filter) Check(r *filters.Request) filters.Verdict {
	ok, wait := f.lim.AllowAt(r.Now, r.Key)
	if ok {
		return filters.Allow
	}
	v := filters.Verdict{
		Deny:       true,
		Status:     http.StatusTooManyRequests,
		Reason:     "rate",
		RetryAfter: wait,
		Shadow:     f.shadow,
	}
	if !f.shadow {
		// The same RateLimit fields as the quota stage's 429s, so a client
		// backs off alike whichever limit it hit. A shadow deny lets the
		// request through, where "nothing remains" would be false.
		v.Headers = f.headersFor(wait)
	}
	return v
}

// maxSharedWait bounds the waits, in whole seconds, whose 429 headers are
// kept for sharing; longer ones (a burst spanning minutes) are built each
// time.
const maxSharedWait = 64

// headersFor returns the RateLimit fields of a 429 whose request could
// pass after wait.
func (f *Filter) headersFor(wait time.Duration) http.Header {
	t := filters.CeilSeconds(wait)
	if t < maxSharedWait {
		if h := f.denyHeaders[t].Load(); h != nil {
			return *h
		}
	}
	h := http.Header{
		filters.HeaderRateLimitPolicy: f.policy,
		filters.HeaderRateLimit:       {filters.RateLimitItem(Name, 0, wait)},
	}
	if t < maxSharedWait {
		f.denyHeaders[t].Store(&h)
	}
	return h
}

// CollectMetrics emits the tracked clients, evictions by kind and denies.
// Denies count every refusal the stage decided, shadow ones included.
func (f *Filter) CollectMetrics(emit func(filters.Sample)) {
	st := f.lim.Stats()
	emit(filters.Sample{
		Name: "volumetric_clients", Kind: filters.Gauge, Value: float64(st.Clients),
		Help: "Clients whose leaky bucket the volumetric stage holds.",
	})
	emit(filters.Sample{
		Name: "volumetric_max_clients", Kind: filters.Gauge, Value: float64(f.lim.Cap()),
		Help: "Most clients the volumetric stage will hold (max_clients).",
	})
	const evHelp = "Buckets evicted to make room: drained ones were empty (nothing lost), forced ones still held debt."
	emit(filters.Sample{
		Name: "volumetric_evictions_total", Kind: filters.Counter, Help: evHelp,
		Labels: []string{"kind", "drained"}, Value: float64(f.base.EvictedDrained + st.EvictedDrained),
	})
	emit(filters.Sample{
		Name: "volumetric_evictions_total", Kind: filters.Counter, Help: evHelp,
		Labels: []string{"kind", "forced"}, Value: float64(f.base.EvictedForced + st.EvictedForced),
	})
	emit(filters.Sample{
		Name: "volumetric_denies_total", Kind: filters.Counter, Value: float64(f.base.Denied + st.Denied),
		Help: "Requests the volumetric stage refused or, in shadow mode, would have refused.",
	})
}

var (
	_ filters.Filter        = (*Filter)(nil)
	_ filters.MetricsSource = (*Filter)(nil)
)
