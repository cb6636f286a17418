package quota

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// DefaultMaxKeys bounds a MemoryStore built with maxKeys 0.
const DefaultMaxKeys = 1 << 20

const memShards = 64

// MemoryStore keeps GCRA state in this process: the store for a single node
// (and `edgeguard demo`) and the local fallback when Redis fails. Several
// nodes with memory stores each admit the full quota.
//
// A key whose theoretical arrival time has passed is in the same state as a
// key never seen, so such entries are dropped without changing any decision.
// Only when a shard is full of live keys does it forget some of them (those
// clients get a fresh burst): memory stays bounded by maxKeys.
type MemoryStore struct {
	seed     maphash.Seed
	perShard int
	shards   [memShards]memShard
}

type memShard struct {
	mu   sync.Mutex
	tats map[string]int64
	_    [40]byte // keep neighbouring shards' mutexes off one cache line
}

// NewMemoryStore returns an empty store holding at most about maxKeys keys
// (0 means DefaultMaxKeys).
func NewMemoryStore(maxKeys int) *MemoryStore {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	m := &MemoryStore{seed: maphash.MakeSeed(), perShard: max(1, maxKeys/memShards)}
	for i := range m.shards {
		m.shards[i].tats = make(map[string]int64)
	}
	return m
}

// hashTag returns the part of key Redis Cluster hashes: the text inside the
// first non-empty {...}, or the whole key. Sharding by it keeps all of one
// client's policies under one lock, as they share one slot in Redis.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

func (m *MemoryStore) shardOf(key string) int {
	return int(maphash.String(m.seed, hashTag(key)) % memShards)
}

// Take implements Store at now, the caller's clock.
func (m *MemoryStore) Take(_ context.Context, now time.Time, asks []Ask, results []Result) (bool, error) {
	return m.TakeAt(now, asks, results)
}

// TakeAt is Take without a context: the memory store never waits.
func (m *MemoryStore) TakeAt(now time.Time, asks []Ask, results []Result) (bool, error) {
	if err := checkAsks(asks, results); err != nil {
		return false, err
	}
	if len(asks) == 0 {
		return true, nil
	}
	var smallIdx [8]int
	idx := smallIdx[:0]
	if len(asks) > len(smallIdx) {
		idx = make([]int, 0, len(asks))
	}
	single := true
	for i := range asks {
		idx = append(idx, m.shardOf(asks[i].Key))
		single = single && idx[i] == idx[0]
	}
	// Lock every shard the asks touch, in index order so that two Takes
	// over the same shards cannot deadlock. One client's asks share a shard,
	// so this is almost always a single lock.
	if single {
		sh := &m.shards[idx[0]]
		sh.mu.Lock()
		defer sh.mu.Unlock()
	} else {
		var locked [memShards]bool
		for _, s := range idx {
			locked[s] = true
		}
		for s := range locked {
			if locked[s] {
				m.shards[s].mu.Lock()
				defer m.shards[s].mu.Unlock()
			}
		}
	}

	nowUS := now.UnixMicro()
	var smallNext [8]int64
	next := smallNext[:0]
	if len(asks) > len(smallNext) {
		next = make([]int64, 0, len(asks))
	}
	ok := true
	for i := range asks {
		r, n := decide(m.shards[idx[i]].tats[asks[i].Key], nowUS, &asks[i])
		results[i] = r
		next = append(next, n)
		if !r.Allowed && !asks[i].Shadow {
			ok = false
		}
	}
	if !ok {
		return false, nil
	}
	for i := range asks {
		if !results[i].Allowed {
			continue
		}
		sh := &m.shards[idx[i]]
		if _, exists := sh.tats[asks[i].Key]; !exists && len(sh.tats) >= m.perShard {
			sh.makeRoom(nowUS, m.perShard)
		}
		sh.tats[asks[i].Key] = next[i]
	}
	return true, nil
}

// makeRoom drops expired keys and, if the shard is still nearly full of
// live ones, forgets arbitrary live keys until an eighth of it is free, so
// that the sweep is paid once per many inserts. The caller holds sh.mu.
func (sh *memShard) makeRoom(nowUS int64, limit int) {
	for k, tat := range sh.tats {
		if tat <= nowUS {
			delete(sh.tats, k)
		}
	}
	target := limit - max(1, limit/8)
	for k := range sh.tats {
		if len(sh.tats) <= target {
			break
		}
		delete(sh.tats, k)
	}
}

// Len returns the number of keys held (for tests and metrics).
func (m *MemoryStore) Len() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += len(m.shards[i].tats)
		m.shards[i].mu.Unlock()
	}
	return n
}

var _ Store = (*MemoryStore)(nil)
