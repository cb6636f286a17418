package activity

import (
	"math"
	"slices"
	"testing"
	"time"
)

// TestLatencyBucketMidpoint: every value's bucket stands for it within
// LatencyError (exactly below 16 µs), across the whole range, and the
// bucket index never leaves the array.
func TestLatencyBucketMidpoint(t *testing.T) {
	for us := int64(0); us < 1<<maxExponent; us += 1 + us/97 {
		i := latencyBucket(time.Duration(us) * time.Microsecond)
		if i < 0 || i >= latencyBuckets {
			t.Fatalf("%d µs: bucket %d out of [0, %d)", us, i, latencyBuckets)
		}
		mid := bucketMid(i)
		if us < linearBelow && mid != float64(us) {
			t.Fatalf("%d µs: bucket %d stands for %v, want exact", us, i, mid)
		}
		if rel := math.Abs(mid-float64(us)) / float64(us); us >= linearBelow && rel > LatencyError {
			t.Fatalf("%d µs: bucket %d stands for %v, off by %.4f > %.4f", us, i, mid, rel, LatencyError)
		}
	}
	for _, d := range []time.Duration{-time.Second, 0, 999 * time.Nanosecond} {
		if i := latencyBucket(d); i != 0 {
			t.Errorf("%v: bucket %d, want 0", d, i)
		}
	}
	for _, d := range []time.Duration{135 * time.Second, time.Hour, math.MaxInt64} {
		if i := latencyBucket(d); i != latencyBuckets-1 {
			t.Errorf("%v: bucket %d, want the last, %d", d, i, latencyBuckets-1)
		}
	}
}

// TestQuantileAgainstExact: p50 and p99 from the sketch against the exact
// order statistics (rank ⌈q·n⌉) of known inputs, within LatencyError of
// the true value plus the microsecond values are truncated to.
func TestQuantileAgainstExact(t *testing.T) {
	uniform := make([]time.Duration, 10000)
	for i := range uniform {
		uniform[i] = time.Duration(i+1) * time.Microsecond
	}
	// A fast bulk and a slow tail: 98 requests of ~2 ms, 2 of 1.5 s.
	tail := make([]time.Duration, 0, 100)
	for i := range 98 {
		tail = append(tail, 2*time.Millisecond+time.Duration(i)*time.Microsecond)
	}
	tail = append(tail, 1500*time.Millisecond, 1500*time.Millisecond)
	geometric := []time.Duration{}
	for d := 3 * time.Microsecond; d < 20*time.Second; d = d * 13 / 10 {
		geometric = append(geometric, d)
	}
	tests := []struct {
		name   string
		values []time.Duration
	}{
		{"one", []time.Duration{7 * time.Millisecond}},
		{"sub-16µs exact", []time.Duration{time.Microsecond, 5 * time.Microsecond, 9 * time.Microsecond}},
		{"uniform 1µs..10ms", uniform},
		{"slow tail", tail},
		{"geometric", geometric},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h [latencyBuckets]uint64
			for _, d := range tt.values {
				h[latencyBucket(d)]++
			}
			sorted := slices.Sorted(slices.Values(tt.values))
			for _, q := range []float64{0.5, 0.99} {
				rank := int(math.Ceil(q * float64(len(sorted))))
				exact := float64(sorted[rank-1].Microseconds()) / 1000
				got := quantile(&h, q)
				if d := math.Abs(got - exact); d > exact*LatencyError+0.001 {
					t.Errorf("p%v = %.4f ms, exact %.4f ms: off by %.4f ms, more than %.1f%% + 1 µs", q*100, got, exact, d, LatencyError*100)
				}
			}
		})
	}
	var empty [latencyBuckets]uint64
	if got := quantile(&empty, 0.99); got != 0 {
		t.Errorf("empty sketch: p99 %v, want 0", got)
	}
}
