package volumetric

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// The memory measurements at full size (a million clients, a flood of ten
// million addresses) allocate hundreds of megabytes and take tens of
// seconds, so they run at that size only when asked:
//
//	EDGEGUARD_HEAVY=1 go test -run 'Heap' -v ./filters/volumetric/
//
// Otherwise they run at a tenth of it, which is still ten times the cache
// under the flood: an unbounded map or a cap that is not enforced fails
// either way.
func heapScale(t *testing.T) (clients, flood uint32) {
	if os.Getenv("EDGEGUARD_HEAVY") != "" {
		return 1_000_000, 10_000_000
	}
	if testing.Short() {
		t.Skip("memory measurements: not in -short")
	}
	return 100_000, 1_000_000
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestHeapPerTrackedClient(t *testing.T) {
	clients, _ := heapScale(t)
	before := heapInUse()
	l := mustLimiter(t, Config{Rate: mustRate(t, "50/s"), Burst: 100, MaxClients: int(clients)})
	for i := range clients {
		l.AllowAt(t0, keyN(i))
	}
	after := heapInUse()
	// Shards fill unevenly, so slightly fewer than the cap are held.
	n := l.Len()
	if n < int(clients)*97/100 || n > int(clients) {
		t.Fatalf("tracking %d clients, want about %d", n, clients)
	}
	per := float64(after-before) / float64(n)
	t.Logf("heap per tracked client at %d clients: %.1f bytes (%.1f MiB in all)", n, per, float64(after-before)/(1<<20))
	if per > 150 {
		t.Fatalf("%.1f bytes per client, budget 150", per)
	}
	runtime.KeepAlive(l)
}

func TestHeapStaysFlatUnderAFlood(t *testing.T) {
	capacity, flood := heapScale(t)
	l := mustLimiter(t, Config{Rate: mustRate(t, "50/s"), Burst: 100, MaxClients: int(capacity)})
	now := t0
	var atCap, peak uint64
	start := time.Now()
	for i := range flood {
		// 1µs apart: a one-shot address drains after 20ms, so the cache
		// turns over a full million every second of simulated time.
		now = now.Add(time.Microsecond)
		l.AllowAt(now, keyN(i))
		if (i+1)%capacity == 0 {
			h := heapInUse()
			if i+1 == capacity {
				atCap = h
			}
			peak = max(peak, h)
			t.Logf("after %2d× the cache in addresses: heap %6.1f MiB, clients %d", (i+1)/capacity, float64(h)/(1<<20), l.Len())
		}
	}
	st := l.Stats()
	t.Logf("%d addresses in %v; evictions drained=%d forced=%d; heap at cap %.1f MiB, peak %.1f MiB (+%.1f%%)",
		flood, time.Since(start).Round(time.Millisecond), st.EvictedDrained, st.EvictedForced,
		float64(atCap)/(1<<20), float64(peak)/(1<<20), 100*(float64(peak)/float64(atCap)-1))
	if st.Clients > int(capacity) {
		t.Fatalf("%d clients tracked, cap %d", st.Clients, capacity)
	}
	if float64(peak) > 1.10*float64(atCap) {
		t.Fatalf("heap grew from %d to %d bytes under the flood", atCap, peak)
	}
}
