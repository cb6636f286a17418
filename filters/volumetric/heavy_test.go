package volumetric

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// The memory measurements allocate hundreds of megabytes and take tens of
// seconds, so they run only when asked:
//
//	EDGEGUARD_HEAVY=1 go test -run 'Heap' -v ./filters/volumetric/
func heavy(t *testing.T) {
	if os.Getenv("EDGEGUARD_HEAVY") == "" {
		t.Skip("set EDGEGUARD_HEAVY=1 to run the memory measurements")
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestHeapPerTrackedClient(t *testing.T) {
	heavy(t)
	const clients = 1_000_000
	before := heapInUse()
	l := mustLimiter(t, Config{Rate: mustRate(t, "50/s"), Burst: 100, MaxClients: clients})
	for i := range uint32(clients) {
		l.AllowAt(t0, keyN(i))
	}
	after := heapInUse()
	// Shards fill unevenly, so slightly fewer than the cap are held.
	n := l.Len()
	if n < clients*99/100 || n > clients {
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
	heavy(t)
	const (
		capacity = 1_000_000
		flood    = 10_000_000
	)
	l := mustLimiter(t, Config{Rate: mustRate(t, "50/s"), Burst: 100, MaxClients: capacity})
	now := t0
	var atCap, peak uint64
	start := time.Now()
	for i := range uint32(flood) {
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
			t.Logf("after %2dM addresses: heap %6.1f MiB, clients %d", (i+1)/capacity, float64(h)/(1<<20), l.Len())
		}
	}
	st := l.Stats()
	t.Logf("%d addresses in %v; evictions drained=%d forced=%d; heap at cap %.1f MiB, peak %.1f MiB (+%.1f%%)",
		flood, time.Since(start).Round(time.Millisecond), st.EvictedDrained, st.EvictedForced,
		float64(atCap)/(1<<20), float64(peak)/(1<<20), 100*(float64(peak)/float64(atCap)-1))
	if st.Clients > capacity {
		t.Fatalf("%d clients tracked, cap %d", st.Clients, capacity)
	}
	if float64(peak) > 1.10*float64(atCap) {
		t.Fatalf("heap grew from %d to %d bytes under the flood", atCap, peak)
	}
}
