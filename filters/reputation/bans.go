package reputation

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// SourceOperator is the Source of bans made through the admin API.
const SourceOperator = "operator"

// Ban is one ban: every address in Prefix is refused until Expires.
// A Ban is immutable once stored; changes store a new one.
type Ban struct {
	// Prefix is what is banned: a client key (an IPv4 /32, an IPv6 /64 by
	// default) or an operator's prefix.
	Prefix netip.Prefix
	// Reason is why: the last deny reason that earned it, or the operator's.
	Reason string
	// Source is the stage whose strikes earned the ban, or "operator".
	Source string
	// Level counts repeats: the ban lasted TTL << Level (capped).
	Level int
	// Created is when the ban was made; Expires the first instant it no
	// longer holds.
	Created time.Time
	Expires time.Time
}

// ActiveAt reports whether the ban is in force at now.
func (b *Ban) ActiveAt(now time.Time) bool { return now.Before(b.Expires) }

// history is what escalation remembers about a key's last ban.
type history struct {
	level int
	ends  time.Time
}

// banStore holds the bans in a longest-prefix table that readers load
// without locking; writers, which are rare (a ban, an unban, a sweep, a sync),
// serialise on mu and swap in a new table. A stored table is never modified.
// It has no goroutines: it is carried from one Filter to the next on reload.
//
// The bans that strikes made (here or on another node) are counted, and
// escalate makes no new one while maxBans are held: clients earn bans by
// the key, and a client rotating keys (the /64s of one IPv6 /48) must not
// grow the table, the sweep, the Redis sync and the metrics without bound.
// Operator bans are not counted.
type banStore struct {
	table atomic.Pointer[bart.Table[*Ban]]

	mu      sync.Mutex
	history *simplelru.LRU[netip.Prefix, history] // escalation memory, guarded by mu

	// Guarded by mu: the cap, and how many of the bans held count against
	// it (those whose Source is not operator).
	maxBans    int
	strikeBans int

	// replacing, when set (tests only), is called by replace with the lock
	// held, once it has what it keeps and before it rewrites the table.
	replacing func()
}

func newBanStore(maxTracked, maxBans int) *banStore {
	s := &banStore{maxBans: maxBans}
	s.table.Store(new(bart.Table[*Ban]))
	s.history, _ = simplelru.NewLRU[netip.Prefix, history](maxTracked, nil)
	return s
}

func (s *banStore) resize(maxTracked, maxBans int) {
	s.mu.Lock()
	s.history.Resize(maxTracked)
	s.maxBans = maxBans
	s.mu.Unlock()
}

// counted reports whether b counts against maxBans: it is a strike ban.
func counted(b *Ban) bool { return b != nil && b.Source != SourceOperator }

// account updates the count of strike bans for old (nil: none) being
// replaced by b (nil: deleted). The caller holds mu.
func (s *banStore) account(old, b *Ban) {
	if counted(old) {
		s.strikeBans--
	}
	if counted(b) {
		s.strikeBans++
	}
}

// held returns how many bans are stored, in force or expired and not yet
// swept, in constant time.
func (s *banStore) held() int { return s.table.Load().Size() }

// lookup returns the ban in force over addr at now, if any. addr must be
// unmapped. The common case (no ban covers addr) is one table lookup with no
// allocation.
func (s *banStore) lookup(addr netip.Addr, now time.Time) (*Ban, bool) {
	t := s.table.Load()
	b, ok := t.Lookup(addr)
	if !ok {
		return nil, false
	}
	if b.ActiveAt(now) {
		return b, true
	}
	// The most specific ban has expired but is not swept yet; a shorter
	// prefix covering addr may still be in force.
	for _, sb := range t.Supernets(netip.PrefixFrom(addr, addr.BitLen())) {
		if sb.ActiveAt(now) {
			return sb, true
		}
	}
	return nil, false
}

// get returns the ban stored for exactly p (active or not).
func (s *banStore) get(p netip.Prefix) (*Ban, bool) {
	return s.table.Load().Get(p)
}

// put stores b, replacing any ban of the same prefix, and remembers it for
// escalation.
func (s *banStore) put(b *Ban) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table.Load()
	old, _ := t.Get(b.Prefix)
	s.table.Store(t.InsertPersist(b.Prefix, b))
	s.account(old, b)
	s.remember(b)
}

// remember records a strike ban for escalation. Operator bans are not
// offences counted against the client: an operator's long ban must neither
// raise nor reset the level strikes have reached.
func (s *banStore) remember(b *Ban) {
	if b.Source == SourceOperator {
		return
	}
	s.history.Add(b.Prefix, history{level: b.Level, ends: b.Expires})
}

