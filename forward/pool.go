package forward

import (
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// backend is one member of a pool with its health and load. Everything the
// pick reads is atomic, so picking takes no lock; the passive-ejection and
// active-check bookkeeping, which runs once per request outcome or check,
// sits behind mu.
type backend struct {
	url  *url.URL
	host string // host:port, the metrics label
	pool *pool

	up           atomic.Bool  // active checks' verdict; true when there are none
	ejectedUntil atomic.Int64 // unix nanoseconds; passive ejection
	outstanding  atomic.Int64
	dirty        atomic.Bool // a failure run or ejection streak is being counted

	requests  atomic.Uint64
	failures  atomic.Uint64
	ejections atomic.Uint64

	mu        sync.Mutex
	runLen    int       // failures in a row
	runStart  time.Time // first failure of the run
	streak    int       // ejections in a row without a success between
	checkOK   int       // active successes in a row
	checkFail int       // active failures in a row
}

func (b *backend) available(now int64) bool {
	return b.up.Load() && now >= b.ejectedUntil.Load()
}

// succeed records a request the backend answered well.
func (b *backend) succeed() {
	if !b.dirty.Load() {
		return
	}
	b.mu.Lock()
	b.runLen, b.streak = 0, 0
	b.dirty.Store(false)
	b.mu.Unlock()
}

// fail records a connection error or 5xx answer at now, and ejects the
// backend when the run of failures reaches the pool's threshold within its
// window. It reports whether this failure ejected it.
func (b *backend) fail(now time.Time) bool {
	b.failures.Add(1)
	o := b.pool.outlier
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dirty.Store(true)
	if b.runLen == 0 || now.Sub(b.runStart) > o.window {
		b.runLen, b.runStart = 0, now
	}
	b.runLen++
	if b.runLen < o.failures || now.UnixNano() < b.ejectedUntil.Load() {
		return false
	}
	b.streak++
	d := o.ejection
	for i := 1; i < b.streak && d < o.maxEjection; i++ {
		d *= 2
	}
	d = min(d, o.maxEjection)
	b.ejectedUntil.Store(now.Add(d).UnixNano())
	b.runLen, b.checkOK = 0, 0
	b.ejections.Add(1)
	b.pool.log.Warn("backend ejected", "pool", b.pool.name, "backend", b.host,
		"for", d.String(), "ejections_in_a_row", b.streak)
	return true
}

// recordCheck applies one active check result at now.
func (b *backend) recordCheck(ok bool, now time.Time) {
	hc := b.pool.check
	b.mu.Lock()
	defer b.mu.Unlock()
	if !ok {
		b.checkOK = 0
		b.checkFail++
		if b.checkFail >= hc.unhealthy && b.up.Load() {
			b.up.Store(false)
			b.pool.log.Warn("backend down", "pool", b.pool.name, "backend", b.host, "failed_checks", b.checkFail)
		}
		return
	}
	b.checkFail = 0
	b.checkOK++
	if b.checkOK < hc.healthy {
		return
	}
	if !b.up.Load() {
		b.up.Store(true)
		b.pool.log.Info("backend up", "pool", b.pool.name, "backend", b.host)
	}
	// An ejected backend that has passed enough checks since its ejection
	// comes back before its back-off ends; its streak stays, so a relapse
	// ejects it for longer.
	if now.UnixNano() < b.ejectedUntil.Load() {
		b.ejectedUntil.Store(0)
		b.pool.log.Info("backend reinstated by health checks", "pool", b.pool.name, "backend", b.host)
	}
}

// policy is a pool's balancing policy.
type policy uint8

const (
	polRoundRobin policy = iota
	polLeastOutstanding
	polConsistentHash
)

// ringPoint is one virtual node of the consistent-hash ring.
type ringPoint struct {
	hash uint64
	idx  uint32
}

// vnodes per backend: enough that ten backends get shares within a few
// percent of each other, few enough that the ring stays in cache.
const vnodes = 256

type outlierSettings struct {
	failures              int
	window                time.Duration
	ejection, maxEjection time.Duration
}

type checkSettings struct {
	path              string
	interval, timeout time.Duration
	healthy           int
	unhealthy         int
}

// pool is a built Pool.
type pool struct {
	name         string
	backends     []*backend
	policy       policy
	rr           atomic.Uint64
	ring         []ringPoint
	outlier      outlierSettings
	check        checkSettings
	attempts     int
	idempotent   bool
	preserveHost bool
	proxyProto   bool
	transport    http.RoundTripper
	log          *slog.Logger

	retries     atomic.Uint64
	errors      atomic.Uint64
	unavailable atomic.Uint64
}

func newPool(name string, cfg Pool, log *slog.Logger) (*pool, error) {
	p := &pool{
		name:         name,
		attempts:     orInt(cfg.Retry.Attempts, DefaultRetryAttempts),
		idempotent:   cfg.Retry.Idempotent,
		preserveHost: cfg.PreserveHost,
		proxyProto:   cfg.ProxyProtocol,
		log:          log,
		outlier: outlierSettings{
			failures:    orInt(cfg.Outlier.Failures, DefaultOutlierFailures),
			window:      orDur(cfg.Outlier.Window, DefaultOutlierWindow),
			ejection:    orDur(cfg.Outlier.Ejection, DefaultEjection),
			maxEjection: orDur(cfg.Outlier.MaxEjection, DefaultMaxEjection),
		},
		check: checkSettings{
			path:      cfg.HealthCheck.Path,
			interval:  orDur(cfg.HealthCheck.Interval, DefaultCheckInterval),
			timeout:   orDur(cfg.HealthCheck.Timeout, DefaultCheckTimeout),
			healthy:   orInt(cfg.HealthCheck.HealthyThreshold, DefaultHealthyThreshold),
			unhealthy: orInt(cfg.HealthCheck.UnhealthyThreshold, DefaultUnhealthyThreshold),
		},
	}
	switch cfg.Balance {
	case LeastOutstanding:
		p.policy = polLeastOutstanding
	case ConsistentHash:
		p.policy = polConsistentHash
	}
	for _, raw := range cfg.Backends {
		u, err := parseBackend(raw)
		if err != nil {
			return nil, err
		}
		b := &backend{url: u, host: u.Host, pool: p}
		b.up.Store(true)
		p.backends = append(p.backends, b)
	}
	if p.policy == polConsistentHash {
		p.ring = buildRing(p.backends)
	}
	return p, nil
}

// buildRing places vnodes points per backend, hashed from the backend's
// address (not its position), so removing one backend leaves every other
// backend's points where they were.
func buildRing(bs []*backend) []ringPoint {
	ring := make([]ringPoint, 0, len(bs)*vnodes)
	for i, b := range bs {
		for v := range vnodes {
			h := fnv.New64a()
			h.Write([]byte(b.url.Scheme + "://" + b.host + "#" + strconv.Itoa(v)))
			ring = append(ring, ringPoint{hash: mix64(h.Sum64()), idx: uint32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.idx) - int(b.idx)
	})
	return ring
}

// mix64 is the splitmix64 finaliser: it spreads nearby inputs (client keys
// in one subnet) over the whole ring.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func keyHash(k filters.Key) uint64 {
	var hi, lo uint64
	for i := range 8 {
		hi = hi<<8 | uint64(k[i])
		lo = lo<<8 | uint64(k[8+i])
	}
	return mix64(lo ^ mix64(hi))
}

func tried(b *backend, skip []*backend) bool {
	for _, s := range skip {
		if s == b {
			return true
		}
	}
	return false
}

// pick chooses a backend that is available at now (unix nanoseconds) and
// not in skip, or returns nil when there is none.
func (p *pool) pick(now int64, key filters.Key, skip []*backend) *backend {
	bs := p.backends
	n := uint64(len(bs))
	switch p.policy {
	case polLeastOutstanding:
		// Start the scan at a rotating position so that ties (an idle pool)
		// are spread the way round robin spreads them.
		start := p.rr.Add(1)
		var best *backend
		var bestLoad int64
		for i := range n {
			b := bs[(start+i)%n]
			if !b.available(now) || tried(b, skip) {
				continue
			}
			if load := b.outstanding.Load(); best == nil || load < bestLoad {
				best, bestLoad = b, load
			}
		}
		return best
	case polConsistentHash:
		ring := p.ring
		h := keyHash(key)
		lo, hi := 0, len(ring)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if ring[mid].hash < h {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		// Walk clockwise past unavailable backends: a client of a failed
		// backend lands where it would if that backend were removed.
		for i := range len(ring) {
			b := bs[ring[(lo+i)%len(ring)].idx]
			if b.available(now) && !tried(b, skip) {
				return b
			}
		}
		return nil
	default:
		start := p.rr.Add(1) - 1
		for i := range n {
			b := bs[(start+i)%n]
			if b.available(now) && !tried(b, skip) {
				return b
			}
		}
		return nil
	}
}

// retryAfter estimates when the pool will have a backend again: the end of
// the earliest ejection, or a check interval when backends are down by
// active checks.
func (p *pool) retryAfter(now time.Time) time.Duration {
	best := time.Duration(0)
	for _, b := range p.backends {
		var d time.Duration
		if b.up.Load() {
			d = time.Duration(b.ejectedUntil.Load() - now.UnixNano())
		} else {
			d = p.check.interval * time.Duration(p.check.healthy)
		}
		if best == 0 || d < best {
			best = d
		}
	}
	return max(best, time.Second)
}
