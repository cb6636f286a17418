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
	capped    atomic.Uint64 // ejections the pool's cap refused

	// weight and current are the smooth weighted round robin's state;
	// current is guarded by pool.rrMu.
	weight  int64
	current int64

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

// fail records a failure at now (see Outlier for what counts), and ejects
// the backend when the run of failures reaches the pool's threshold within
// its window and the pool's ejection cap allows it. It reports whether this
// failure ejected it.
func (b *backend) fail(now time.Time) bool {
	b.failures.Add(1)
	p := b.pool
	o := p.outlier
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
	// The run is used up either way: a refused ejection is tried again
	// only after another full run, which also bounds the log lines.
	b.runLen = 0
	d := o.ejection
	for i := 1; i < b.streak+1 && d < o.maxEjection; i++ {
		d *= 2
	}
	d = min(d, o.maxEjection)
	if !p.eject(b, now, d) {
		b.capped.Add(1)
		p.log.Warn("backend not ejected: the pool's ejection cap is reached", "pool", p.name, "backend", b.host,
			"max_ejection_percent", o.maxPercent)
		return false
	}
	b.streak++
	b.checkOK = 0
	b.ejections.Add(1)
	p.log.Warn("backend ejected", "pool", p.name, "backend", b.host,
		"for", d.String(), "ejections_in_a_row", b.streak)
	return true
}

// eject takes b out of p until now+d unless that would leave more of the
// pool out than the ejection cap allows, or no backend available at all.
// One ejection at a time per pool, so that two backends failing together
// cannot both slip under the cap.
func (p *pool) eject(b *backend, now time.Time, d time.Duration) bool {
	p.ejectMu.Lock()
	defer p.ejectMu.Unlock()
	t := now.UnixNano()
	out := 0
	for _, o := range p.backends {
		if o != b && !o.available(t) {
			out++
		}
	}
	n := len(p.backends)
	allowed := min(n*p.outlier.maxPercent/100, n-1)
	if out+1 > allowed {
		return false
	}
	until := now.Add(d).UnixNano()
	b.ejectedUntil.Store(until)
	if until > p.ejectedHorizon.Load() {
		p.ejectedHorizon.Store(until)
	}
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
			b.pool.down.Add(1)
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
		b.pool.down.Add(-1)
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
	statuses              [2]uint64 // bit s-500 set: status s is a failure
	maxPercent            int
	panicPercent          int
}

// failStatus reports whether an answer with status s counts as a failure.
func (o *outlierSettings) failStatus(s int) bool {
	i := s - 500
	return i >= 0 && i < 100 && o.statuses[i/64]&(1<<(i%64)) != 0
}

func newOutlierSettings(cfg Outlier) outlierSettings {
	o := outlierSettings{
		failures:     orInt(cfg.Failures, DefaultOutlierFailures),
		window:       orDur(cfg.Window, DefaultOutlierWindow),
		ejection:     orDur(cfg.Ejection, DefaultEjection),
		maxEjection:  orDur(cfg.MaxEjection, DefaultMaxEjection),
		maxPercent:   DefaultMaxEjectionPercent,
		panicPercent: DefaultPanicThreshold,
	}
	if cfg.MaxEjectionPercent != nil {
		o.maxPercent = *cfg.MaxEjectionPercent
	}
	if cfg.PanicThreshold != nil {
		o.panicPercent = *cfg.PanicThreshold
	}
	statuses := cfg.Statuses
	if len(statuses) == 0 {
		statuses = []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	}
	for _, s := range statuses {
		if i := s - 500; i >= 0 && i < 100 {
			o.statuses[i/64] |= 1 << (i % 64)
		}
	}
	return o
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
	rr           atomic.Uint64 // least_outstanding's rotating start
	rrMu         sync.Mutex    // guards every backend's current
	ring         []ringPoint
	outlier      outlierSettings
	check        checkSettings
	attempts     int
	idempotent   bool
	preserveHost bool
	proxyProto   bool
	transport    http.RoundTripper
	log          *slog.Logger

	// ejectMu serialises ejections (see eject). down counts backends down
	// by active checks and ejectedHorizon is the latest end of an
	// ejection: while down is 0 and now is past the horizon, every backend
	// is available and a pick need not count them.
	ejectMu        sync.Mutex
	down           atomic.Int32
	ejectedHorizon atomic.Int64

	retries     atomic.Uint64
	errors      atomic.Uint64
	unavailable atomic.Uint64
	panics      atomic.Uint64 // picks made in panic mode
}

func newPool(name string, cfg Pool, log *slog.Logger) (*pool, error) {
	p := &pool{
		name:         name,
		attempts:     orInt(cfg.Retry.Attempts, DefaultRetryAttempts),
		idempotent:   cfg.Retry.Idempotent,
		preserveHost: cfg.PreserveHost,
		proxyProto:   cfg.ProxyProtocol,
		log:          log,
		outlier:      newOutlierSettings(cfg.Outlier),
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
		b := &backend{url: u, host: u.Host, pool: p, weight: int64(orInt(cfg.Weights[raw], 1))}
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
// not in skip, or returns nil when there is none. In panic mode (too few of
// the pool available, see Outlier.PanicThreshold) passive ejections are
// ignored: any backend that passes its active checks may be picked.
func (p *pool) pick(now int64, key filters.Key, skip []*backend) *backend {
	panicking := p.panicking(now)
	if panicking {
		p.panics.Add(1)
	}
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
			if !p.eligible(b, now, skip, panicking) {
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
			if b := bs[ring[(lo+i)%len(ring)].idx]; p.eligible(b, now, skip, panicking) {
				return b
			}
		}
		return nil
	default:
		return p.pickSmooth(now, skip, panicking)
	}
}

// pickSmooth is nginx's smooth weighted round robin: every eligible backend
// adds its weight to its current value, the one with the largest current
// value is picked and gives back the total of the weights added. Over any
// run of picks among the same backends each gets its share to within one
// pick, spread out rather than in blocks. A backend that is not eligible
// adds nothing, so its share goes to the others by their weights, not to
// the one after it in the list.
func (p *pool) pickSmooth(now int64, skip []*backend, panicking bool) *backend {
	p.rrMu.Lock()
	defer p.rrMu.Unlock()
	var best *backend
	var total int64
	for _, b := range p.backends {
		if !p.eligible(b, now, skip, panicking) {
			continue
		}
		b.current += b.weight
		total += b.weight
		if best == nil || b.current > best.current {
			best = b
		}
	}
	if best != nil {
		best.current -= total
	}
	return best
}

// eligible says whether b may take a request: available (or, in panic
// mode, passing active checks) and not tried already.
func (p *pool) eligible(b *backend, now int64, skip []*backend, panicking bool) bool {
	if tried(b, skip) {
		return false
	}
	if panicking {
		return b.up.Load()
	}
	return b.available(now)
}

// panicking reports whether fewer of p's backends are available at now
// than the panic threshold asks for.
func (p *pool) panicking(now int64) bool {
	if p.outlier.panicPercent == 0 || (p.down.Load() == 0 && now >= p.ejectedHorizon.Load()) {
		return false
	}
	avail := 0
	for _, b := range p.backends {
		if b.available(now) {
			avail++
		}
	}
	return avail*100 < p.outlier.panicPercent*len(p.backends)
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
