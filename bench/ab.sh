#!/usr/bin/env bash
# bench/ab.sh: one Go benchmark at two commits, interleaved, for a change's
# before/after on a shared machine: both test binaries are built first, then
# each round runs OLD and NEW back to back, so drift lands on both alike.
# Prints every run, then the medians of ns/op, B/op and allocs/op per side
# and NEW/OLD for ns/op.
#
# usage: bench/ab.sh [-n ROUNDS] [-t BENCHTIME] [-cpu N] OLD NEW PACKAGE BENCH
#   OLD, NEW  commits (anything git rev-parse takes; WORK: the work tree)
#   PACKAGE   the package directory, like ./cmd/edgeguard
#   BENCH     the -test.bench pattern, like 'BenchmarkEdgeHandler/get$'
# example: bench/ab.sh -n 5 main HEAD ./cmd/edgeguard 'BenchmarkEdgeHandler/get$'
set -euo pipefail
rounds=5 benchtime=2000x cpu=1
while [[ ${1:-} == -* ]]; do
	case $1 in
	-n) rounds=$2; shift 2 ;;
	-t) benchtime=$2; shift 2 ;;
	-cpu) cpu=$2; shift 2 ;;
	*) echo "ab.sh: unknown flag $1" >&2; exit 2 ;;
	esac
done
(($# == 4)) || { sed -n '2,14p' "$0" >&2; exit 2; }
old=$1 new=$2 pkg=$3 bench=$4
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/edgeguard-ab.XXXXXX")
trap 'rm -rf "$work"' EXIT

# checkout SIDE REV: the tree at REV in $work/SIDE-src, taken before any
# build starts, so that edits made meanwhile land on neither side.
checkout() {
	local src=$work/$1-src
	mkdir -p "$src"
	if [[ $2 == WORK ]]; then
		(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$src")
	else
		git -C "$root" archive "$2" | tar -x -C "$src"
	fi
	echo "$src/$pkg" >"$work/$1.dir"
}
checkout old "$old"
checkout new "$new"
for side in old new; do
	(cd "$work/$side-src" && go test -c -o "$work/$side.test" "$pkg")
done
for ((i = 1; i <= rounds; i++)); do
	for side in old new; do
		(cd "$(cat "$work/$side.dir")" && "$work/$side.test" -test.run '^$' -test.bench "$bench" \
			-test.benchmem -test.benchtime "$benchtime" -test.cpu "$cpu") |
			awk -v s="$side" '/^Benchmark/ { print s "\t" $0 }' | tee -a "$work/runs"
	done
done
awk -F'\t' '
function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{
	split($2, f, /[ \t]+/); name = f[1]; k = $1 SUBSEP name
	for (i = 1; i in f; i++) {
		if (f[i+1] == "ns/op") ns[k, ++nn[k]] = f[i]
		if (f[i+1] == "B/op") by[k, ++nb[k]] = f[i]
		if (f[i+1] == "allocs/op") al[k, ++na[k]] = f[i]
	}
	names[name] = 1
}
END {
	printf "\n%-44s %6s %12s %10s %10s\n", "benchmark (medians)", "side", "ns/op", "B/op", "allocs/op"
	for (name in names) {
		for (s = 0; s < 2; s++) {
			side = s ? "new" : "old"; k = side SUBSEP name
			delete a; for (i = 1; i <= nn[k]; i++) a[i] = ns[k, i]; m[side] = med(a, nn[k])
			delete a; for (i = 1; i <= nb[k]; i++) a[i] = by[k, i]; b = med(a, nb[k])
			delete a; for (i = 1; i <= na[k]; i++) a[i] = al[k, i]; c = med(a, na[k])
			printf "%-44s %6s %12.0f %10.0f %10.0f\n", name, side, m[side], b, c
		}
		if (m["old"] > 0) printf "%-44s %6s %12.3f\n", name, "new/old", m["new"] / m["old"]
	}
}' "$work/runs"
