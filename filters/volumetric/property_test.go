package volumetric

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// textbookGCRA is the virtual scheduling algorithm as the ATM Forum
// traffic management spec states it, with increment I and limit L, written
// independently of the code under test: no max(), no shared helpers.
type textbookGCRA struct {
	I, L int64
	tat  map[filters.Key]int64
}

// newTextbookGCRA is the reference for cfg: I is the emission interval and
// L = (burst−1)×I, so that an idle source gets exactly burst cells through
// at one instant. burst is the project-wide definition, resolved here by
// hand: cfg.Burst, or the rate's count when it is 0.
func newTextbookGCRA(cfg Config) (*textbookGCRA, int64) {
	burst := int64(cfg.Burst)
	if burst == 0 {
		burst = cfg.Rate.Count
	}
	iv := int64(cfg.Rate.Period) / cfg.Rate.Count
	if iv < 1 {
		iv = 1
	}
	return &textbookGCRA{I: iv, L: (burst - 1) * iv, tat: map[filters.Key]int64{}}, burst
}

// arrive returns whether a cell arriving at ta conforms and, if not, how
// long until it would.
func (g *textbookGCRA) arrive(k filters.Key, ta int64) (bool, int64) {
	tat, seen := g.tat[k]
	if !seen {
		// First cell: TAT = ta.
		tat = ta
	}
	if tat < ta {
		// The source was idle: conforming, TAT restarts from the arrival.
		g.tat[k] = ta + g.I
		return true, 0
	}
	if tat > ta+g.L {
		// Too early: non-conforming, TAT unchanged.
		return false, tat - g.L - ta
	}
	g.tat[k] = tat + g.I
	return true, 0
}

func (l *Limiter) holds(k filters.Key) bool {
	s := l.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Contains(l.hash(k))
}

// schedule drives l and a textbook GCRA with the same random arrivals and
// fails on the first differing decision or wait. When l forgets a bucket by
// forced eviction the reference forgets it too; drained evictions must not
// change any decision.
func schedule(t *testing.T, rng *rand.Rand, cfg Config, keys, steps int, backwards bool) (forced uint64) {
	t.Helper()
	l := mustLimiter(t, cfg)
	ref, burst := newTextbookGCRA(cfg)
	iv := ref.I
	now := t0.UnixNano()
	for i := range steps {
		switch p := rng.IntN(100); {
		case p < 45: // same instant: bursts
		case p < 92:
			now += rng.Int64N(iv / 2)
		case p < 98:
			now += rng.Int64N((burst + 2) * iv * 3)
		default:
			if backwards {
				now -= rng.Int64N(3 * iv)
			} else {
				now += rng.Int64N(100 * iv)
			}
		}
		// Key 0 sends far above its rate and key 1 near it, while the rest
		// churn the cache: buckets in debt reach the LRU tail and come back.
		var k filters.Key
		switch p := rng.IntN(100); {
		case p < 25:
			k = keyN(0)
		case p < 35:
			k = keyN(1)
		default:
			k = keyN(uint32(rng.IntN(keys)))
		}
		ok, wait := l.AllowAt(time.Unix(0, now), k)
		wantOK, wantWait := ref.arrive(k, now)
		if ok != wantOK || int64(wait) != wantWait {
			t.Fatalf("step %d, key %v, t=%d: limiter says ok=%v wait=%d, textbook GCRA says ok=%v wait=%d (cfg %+v)",
				i, k, now-t0.UnixNano(), ok, wait, wantOK, wantWait, cfg)
		}
		if cfg.MaxClients == 0 {
			continue // room for every key: nothing is ever evicted
		}
		if st := l.Stats(); st.EvictedForced != forced {
			forced = st.EvictedForced
			for rk := range ref.tat {
				if !l.holds(rk) {
					delete(ref.tat, rk)
				}
			}
		}
	}
	return forced
}

// randomConfig draws a rate and a burst from 0 (the rate's count) to 19.
func randomConfig(rng *rand.Rand) Config {
	periods := []time.Duration{time.Second, time.Minute, 5 * time.Second, 3 * time.Millisecond}
	return Config{
		Rate:  filters.Rate{Count: 1 + rng.Int64N(1000), Period: periods[rng.IntN(len(periods))]},
		Burst: rng.IntN(20),
	}
}

func TestMatchesTextbookGCRA(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		cfg := randomConfig(rng)
		// Room for every key: no eviction, so time may also run backwards.
		schedule(t, rng, cfg, 1+rng.IntN(50), 5_000, true)
	}
}

func TestMatchesTextbookGCRAThroughEvictions(t *testing.T) {
	var forced uint64
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 0xe71c7))
		cfg := randomConfig(rng)
		cfg.MaxClients = 4 + rng.IntN(16)
		cfg.Shards = 1 + rng.IntN(4)
		forced += schedule(t, rng, cfg, 200, 5_000, false)
	}
	t.Logf("forced evictions across seeds: %d", forced)
}
