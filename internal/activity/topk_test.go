package activity

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestSpaceSavingReplacement pins the algorithm's step: a new key in a
// full summary takes the slot of the smallest count, inherits that count
// as its error, and the key it evicts leaves the index.
func TestSpaceSavingReplacement(t *testing.T) {
	s := newSummary[string, struct{}](3)
	for _, k := range []string{"a", "a", "a", "b", "b", "c", "d"} {
		s.add(k, struct{}{})
	}
	want := map[string][2]uint64{"a": {3, 0}, "b": {2, 0}, "d": {2, 1}} // d took c's slot (count 1)
	if len(s.slots) != 3 || len(s.index) != 3 {
		t.Fatalf("%d slots, %d indexed, want 3 and 3", len(s.slots), len(s.index))
	}
	for k, w := range want {
		i, ok := s.index[k]
		if !ok {
			t.Fatalf("%s not held; slots %+v", k, s.slots)
		}
		if got := [2]uint64{s.slots[i].count, s.slots[i].err}; got != w {
			t.Errorf("%s: count, err %v, want %v", k, got, w)
		}
	}
	if _, ok := s.index["c"]; ok {
		t.Error("evicted c still indexed")
	}
	if s.floor() != 2 {
		t.Errorf("floor %d, want 2", s.floor())
	}
}

// TestSpaceSavingGuarantees: over streams of a few heavy keys in many
// distinct light ones, every key with more than n/k of the additions is
// held, and every held key's true count lies in [count−err, count].
func TestSpaceSavingGuarantees(t *testing.T) {
	tests := []struct {
		name         string
		k, n, heavy  int
		heavyShare   float64
		distinctTail int
	}{
		{"one heavy in unique noise", 8, 20000, 1, 0.15, 1 << 30},
		{"several heavy, k=64", 64, 100000, 5, 0.02, 1 << 30},
		{"heavy among a small recurring tail", 16, 50000, 3, 0.07, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tt.k)))
			s := newSummary[string, struct{}](tt.k)
			truth := map[string]uint64{}
			for range tt.n {
				var key string
				if x := rng.Float64(); x < tt.heavyShare*float64(tt.heavy) {
					key = fmt.Sprintf("heavy%d", int(x/tt.heavyShare))
				} else {
					key = fmt.Sprintf("light%d", rng.IntN(tt.distinctTail))
				}
				truth[key]++
				s.add(key, struct{}{})
			}
			for key, c := range truth {
				i, held := s.index[key]
				if c > uint64(tt.n/tt.k) && !held {
					t.Errorf("%s seen %d times (> n/k = %d) is not held", key, c, tt.n/tt.k)
				}
				if held && (s.slots[i].count < c || s.slots[i].count-s.slots[i].err > c) {
					t.Errorf("%s seen %d times: count %d, err %d do not bound it", key, c, s.slots[i].count, s.slots[i].err)
				}
			}
			for h := range tt.heavy {
				if _, ok := s.index[fmt.Sprintf("heavy%d", h)]; !ok {
					t.Errorf("heavy%d not held", h)
				}
			}
		})
	}
}

// TestTopKFixedMemory: a million distinct clients (a tenth under -race)
// occupy k slots and k index entries, no more, in the summary and in the
// windowed list.
func TestTopKFixedMemory(t *testing.T) {
	s := newSummary[netip.Addr, struct{}](DefaultK)
	tk := newTopK[netip.Addr, struct{}](DefaultK, Window)
	n := 1_000_000
	if raceDetector {
		n /= 10
	}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		s.add(a, struct{}{})
		if i%10 == 0 { // the windowed list takes a lock per addition: a tenth is enough
			tk.add(at(i/2000), a, struct{}{})
		}
	}
	for _, s := range []*summary[netip.Addr, struct{}]{&s, &tk.cur, &tk.prev} {
		if len(s.slots) > DefaultK || len(s.index) > DefaultK || cap(s.slots) != DefaultK {
			t.Errorf("summary holds %d slots (cap %d), %d indexed; want at most %d", len(s.slots), cap(s.slots), len(s.index), DefaultK)
		}
	}
	if got := len(tk.top(at(499))); got > DefaultK {
		t.Errorf("top lists %d keys, want at most %d", got, DefaultK)
	}
}

// TestTopKWindows: the list reports the current window merged with the
// one before; a window with nothing counted yet reports the one before
// alone; older windows are gone. A key missing from a full summary is
// bounded by that summary's floor.
func TestTopKWindows(t *testing.T) {
	w0 := (t0.Unix()/Window + 1) * Window // a window's first second
	sec := func(s int64) int { return int(w0 + s - t0.Unix()) }
	tk := newTopK[string, string](2, Window)
	add := func(s int64, keys ...string) {
		for _, k := range keys {
			tk.add(at(sec(s)), k, "v"+fmt.Sprint(s))
		}
	}
	add(0, "a", "a", "a", "b")
	check := func(now int64, want string) {
		t.Helper()
		got := ""
		for _, h := range tk.top(at(sec(now))) {
			got += fmt.Sprintf("%s=%d±%d ", h.Key, h.Count, h.Error)
		}
		if got != want {
			t.Errorf("at +%ds: %q, want %q", now, got, want)
		}
	}
	check(10, "a=3±0 b=1±0 ")
	check(Window+10, "a=3±0 b=1±0 ")  // the window before, alone
	check(2*Window, "")               // older than that
	add(Window+1, "b", "c", "c", "d") // d takes b's slot: 2±1
	// Merged, each summary full: a 3 here plus up to the newer floor 2;
	// c 2 plus up to the older floor 1; d 2±1 plus 1; b 1 plus 2.
	check(Window+2, "a=5±2 c=3±1 ")
	add(3*Window, "z")
	check(3*Window, "z=1±0 ")
	if h := tk.top(at(sec(3 * Window))); h[0].Value != fmt.Sprint("v", 3*Window) {
		t.Errorf("value %q, want the latest given", h[0].Value)
	}
}

// TestBlockedRing: the ring holds the last BlockedSize refusals, newest
// first, and forgets the older ones.
func TestBlockedRing(t *testing.T) {
	r := New(0)
	for i := range BlockedSize + 44 {
		r.Record(refused(at(i/50), "198.51.100.1", fmt.Sprint("req-", i), "waf"))
	}
	got := r.Blocked()
	if len(got) != BlockedSize {
		t.Fatalf("%d refusals held, want %d", len(got), BlockedSize)
	}
	for i, b := range got {
		if want := fmt.Sprint("req-", BlockedSize+43-i); b.ID != want {
			t.Fatalf("refusal %d is %s, want %s (newest first)", i, b.ID, want)
		}
	}
	if _, ok := r.FindBlocked("req-43"); ok {
		t.Error("req-43, evicted, is still found")
	}
	if b, ok := r.FindBlocked("req-44"); !ok || b.ID != "req-44" {
		t.Error("req-44, the oldest held, not found")
	}
	if _, ok := New(0).FindBlocked(""); ok {
		t.Error("an empty ring finds the empty id")
	}
}
