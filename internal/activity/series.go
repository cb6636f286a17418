package activity

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Window is how far back the per-second series reaches: 900 one-second
// buckets, 15 minutes.
const Window = 900

// Outcome is what became of a request. Each request has exactly one.
type Outcome uint8

const (
	// Allowed: served, and no stage objected.
	Allowed Outcome = iota
	// Denied: refused by a stage (or before the chain, at intake).
	Denied
	// Shadow: served, but a stage in shadow mode would have refused it.
	Shadow
	// Errored: let through by every stage and answered with a 5xx (the
	// upstream failed, no backend was healthy, the route was at capacity).
	Errored
	numOutcomes
)

// maxStages is how many stage names the series tells apart; names beyond
// the first maxStages-1 seen are counted under OtherStage. A chain has a
// handful of stages and the intake a few refusal causes, so this is
// reached only by a Recorder fed names from somewhere unexpected.
const maxStages = 16

// OtherStage is the name the series counts a stage under once maxStages-1
// names are taken.
const OtherStage = "other"

// second is one second's counts. Every field is atomic: requests of the
// same second are counted from many goroutines without a lock.
type second struct {
	unix     atomic.Int64 // the second counted; math.MinInt64 for none yet
	outcomes [numOutcomes]atomic.Uint32
	stages   [maxStages]atomic.Uint32
	latency  [latencyBuckets]atomic.Uint32
}

// series is the ring of the last Window seconds. A bucket is reused for
// the second Window seconds after the one it counted: the first request of
// the new second clears it under mu, the only lock, taken once a second
// per bucket. A request still counting into the old second at that
// instant (it finished 15 minutes before the one that clears) may land in
// the new one; the counts are atomic, so this is an off-by-one, never a
// race.
type series struct {
	mu   sync.Mutex // serialises clearing a bucket for a new second
	ring [Window]second

	names atomic.Pointer[[]string] // stage names by index; replaced, never changed
	addMu sync.Mutex               // serialises adding a name
}

func newSeries() *series {
	s := &series{}
	for i := range s.ring {
		s.ring[i].unix.Store(math.MinInt64)
	}
	s.names.Store(&[]string{})
	return s
}

// slot returns the bucket of unix second sec, cleared if it last counted
// an earlier second, or nil when it already counts a later one (sec is
// more than Window seconds older than a request already recorded).
func (s *series) slot(sec int64) *second {
	b := &s.ring[ringIndex(sec)]
	if b.unix.Load() == sec {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cur := b.unix.Load(); {
	case cur == sec:
		return b
	case cur > sec:
		return nil
	}
	for i := range b.outcomes {
		b.outcomes[i].Store(0)
	}
	for i := range b.stages {
		b.stages[i].Store(0)
	}
	for i := range b.latency {
		b.latency[i].Store(0)
	}
	b.unix.Store(sec)
	return b
}

func ringIndex(sec int64) int {
	i := sec % Window
	if i < 0 {
		i += Window
	}
	return int(i)
}

// add counts one request that ended at end.
func (s *series) add(end time.Time, o Outcome, stage string, took time.Duration) {
	b := s.slot(end.Unix())
	if b == nil {
		return
	}
	b.outcomes[o].Add(1)
	b.stages[s.stageIndex(stage)].Add(1)
	b.latency[latencyBucket(took)].Add(1)
}

// stageIndex is the index stage is counted under, given one on first use.
func (s *series) stageIndex(stage string) int {
	names := *s.names.Load()
	for i, n := range names {
		if n == stage {
			return i
		}
	}
	s.addMu.Lock()
	defer s.addMu.Unlock()
	names = *s.names.Load()
	for i, n := range names {
		if n == stage {
			return i
		}
	}
	if len(names) >= maxStages-1 {
		// The last index is OtherStage's (or a stage of that name has
		// one already): the set of names stops growing here.
		stage = OtherStage
		for i, n := range names {
			if n == stage {
				return i
			}
		}
	}
	next := append(names[:len(names):len(names)], stage)
	s.names.Store(&next)
	return len(next) - 1
}

// Point is one second of the series.
type Point struct {
	// Unix is the second, in Unix time.
	Unix int64
	// Outcomes counts the requests that ended in that second by outcome.
	Outcomes [numOutcomes]uint32
	// ByStage counts them by the stage that decided: the refusing stage,
	// or "forward" for those every stage let through. Only stages with a
	// count are present.
	ByStage map[string]uint32
}

// points returns the n seconds ending with now's, oldest first, a second
// with no bucket (nothing ended in it) as zeros.
func (s *series) points(now time.Time, n int) []Point {
	n = min(max(n, 0), Window)
	names := *s.names.Load()
	last := now.Unix()
	out := make([]Point, 0, n)
	for sec := last - int64(n) + 1; sec <= last; sec++ {
		p := Point{Unix: sec, ByStage: map[string]uint32{}}
		b := &s.ring[ringIndex(sec)]
		if b.unix.Load() == sec {
			for i := range b.outcomes {
				p.Outcomes[i] = b.outcomes[i].Load()
			}
			for i, name := range names {
				if c := b.stages[i].Load(); c > 0 {
					p.ByStage[name] = c
				}
			}
			if b.unix.Load() != sec {
				p = Point{Unix: sec, ByStage: map[string]uint32{}} // cleared while read
			}
		}
		out = append(out, p)
	}
	return out
}

// latency merges the latency buckets of the n seconds ending with now's.
func (s *series) latency(now time.Time, n int) *[latencyBuckets]uint64 {
	var h [latencyBuckets]uint64
	last := now.Unix()
	for sec := last - int64(min(max(n, 0), Window)) + 1; sec <= last; sec++ {
		b := &s.ring[ringIndex(sec)]
		if b.unix.Load() != sec {
			continue
		}
		for i := range b.latency {
			h[i] += uint64(b.latency[i].Load())
		}
	}
	return &h
}
