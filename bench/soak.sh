#!/usr/bin/env bash
# bench/soak.sh: a long run of mixed traffic (bench/workloads/mix.lua: 90 %
# benign browser GETs, 10 % CRS attack inputs from ever new addresses)
# through edgeguard with every stage on (reputation, volumetric, WAF at
# paranoia 1, quota on a local redis-server), while cmd/soak samples the
# process's heap, resident memory, goroutines, open file descriptors and
# the p99 of its own probe requests every 10 s. It writes soak.tsv, soak.md
# (a verdict per gauge: flat after warm-up, or growing) and soak.png.
#
# edgeguard runs on CPU 0 alone (GOMAXPROCS=1); wrk, the upstream, Redis and
# the sampler on CPU 1. Needs go, wrk, taskset and redis-server.
set -euo pipefail

duration=10m warmup=1m out=. conns=32
usage() {
	echo "usage: bench/soak.sh [-d DURATION] [-warmup DURATION] [-c CONNECTIONS] [-o DIR]" >&2
	echo "  defaults: -d 10m -warmup 1m -c 32 -o ." >&2
}
while (($#)); do
	case $1 in
	-d) duration=${2:?}; shift 2 ;;
	-warmup) warmup=${2:?}; shift 2 ;;
	-c) conns=${2:?}; shift 2 ;;
	-o) out=${2:?}; shift 2 ;;
	-h | -help | --help) usage; exit 0 ;;
	*) echo "soak.sh: unknown argument $1" >&2; usage; exit 2 ;;
	esac
done
for tool in go wrk taskset redis-server; do
	command -v "$tool" >/dev/null || { echo "soak.sh: $tool is required" >&2; exit 1; }
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
work=$(mktemp -d "${TMPDIR:-/tmp}/edgeguard-soak.XXXXXX")
pids=()
cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

spawn() { # CPU NAME CMD...
	local cpu=$1 name=$2; shift 2
	taskset -c "$cpu" "$@" >>"$work/$name.log" 2>&1 &
	pids+=($!)
}
wait_port() { # PORT
	local i
	for ((i = 0; i < 1200; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "soak.sh: nothing listens on $1; logs:" >&2
	tail -n 20 "$work"/*.log >&2
	exit 1
}

echo "soak.sh: building" >&2
(cd "$here" && go build -o "$work/bin/" ./cmd/upstream ./cmd/freeports ./cmd/soak)
(cd "$root" && go build -o "$work/bin/" ./cmd/edgeguard)
mapfile -t ports < <("$work/bin/freeports" -n 4)
up_port=${ports[0]} redis_port=${ports[1]} edge_port=${ports[2]} admin_port=${ports[3]}

spawn 1 upstream "$work/bin/upstream" -listen "127.0.0.1:$up_port"
mkdir -p "$work/redis"
spawn 1 redis redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work/redis"
wait_port "$up_port"
wait_port "$redis_port"

cat >"$work/edgeguard.yaml" <<EOF
listen: "127.0.0.1:$edge_port"
upstream: "http://127.0.0.1:$up_port"
client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
stages: [reputation, volumetric, waf, quota]
volumetric: {rate: "1000000/s", burst: 1000000, max_clients: 100000}
waf: {mode: block, paranoia: 1, inbound_threshold: 5}
quota:
  store: redis
  redis: {addrs: ["127.0.0.1:$redis_port"]}
  on_error: local
  key: [ip]
  policies: [{name: default, rate: "1000000/s", burst: 1000000}]
admin: {listen: "127.0.0.1:$admin_port"}
log: {level: warn}
EOF
spawn 0 edgeguard env GOMAXPROCS=1 "$work/bin/edgeguard" run -config "$work/edgeguard.yaml"
wait_port "$edge_port"

echo "soak.sh: $duration of mixed traffic, sampling every 10s" >&2
cat "$here/workloads/common.lua" "$here/workloads/mix.lua" >"$work/mix.lua"
taskset -c 1 wrk -t1 -c"$conns" -d"$duration" -s "$work/mix.lua" "http://127.0.0.1:$edge_port" -- "$here/workloads" \
	>"$work/wrk.log" 2>&1 &
pids+=($!)
mkdir -p "$out"
taskset -c 1 "$work/bin/soak" -admin "127.0.0.1:$admin_port" -edge "127.0.0.1:$edge_port" \
	-d "$duration" -warmup "$warmup" -o "$out"
echo >&2
grep -E "Requests/sec|Non-2xx|Socket errors" "$work/wrk.log" >&2 || true
machine="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d)"
printf '\nMachine: %s; edgeguard on one core, load on the other; %s of bench/workloads/mix.lua at %s connections.\n' \
	"$machine" "$duration" "$conns" | tee -a "$out/soak.md"
