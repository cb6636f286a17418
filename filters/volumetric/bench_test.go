package volumetric

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/edgeguard/edgeguard/filters"
)

const benchKeys = 100_000

// benchKeySet returns benchKeys distinct keys in a fixed random order, so
// that consecutive operations touch unrelated memory, as real traffic does.
func benchKeySet() []filters.Key {
	keys := make([]filters.Key, benchKeys)
	for i := range keys {
		keys[i] = keyN(uint32(i) * 2654435761)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}

// A rate that every key in the rotation stays under: each key comes back
// every 100,000 operations, 1µs apart, i.e. every 100ms.
var benchCfg = Config{Rate: filters.Rate{Count: 1000, Period: time.Second}, Burst: 10}

// parallelCfg is benchCfg with room for a stale clock reading: on the real
// clock a goroutine descheduled between reading the time and deciding
// arrives "in the past" of a key another goroutine has just moved on, and a
// burst of 10 (10ms at this rate) turned a loaded machine's pauses into
// denials, measuring the wrong path.
var parallelCfg = Config{Rate: benchCfg.Rate, Burst: 1000}

func benchLimiter(b *testing.B, keys []filters.Key) *Limiter {
	return benchLimiterWith(b, benchCfg, keys)
}

func benchLimiterWith(b *testing.B, cfg Config, keys []filters.Key) *Limiter {
	l, err := NewLimiter(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		l.AllowAt(t0, k)
	}
	runtime.GC() // no leftover marking from setup inside the timed loop
	return l
}

// BenchmarkAllowAt is the decision for an existing key, 100k keys tracked.
func BenchmarkAllowAt(b *testing.B) {
	keys := benchKeySet()
	l := benchLimiter(b, keys)
	b.ReportAllocs()
	b.ResetTimer()
	denied := 0
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Second + time.Duration(i)*time.Microsecond)
		if ok, _ := l.AllowAt(now, keys[i%benchKeys]); !ok {
			denied++
		}
	}
	if denied > 0 {
		b.Fatalf("%d denied: the benchmark measures the wrong path", denied)
	}
}

// BenchmarkAllowAtParallel runs the same decision from every P; with
// -cpu 1,2 the ns/op on 2 cores should be lower than on 1 (it is
// wall time per operation across all goroutines). The goroutines read the
// real clock, as the Guard does once per request: a clock of their own each
// (the serial benchmarks' i µs) would run apart and show a key instants from
// the past and the future, which no server does, and the decisions measured
// would be denials.
func BenchmarkAllowAtParallel(b *testing.B) {
	keys := benchKeySet()
	l := benchLimiterWith(b, parallelCfg, keys)
	var seq, denied atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine walks its own stretch of the rotation.
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			i++
			if ok, _ := l.AllowAt(time.Now(), keys[i%benchKeys]); !ok {
				denied.Add(1)
			}
		}
	})
	if n := denied.Load(); n > 0 {
		b.Fatalf("%d denied: the benchmark measures the wrong path", n)
	}
}

// BenchmarkAllowAtNewKey is the path of a new client into a full cache:
// a drained entry is evicted to make room (one-shot keys 1µs apart drain
// after 1000 operations, long before they reach the tail).
func BenchmarkAllowAtNewKey(b *testing.B) {
	l, err := NewLimiter(Config{Rate: benchCfg.Rate, Burst: benchCfg.Burst, MaxClients: benchKeys})
	if err != nil {
		b.Fatal(err)
	}
	for i := range uint32(benchKeys) {
		l.AllowAt(t0, keyN(i))
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		l.AllowAt(t0.Add(time.Second+time.Duration(i)*time.Microsecond), keyN(uint32(benchKeys+i)))
	}
}

// xrateMap is the baseline: one golang.org/x/time/rate limiter per key in
// a mutex-guarded map, the usual way to do per-client limits with it.
type xrateMap struct {
	mu  sync.Mutex
	m   map[filters.Key]*rate.Limiter
	cfg Config
}

func (x *xrateMap) allow(now time.Time, k filters.Key) bool {
	x.mu.Lock()
	lim, ok := x.m[k]
	if !ok {
		// x/time/rate's bucket size b is our burst, the same number.
		lim = rate.NewLimiter(rate.Limit(x.cfg.Rate.Count)/rate.Limit(x.cfg.Rate.Period.Seconds()), x.cfg.Burst)
		x.m[k] = lim
	}
	x.mu.Unlock()
	return lim.AllowN(now, 1)
}

