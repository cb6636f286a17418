#!/bin/sh
# volumetric.sh compares the volumetric decision with golang.org/x/time/rate
# limiters in a locked map, 100k keys, interleaved: every round runs both
# benchmarks back to back in one process (at -cpu 1 and at -cpu 2), so that
# the load of a shared machine falls on both alike. Separate -count runs of
# each drift apart by more than the difference between them.
#
# It prints each round and then the medians: ns/op of each, the speedup
# (x/time/rate's ns/op over ours, at -cpu 1 and at -cpu 2) and ours at
# -cpu 2 over ours at -cpu 1, for the single-threaded benchmark and for
# BenchmarkAllowAtParallel (wall time per decision; at most 1 means no
# slower with two Ps). Then it runs
# BenchmarkVersusXTimeRate, which alternates the two in blocks inside one
# benchmark, as a second opinion.
#
# usage: bench/volumetric.sh [ROUNDS]    (default 7)
# env:   CPUS="2,3"  pin with taskset -c;  BENCHTIME=2s  per benchmark
set -eu
rounds=${1:-7}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && go test -c -o "$tmp/volumetric.test" ./filters/volumetric/)
pin=""
if [ -n "${CPUS:-}" ]; then pin="taskset -c $CPUS"; fi
cd "$root/filters/volumetric"

i=1
while [ "$i" -le "$rounds" ]; do
	$pin "$tmp/volumetric.test" -test.run '^$' -test.bench '^Benchmark(AllowAt|AllowAtParallel|XTimeRateMap)$' \
		-test.cpu 1,2 -test.benchmem -test.benchtime "${BENCHTIME:-1s}" | sed "s/^/$i /"
	i=$((i + 1))
done | awk '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	$2 == "BenchmarkAllowAt"       { v1[$1] = $4 }
	$2 == "BenchmarkAllowAt-2"     { v2[$1] = $4 }
	$2 == "BenchmarkAllowAtParallel"   { p1[$1] = $4 }
	$2 == "BenchmarkAllowAtParallel-2" { p2[$1] = $4 }
	$2 == "BenchmarkXTimeRateMap"  { x1[$1] = $4 }
	$2 == "BenchmarkXTimeRateMap-2" {
		r = $1; x2[r] = $4; n++
		a[n] = v1[r]; b[n] = x1[r]; s[n] = x1[r] / v1[r]; c[n] = v2[r]; q[n] = v2[r] / v1[r]; s2[n] = x2[r] / v2[r]; pq[n] = p2[r] / p1[r]
		printf "round %d: volumetric %.1f ns, x/time/rate %.1f ns, speedup %.2fx | -cpu 2: %.1f vs %.1f ns, %.2fx | cpu2/cpu1 %.2f, parallel %.2f\n", r, v1[r], x1[r], s[n], v2[r], x2[r], s2[n], q[n], pq[n]
	}
	END {
		printf "median of %d rounds: volumetric %.1f ns, x/time/rate %.1f ns, speedup %.2fx (-cpu 2: %.2fx); volumetric -cpu 2 / -cpu 1 = %.2f, parallel %.2f\n",
			n, median(a, n), median(b, n), median(s, n), median(s2, n), median(q, n), median(pq, n)
	}'

echo "BenchmarkVersusXTimeRate (blocks alternating inside one benchmark):"
$pin "$tmp/volumetric.test" -test.run '^$' -test.bench '^BenchmarkVersusXTimeRate$' -test.cpu 1 -test.count "$rounds" |
	awk '$1 ~ /^BenchmarkVersus/ { print; s[++n] = $9 }
	END { for (i = 2; i <= n; i++) for (j = i; j > 1 && s[j-1] > s[j]; j--) { t = s[j]; s[j] = s[j-1]; s[j-1] = t }
	      printf "median speedup of %d rounds: %.2fx\n", n, n % 2 ? s[(n+1)/2] : (s[n/2] + s[n/2+1]) / 2 }'