// remove deletes the ban of exactly p and reports whether there was one. The
// escalation history is kept: an unban is forgiveness for now, not for the
// next offence.
func (s *banStore) remove(p netip.Prefix) (*Ban, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table.Load()
	b, ok := t.Get(p)
	if !ok {
		return nil, false
	}
	s.table.Store(t.DeletePersist(p))
	s.account(b, nil)
	return b, true
}

// escalation is what escalate did.
type escalation uint8

const (
	banMade    escalation = iota // a new ban, stored if asked
	banInForce                   // p is banned already: that ban
	banRefused                   // maxBans strike bans are held: no ban
)

// escalate decides a strike ban for p at now and stores it when store is
// set. ttl is doubled for each earlier ban of p that ended less than memory
// before now, up to maxTTL. When a ban of p is already in force it returns
// that one (banInForce); when maxBans strike bans are held and p holds none
// to replace, it returns nil (banRefused), shadow mode included, so that the
// shadow log tells what block mode would do.
func (s *banStore) escalate(p netip.Prefix, now time.Time, ttl, maxTTL, memory time.Duration, source, reason string, store bool) (*Ban, escalation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table.Load()
	cur, had := t.Get(p)
	if had && cur.ActiveAt(now) {
		return cur, banInForce
	}
	if s.strikeBans >= s.maxBans && !counted(cur) {
		return nil, banRefused
	}
	level := 0
	if h, ok := s.history.Peek(p); ok && now.Sub(h.ends) < memory {
		level = h.level + 1
	}
	d := ttl
	for i := 0; i < level && d < maxTTL; i++ {
		d *= 2
	}
	d = min(d, maxTTL)
	b := &Ban{Prefix: p, Reason: reason, Source: source, Level: level, Created: now, Expires: now.Add(d)}
	if store {
		s.table.Store(t.InsertPersist(p, b))
		s.account(cur, b)
		s.remember(b)
	}
	return b, banMade
}

// sweep drops the bans that have expired by now and returns how many.
func (s *banStore) sweep(now time.Time) int {
	t := s.table.Load()
	var dead []netip.Prefix
	for p, b := range t.All() {
		if !b.ActiveAt(now) {
			dead = append(dead, p)
		}
	}
	if len(dead) == 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nt := s.table.Load().Clone()
	n := 0
	for _, p := range dead {
		// Re-check under the lock: the ban may have been renewed meanwhile.
		if b, ok := nt.Get(p); ok && !b.ActiveAt(now) {
			nt.Delete(p)
			s.account(b, nil)
			n++
		}
	}
	s.table.Store(nt)
	return n
}

// active returns the bans in force at now, sorted by prefix.
func (s *banStore) active(now time.Time) []*Ban {
	var out []*Ban
	for _, b := range s.table.Load().All() {
		if b.ActiveAt(now) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *Ban) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
	})
	return out
}

// replace makes the stored bans exactly want (a snapshot from Redis, taken
// after the table since was current), except for the prefixes keep returns
// and those changed in the store since then, whose current state stays: a
// ban or unban made while the snapshot was read is newer than it. A ban
// swept since (expired at now) is not a change. keep is called once, with
// the lock held, so that a change it misses is made in the store after the
// replace; it must take no lock whose holder may wait for this one. It
// returns how many bans were added or changed and how many removed.
func (s *banStore) replace(want map[netip.Prefix]*Ban, since *bart.Table[*Ban], now time.Time, keep func() map[netip.Prefix]bool) (added, removed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := keep()
	if s.replacing != nil {
		s.replacing()
	}
	t := s.table.Load()
	stays := func(p netip.Prefix) bool {
		old, _ := since.Get(p)
		cur, _ := t.Get(p)
		if cur != old && (cur != nil || old.ActiveAt(now)) {
			return true // stored tables are immutable and bans too: a new pointer is a change
		}
		return kept[p]
	}
	nt := t.Clone()
	for p, b := range t.All() {
		if _, ok := want[p]; !ok && !stays(p) {
			nt.Delete(p)
			s.account(b, nil)
			removed++
		}
	}
	for p, b := range want {
		if stays(p) {
			continue
		}
		cur, ok := nt.Get(p)
		if ok && sameBan(cur, b) {
			continue
		}
		nt.Insert(p, b)
		s.account(cur, b)
		s.remember(b)
		added++
	}
	s.table.Store(nt)
	return added, removed
}

func sameBan(a, b *Ban) bool {
	return a.Prefix == b.Prefix && a.Expires.Equal(b.Expires) && a.Reason == b.Reason && a.Source == b.Source && a.Level == b.Level
}