func benchXRate(keys []filters.Key) *xrateMap {
	return benchXRateWith(benchCfg, keys)
}

func benchXRateWith(cfg Config, keys []filters.Key) *xrateMap {
	x := &xrateMap{m: make(map[filters.Key]*rate.Limiter, len(keys)), cfg: cfg}
	for _, k := range keys {
		x.allow(t0, k)
	}
	runtime.GC()
	return x
}

func BenchmarkXTimeRateMap(b *testing.B) {
	keys := benchKeySet()
	x := benchXRate(keys)
	b.ReportAllocs()
	b.ResetTimer()
	denied := 0
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Second + time.Duration(i)*time.Microsecond)
		if !x.allow(now, keys[i%benchKeys]) {
			denied++
		}
	}
	if denied > 0 {
		b.Fatalf("%d denied", denied)
	}
}

// BenchmarkXTimeRateMapParallel is the baseline of BenchmarkAllowAtParallel,
// on the same real clock.
func BenchmarkXTimeRateMapParallel(b *testing.B) {
	keys := benchKeySet()
	x := benchXRateWith(parallelCfg, keys)
	var seq, denied atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			i++
			if !x.allow(time.Now(), keys[i%benchKeys]) {
				denied.Add(1)
			}
		}
	})
	if n := denied.Load(); n > 0 {
		b.Fatalf("%d denied: the benchmark measures the wrong path", n)
	}
}

// BenchmarkCheck is the whole stage: Request in, Verdict out.
func BenchmarkCheck(b *testing.B) {
	keys := benchKeySet()
	f, err := New(benchCfg, filters.Env{})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		f.lim.AllowAt(t0, k)
	}
	runtime.GC()
	r := &filters.Request{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Key, r.Now = keys[i%benchKeys], t0.Add(time.Second+time.Duration(i)*time.Microsecond)
		f.Check(r)
	}
}

// BenchmarkVersusXTimeRate measures the volumetric decision and the
// x/time/rate baseline in the same process, alternating blocks of
// versusBlock decisions, so that both see the same machine: on a loaded
// machine separate runs of the two benchmarks drift apart by more than the
// difference between them. Both walk the same keys at the same instants.
// It reports each one's ns per decision and their ratio (x/time/rate's time
// over ours: above 1 means faster than the baseline); its own ns/op is the
// time of one pair of blocks and means nothing. Run rounds with -count:
//
//	go test -run '^$' -bench VersusXTimeRate -count 5 -cpu 1 ./filters/volumetric/
func BenchmarkVersusXTimeRate(b *testing.B) {
	const versusBlock = 25_000
	keys := benchKeySet()
	l := benchLimiter(b, keys)
	x := benchXRate(keys)
	var ours, theirs time.Duration
	var oi, xi, denied int
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		for range versusBlock {
			now := t0.Add(time.Second + time.Duration(oi)*time.Microsecond)
			if ok, _ := l.AllowAt(now, keys[oi%benchKeys]); !ok {
				denied++
			}
			oi++
		}
		mid := time.Now()
		for range versusBlock {
			now := t0.Add(time.Second + time.Duration(xi)*time.Microsecond)
			if !x.allow(now, keys[xi%benchKeys]) {
				denied++
			}
			xi++
		}
		ours += mid.Sub(start)
		theirs += time.Since(mid)
	}
	if denied > 0 {
		b.Fatalf("%d denied: the benchmark measures the wrong path", denied)
	}
	b.ReportMetric(float64(ours)/float64(oi), "ns/volumetric")
	b.ReportMetric(float64(theirs)/float64(xi), "ns/xrate")
	b.ReportMetric(float64(theirs)/float64(ours), "speedup")
}

// BenchmarkCheckDenied is the stage under a flood from one client: every
// decision a deny, with its RateLimit headers.
func BenchmarkCheckDenied(b *testing.B) {
	f, err := New(benchCfg, filters.Env{})
	if err != nil {
		b.Fatal(err)
	}
	k := benchKeySet()[0]
	r := &filters.Request{Key: k, Now: t0}
	for !f.Check(r).Deny {
	}
	b.ReportAllocs()
	for b.Loop() {
		if !f.Check(r).Deny {
			b.Fatal("allowed")
		}
	}
}
