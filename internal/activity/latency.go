package activity

import (
	"math/bits"
	"time"
)

// The latency sketch is a fixed log-linear histogram of microseconds, the
// layout HdrHistogram uses: values below linearBelow have a bucket each;
// above, every power of two is split into subBuckets equal parts. A bucket
// [lo, lo+w) above the linear range has w ≤ lo/subBuckets, so reporting
// its midpoint is off by at most 1/(2·subBuckets) of the true value
// (6.25%), plus the microsecond the values are truncated to.
const (
	subBits        = 3
	subBuckets     = 1 << subBits   // parts of each power of two
	linearBelow    = 2 * subBuckets // values below this many µs are exact
	maxExponent    = 27             // 2^27 µs ≈ 134 s: slower lands in the last bucket
	latencyBuckets = linearBelow + (maxExponent-subBits-1)*subBuckets + 1
)

// LatencyError is the bound on the relative error of a latency quantile
// the recorder reports (above 16 µs; below, it is exact to the µs).
const LatencyError = 1.0 / (2 * subBuckets)

// latencyBucket is the bucket of a duration.
func latencyBucket(d time.Duration) int {
	us := d.Microseconds()
	if us < linearBelow {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 1 // 2^e ≤ us < 2^(e+1), e ≥ subBits+1
	if e >= maxExponent {
		return latencyBuckets - 1
	}
	sub := int(us>>(e-subBits)) & (subBuckets - 1)
	return linearBelow + (e-subBits-1)*subBuckets + sub
}

// bucketMid is the value a bucket stands for: its midpoint, in µs.
func bucketMid(i int) float64 {
	if i < linearBelow {
		return float64(i)
	}
	if i >= latencyBuckets-1 {
		return float64(uint64(1) << maxExponent)
	}
	e := (i-linearBelow)/subBuckets + subBits + 1
	sub := (i - linearBelow) % subBuckets
	w := float64(uint64(1) << (e - subBits))
	lo := float64(uint64(1)<<e) + float64(sub)*w
	return lo + w/2
}

// quantile is the q-quantile (0 < q ≤ 1) of the values counted in h, in
// milliseconds: the value of rank ⌈q·n⌉, as a bucket's midpoint; 0 for an
// empty histogram.
func quantile(h *[latencyBuckets]uint64, q float64) float64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return bucketMid(i) / 1000
		}
	}
	return bucketMid(latencyBuckets-1) / 1000
}
