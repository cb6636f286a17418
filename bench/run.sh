#!/usr/bin/env bash
# bench/run.sh: edgeguard side by side with what operators run today, whole
# processes, one core each.
#
# Every proxy under test runs on CPU 0 alone (GOMAXPROCS=1, nginx
# worker_processes 1); wrk, the upstream and redis-server run on CPU 1.
# Each measurement is repeated, rounds interleave the targets (round 1 runs
# every target once, then round 2...), so that drift on a shared machine
# lands on all of them alike. The output is a Markdown table of medians per
# workload, with each target's throughput as a ratio to the bare Go proxy
# measured in the same run.
#
# Needs: go, wrk, taskset (util-linux). Optional, each target is skipped
# with a message when its part is missing: nginx, libnginx-mod-http-
# modsecurity, modsecurity-crs, redis-server.
#
# Nothing outside a mktemp directory is written: nginx runs in the
# foreground with its own prefix, and every process started here is
# stopped on exit.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/run.sh [-d DURATION] [-n ROUNDS] [-c CONNECTIONS]
                    [-targets LIST] [-workloads LIST] [-quality] [-o FILE] [-keep]

  -d DURATION    wrk duration of one measurement (default 10s)
  -n ROUNDS      measurements per target and workload (default 3)
  -c CONNECTIONS wrk connections, one wrk thread (default 32)
  -targets LIST  comma-separated, from: all (default) or
                 bare,nginx,nginx-modsec-crs3,nginx-modsec-crs4,coraza,
                 edgeguard-cheap,edgeguard-all,before-cheap,before-all
                 (before-*: the same configs on the edgeguard binary that
                 EDGEGUARD_BEFORE names, to compare a change in one run)
  -workloads LIST comma-separated, from: all (default) or get,post,flood,mix,
                 or none (with -quality: decisions only)
  -quality       also send each WAF target every sendable CRS regression
                 attack input and the benign corpus, and tabulate what it
                 refuses (bench/cmd/wafquality)
  -o FILE        also write the Markdown report to FILE
  -keep          keep the work directory (configs, logs, raw results)

example: bench/run.sh -d 3s -n 1 -targets bare,edgeguard-cheap -workloads get
EOF
}

all_targets=(bare nginx nginx-modsec-crs3 nginx-modsec-crs4 coraza edgeguard-cheap edgeguard-all before-cheap before-all)
all_workloads=(get post flood mix)
duration=10s rounds=3 conns=32 targets=all workloads=all out="" keep=0 quality=0
proxy_cpu=0 load_cpu=1

while (($#)); do
	case $1 in
	-d) duration=${2:?-d needs a duration}; shift 2 ;;
	-n) rounds=${2:?-n needs a count}; shift 2 ;;
	-c) conns=${2:?-c needs a count}; shift 2 ;;
	-targets) targets=${2:?-targets needs a list}; shift 2 ;;
	-workloads) workloads=${2:?-workloads needs a list}; shift 2 ;;
	-o) out=${2:?-o needs a file}; shift 2 ;;
	-keep) keep=1; shift ;;
	-quality) quality=1; shift ;;
	-h | -help | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done

# pick LIST ALL... prints the members of the comma-separated LIST ("all":
# every one) and refuses a name that is not among ALL.
pick() {
	local list=$1 name; shift
	if [[ $list == all ]]; then printf '%s\n' "$@"; return; fi
	IFS=, read -ra names <<<"$list"
	for name in "${names[@]}"; do
		if ! printf '%s\n' "$@" | grep -qx -- "$name"; then
			echo "run.sh: unknown name $name (want one of: $*)" >&2
			exit 2
		fi
		echo "$name"
	done
}
list=$(pick "$targets" "${all_targets[@]}") || exit 2
mapfile -t targets <<<"$list"
if [[ $workloads == none ]]; then
	workloads=()
else
	list=$(pick "$workloads" "${all_workloads[@]}") || exit 2
	mapfile -t workloads <<<"$list"
fi
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: -n $rounds: want a positive count" >&2; exit 2; }
[[ $conns =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: -c $conns: want a positive count" >&2; exit 2; }
[[ $duration =~ ^[1-9][0-9]*[smh]?$ ]] || { echo "run.sh: -d $duration: want wrk's form, e.g. 10s" >&2; exit 2; }

for tool in go wrk taskset; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done
if (($(nproc --all) < 2)); then
	echo "run.sh: needs two CPUs (proxies on CPU $proxy_cpu, load on CPU $load_cpu)" >&2
	exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
work=$(mktemp -d "${TMPDIR:-/tmp}/edgeguard-bench.XXXXXX")
# nginx's workers drop root and must reach their temp directories in here.
chmod 755 "$work"
results=$work/results.tsv
: >"$results"
pids=()

cleanup() {
	local i pid
	# Newest first: the proxies stop before the upstream and Redis they use.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if ((keep)); then echo "run.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "run.sh: $*" >&2; }

# spawn CPU NAME CMD... starts CMD pinned to CPU in the background, its
# output in $work/NAME.log, and remembers it for cleanup.
spawn() {
	local cpu=$1 name=$2; shift 2
	taskset -c "$cpu" "$@" >>"$work/$name.log" 2>&1 &
	pids+=($!)
	last_pid=$!
}

# wait_port PORT PID: waits until PORT accepts connections, or fails when
# PID exits first or two minutes pass (CRS takes seconds to load).
wait_port() {
	local port=$1 pid=$2 i
	for ((i = 0; i < 1200; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# ready NAME: waits for the target just spawned on $port_ and records it.
ready() {
	wait_port "$port_" "$last_pid" || return 1
	addr[$1]=127.0.0.1:$port_
	tpid[$1]=$last_pid
}

# cpu_ticks PID prints the CPU time (clock ticks) PID and its children have
# used: nginx does its work in a child of the process started here.
cpu_ticks() {
	local pid total=0 stat f
	for pid in "$1" $(cat "/proc/$1/task/"*/children 2>/dev/null); do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		# utime and stime are fields 14 and 15; count them after the command
		# name, which may hold spaces and ends with ")".
		f=(${stat##*) })
		total=$((total + f[11] + f[12]))
	done
	echo "$total"
}

# cpu_us PID prints the CPU time (microseconds) PID and its children have
# used, from the scheduler's per-thread nanosecond counters where the kernel
# has them (clock ticks are 10 ms: too coarse for a 1 s flood), else from
# cpu_ticks.
cpu_us() {
	local pid t ns total=0
	if [[ ! -r /proc/$1/schedstat ]]; then
		echo $(($(cpu_ticks "$1") * 1000000 / clk_tck))
		return
	fi
	for pid in "$1" $(cat "/proc/$1/task/"*/children 2>/dev/null); do
		for t in "/proc/$pid/task/"*/schedstat; do
			{ read -r ns _ <"$t"; } 2>/dev/null || continue
			total=$((total + ns))
		done
	done
	echo $((total / 1000))
}
clk_tck=$(getconf CLK_TCK)

# settle TARGET waits until the target has stopped using CPU (at most a
# minute), after each load: a WAF keeps working through the requests wrk
# left in flight when it stopped, and that backlog must not land on the
# next measurement.
settle() {
	local pid=${tpid[$1]} before after i
	after=$(cpu_ticks "$pid")
	for ((i = 0; i < 120; i++)); do
		before=$after
		sleep 0.5
		after=$(cpu_ticks "$pid")
		((after - before <= 1)) && return 0
	done
	log "$1 still busy after a minute; going on"
}

# ---------------------------------------------------------------- build

log "building in $work/bin"
(cd "$here" && go build -o "$work/bin/" ./cmd/...)
(cd "$root" && go build -o "$work/bin/" ./cmd/edgeguard)
# CRS v4 as edgeguard and Coraza embed it, copied for ModSecurity, whose
# parser cuts an Include path at the "@" that Go module paths hold.
crs4_src=$(cd "$here" && go list -m -f "{{.Dir}}" github.com/corazawaf/coraza-coreruleset/v4)/rules
crs4=$work/crs4
mkdir -p "$crs4"
cp -r "$crs4_src/@owasp_crs" "$crs4/rules"
cp "$crs4_src/@crs-setup.conf.example" "$crs4/crs-setup.conf"
chmod -R u+w "$crs4"
# ModSecurity 3.0 refuses a chained SecRule without an action list (CRS v4
# has two, TX:EARLY_BLOCKING in 949111 and 959111); "t:none" is what such a
# rule means anyway.
sed -i -E 's/^(\s*SecRule \S+ "([^"\\]|\\.)*")\s*$/\1 "t:none"/' "$crs4"/rules/*.conf
mapfile -t ports < <("$work/bin/freeports" -n 20)
next_port=0
port() { port_=${ports[next_port]}; next_port=$((next_port + 1)); }

# ---------------------------------------------------------------- backends

port; upstream_port=$port_
spawn "$load_cpu" upstream "$work/bin/upstream" -listen "127.0.0.1:$upstream_port"
wait_port "$upstream_port" "$last_pid" || { log "the upstream did not start"; cat "$work/upstream.log" >&2; exit 1; }
upstream=http://127.0.0.1:$upstream_port

redis_port=""
start_redis() {
	command -v redis-server >/dev/null || return 1
	port; mkdir -p "$work/redis"
	spawn "$load_cpu" redis redis-server --bind 127.0.0.1 --port "$port_" --save '' \
		--appendonly no --dir "$work/redis"
	wait_port "$port_" "$last_pid" || return 1
	redis_port=$port_
}

# ---------------------------------------------------------------- targets
# Each start_TARGET starts one proxy on CPU 0 and sets addr[TARGET], or
# prints why it cannot and returns 1.

declare -A addr tpid

proxy_env=(env GOMAXPROCS=1)

start_bare() {
	port; spawn "$proxy_cpu" bare "${proxy_env[@]}" "$work/bin/bareproxy" -listen "127.0.0.1:$port_" -upstream "$upstream"
	ready bare
}

start_coraza() {
	port; spawn "$proxy_cpu" coraza "${proxy_env[@]}" "$work/bin/corazaproxy" -listen "127.0.0.1:$port_" -upstream "$upstream"
	ready coraza
}

# modsec_module prints the path of nginx's ModSecurity module, which
# distributions put in different places.
modsec_module() {
	local d
	for d in /usr/lib/nginx/modules /usr/share/nginx/modules /usr/lib64/nginx/modules \
		/usr/local/nginx/modules /etc/nginx/modules; do
		[[ -f $d/ngx_http_modsecurity_module.so ]] && { echo "$d/ngx_http_modsecurity_module.so"; return 0; }
	done
	return 1
}

# modsec_conf CRS_SETUP CRS_RULES_DIR prints a ModSecurity configuration:
# the engine's recommended settings with the engine on and the audit log
# off, then CRS with its own defaults (paranoia level 1, anomaly threshold
# 5, blocking).
modsec_conf() {
	local dir=$1 setup=$2 rules=$3
	mkdir -p "$dir/modsec-tmp" "$dir/modsec-data"
	cat <<EOF
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'"
SecPcreMatchLimit 1000
SecPcreMatchLimitRecursion 1000
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
SecTmpDir $dir/modsec-tmp
SecDataDir $dir/modsec-data
SecAuditEngine Off
SecArgumentSeparator &
SecCookieFormat 0
SecStatusEngine Off
EOF
	# %u escapes decode through this table where the module ships it.
	if [[ -f /etc/nginx/unicode.mapping ]]; then echo "SecUnicodeMapFile /etc/nginx/unicode.mapping 20127"; fi
	printf "Include %s\nInclude %s/*.conf\n" "$setup" "$rules"
}

# run_nginx NAME [MODULE MODSEC_CONF] starts nginx in the foreground with
# its own prefix under $work/NAME, proxying with upstream keepalive as a
# tuned production config does.
run_nginx() {
	local name=$1 module=${2:-} modsec=${3:-} dir=$work/$1 load="" rules=""
	command -v nginx >/dev/null || { why="nginx is not installed"; return 1; }
	mkdir -p "$dir"
	if [[ -n $module ]]; then
		load="load_module $module;"
		rules="modsecurity on; modsecurity_rules_file $modsec;"
	fi
	port
	cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
$load
events { worker_connections 4096; }
http {
	access_log $dir/access.log;
	client_body_temp_path $dir/client_body;
	proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fastcgi;
	uwsgi_temp_path $dir/uwsgi;
	scgi_temp_path $dir/scgi;
	upstream backend { server 127.0.0.1:$upstream_port; keepalive 64; }
	server {
		listen 127.0.0.1:$port_;
		$rules
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Real-IP \$remote_addr;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
		}
	}
}
EOF
	if ! nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>"$dir/test.log"; then
		why="nginx refuses the configuration: $(grep -h -m1 -E "emerg|error" "$dir/test.log" | cut -c1-200)"
		return 1
	fi
	spawn "$proxy_cpu" "$name" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
	ready $name
}

start_nginx() { run_nginx nginx; }

start_nginx_modsec() {
	local name=$1 setup=$2 rules=$3 module
	module=$(modsec_module) || { why="libnginx-mod-http-modsecurity is not installed"; return 1; }
	[[ -f $setup && -d $rules ]] || { why="no CRS at $rules"; return 1; }
	mkdir -p "$work/$name"
	modsec_conf "$work/$name" "$setup" "$rules" >"$work/$name/modsec.conf"
	run_nginx "$name" "$module" "$work/$name/modsec.conf"
}

start_nginx-modsec-crs3() {
	local setup=/etc/modsecurity/crs/crs-setup.conf
	[[ -f $setup ]] || setup=/usr/share/modsecurity-crs/crs-setup.conf.example
	start_nginx_modsec nginx-modsec-crs3 "$setup" /usr/share/modsecurity-crs/rules
}

start_nginx-modsec-crs4() {
	start_nginx_modsec nginx-modsec-crs4 "$crs4/crs-setup.conf" "$crs4/rules"
}

# edgeguard_conf STAGES EXTRA prints an edgeguard config with every limit
# far above the load, the flood route's volumetric limit far below it, and
# the rest (logging, metrics) at its defaults. Volumetric denies count as
# strikes on a threshold no run reaches (a minute of the flood is well
# under a million):
# the flood measures the volumetric stage's denial, a 429 with its strike
# counted, not reputation's 403 to a banned client; WAF denies keep the
# default threshold.
edgeguard_conf() {
	local stages=$1 extra=$2
	cat <<EOF
listen: "127.0.0.1:$port_"
upstream: "$upstream"
client_ip: {trusted_proxies: ["127.0.0.1/32"], header: X-Forwarded-For}
stages: [$stages]
volumetric: {rate: "1000000/s", burst: 1000000, max_clients: 100000}
routes: [{path: /flood}]
route_stages:
  /flood: {volumetric: {rate: "1000/s", burst: 100}}
reputation: {strikes: {per_stage: {volumetric: {threshold: 1000000, window: 1m}}}}
admin: {listen: "127.0.0.1:$admin_port"}
$extra
EOF
}

start_edgeguard() {
	local name=$1 stages=$2 extra=$3
	port; admin_port=$port_
	port
	local bin=${edgeguard_bin:-$work/bin/edgeguard}
	edgeguard_conf "$stages" "$extra" >"$work/$name.yaml"
	if ! "$bin" validate -config "$work/$name.yaml" >"$work/$name.validate" 2>&1; then
		why="edgeguard refuses its config: $(head -c 300 "$work/$name.validate")"
		return 1
	fi
	spawn "$proxy_cpu" "$name" "${proxy_env[@]}" "$bin" run -config "$work/$name.yaml"
	ready $name
}

start_edgeguard-cheap() {
	start_edgeguard edgeguard-cheap "reputation, volumetric, quota" \
		'quota: {store: memory, key: [ip], policies: [{name: default, rate: "1000000/s", burst: 1000000}]}'
}

start_edgeguard-all() {
	start_all edgeguard-all
}

# The before-* targets run the same configs on an older binary.
before_bin() {
	[[ -n ${EDGEGUARD_BEFORE:-} && -x ${EDGEGUARD_BEFORE:-} ]] || {
		why="EDGEGUARD_BEFORE does not name an edgeguard binary to compare with"
		return 1
	}
}

start_before-cheap() {
	before_bin || return 1
	edgeguard_bin=$EDGEGUARD_BEFORE start_edgeguard before-cheap "reputation, volumetric, quota" \
		'quota: {store: memory, key: [ip], policies: [{name: default, rate: "1000000/s", burst: 1000000}]}'
}

start_before-all() {
	before_bin || return 1
	edgeguard_bin=$EDGEGUARD_BEFORE start_all before-all
}

start_all() {
	[[ -n $redis_port ]] || start_redis || { why="redis-server is not installed or did not start"; return 1; }
	start_edgeguard "$1" "reputation, volumetric, waf, quota" "waf: {mode: block, paranoia: 1, inbound_threshold: 5}
quota:
  store: redis
  redis: {addrs: [\"127.0.0.1:$redis_port\"]}
  on_error: local
  key: [ip]
  policies: [{name: default, rate: \"1000000/s\", burst: 1000000}]"
}

# serves TARGET WORKLOAD: whether the workload means anything for the
# target. A flood needs a volumetric limit, which only edgeguard has here,
# and a target that can outrun it: with the WAF on, edgeguard answers a few
# hundred GETs a second, under the flood route's 1,000/s, so only the
# cheap stages are flooded.
serves() {
	[[ $2 != flood || $1 == edgeguard-cheap || $1 == before-cheap ]]
}

live_targets=()
for t in "${targets[@]}"; do
	log "starting $t"
	why=""
	if "start_$t" && [[ -n ${addr[$t]:-} ]]; then
		live_targets+=("$t")
	else
		why=${why:-"did not start; log: $(tail -n 3 "$work/$t.log" 2>/dev/null | tr '\n\t' '  ' | cut -c1-300)"}
		why=$(printf %s "$why" | tr "\n\t" "  " | cut -c1-300)
		log "skipping $t: $why"
		printf 'SKIP\t%s\t%s\n' "$t" "$why" >>"$results"
	fi
done

# ---------------------------------------------------------------- workloads

mkdir -p "$work/wl"
for w in "${workloads[@]}"; do
	cat "$here/workloads/common.lua" "$here/workloads/$w.lua" >"$work/wl/$w.lua"
done

# load TARGET WORKLOAD [WRK FLAGS...]: runs wrk on CPU 1 against the
# target and prints the script's summary line.
load() {
	local t=$1 w=$2; shift 2
	taskset -c "$load_cpu" wrk -t1 --timeout 10s "$@" -s "$work/wl/$w.lua" \
		"http://${addr[$t]}/" -- "$here/workloads" 2>&1
}

# expected WORKLOAD FIRST LAST OK BAD: whether a short probe's statuses are
# what the workload must get from a working target. Benign workloads must
# pass whole; a flood must end refused by the volumetric limit (429; a 403
# would be a ban, not the denial measured; the limit lets some requests
# pass, so a probe may end on a pass and is tried again); a mix must pass its benign
# part.
expected() {
	local w=$1 first=$2 last=$3 ok=$4 bad=$5
	case $w in
	get | post) ((ok > 0 && bad == 0)) ;;
	flood) [[ $last == 429 ]] ;;
	mix) ((ok > 0 && bad * 4 <= ok)) ;;
	esac
}

# probe TARGET WORKLOAD: gives the target the workload from one connection
# (the flood from all) for two seconds, up to three times (a loaded machine can stall a start),
# and records it as broken when it never answers as the workload needs.
declare -A broken
probe() {
	local t=$1 w=$2 attempt line first last ok bad errs c
	for attempt in 1 2 3; do
		# The flood must outrun its limit to be refused: it probes from all
		# its connections.
		c=1
		[[ $w == flood ]] && c=$conns
		line=$(BENCH_CHECK=1 load "$t" "$w" "-c$c" -d2s | grep '^CHECK' || true)
		settle "$t"
		read -r _ first last ok bad errs <<<"$line"
		expected "$w" "${first:-}" "${last:-}" "${ok:-0}" "${bad:-0}" && return 0
	done
	why="probe answered first ${first:-nothing}, last ${last:-nothing}; ${ok:-0} 2xx, ${bad:-0} other, ${errs:-?} socket errors"
	log "$t is broken on $w: $why"
	broken[$t/$w]=1
	printf 'BROKEN\t%s\t%s\t%s\n' "$w" "$t" "$why" >>"$results"
}

# Targets that just started may still be busy (CRS loading, first GC).
for t in "${live_targets[@]}"; do settle "$t"; done
for w in "${workloads[@]}"; do
	for t in "${live_targets[@]}"; do
		if serves "$t" "$w"; then probe "$t" "$w"; fi
	done
done


# trim_logs keeps access logs from filling the disk between measurements.
trim_logs() {
	local f
	for f in "$work"/*.log "$work"/*/access.log; do
		[[ -f $f ]] && (($(stat -c %s "$f") > 64 << 20)) && : >"$f"
	done
	return 0
}

for ((round = 1; round <= rounds; round++)); do
	for w in "${workloads[@]}"; do
		for t in "${live_targets[@]}"; do
			serves "$t" "$w" && [[ -z ${broken[$t/$w]:-} ]] || continue
			log "round $round/$rounds: $w on $t"
			cpu_before=$(cpu_us "${tpid[$t]}")
			line=$(load "$t" "$w" "-c$conns" "-d$duration" | grep '^RESULT' || true)
			cpu_after=$(cpu_us "${tpid[$t]}")
			settle "$t"
			if [[ -z $line ]]; then
				log "wrk gave no result for $t on $w"
				continue
			fi
			printf 'R\t%d\t%s\t%s\t%s\t%d\n' "$round" "$w" "$t" "$(cut -f2- <<<"$line")" \
				$((cpu_after - cpu_before)) >>"$results"
			trim_logs
		done
	done
done

# ---------------------------------------------------------------- decisions

# has_waf TARGET: whether the target runs a WAF whose decisions -quality
# measures.
has_waf() {
	case $1 in nginx-modsec-* | coraza | edgeguard-all | before-all) return 0 ;; esac
	return 1
}
if ((quality)); then
	benign=()
	for g in "$root"/filters/waf/testdata/benign/*.yaml "$root"/filters/waf/testdata/benign/corpus/*.yaml; do
		[[ -f $g ]] && benign+=("$g")
	done
	benign_list=$(IFS=,; echo "${benign[*]}")
	for t in "${live_targets[@]}"; do
		has_waf "$t" || continue
		log "decisions of $t on CRS's attack inputs and ${#benign[@]} benign corpus files"
		taskset -c "$load_cpu" "$work/bin/wafquality" -target "${addr[$t]}" -name "$t" \
			-crs "$(dirname "$crs4_src")" -benign "$benign_list" >>"$results" 2>>"$work/wafquality.log" ||
			log "wafquality failed on $t; see $work/wafquality.log"
		settle "$t"
	done
fi

# ---------------------------------------------------------------- report

version() { "$@" 2>&1 | head -n1 || true; }
# Which CRS each WAF ran: v4 from the Go module edgeguard and Coraza embed
# (copied for nginx-modsec-crs4), and Debian's package for nginx-modsec-crs3.
crs4_version=$(cd "$here" && go list -m -f '{{.Version}}' github.com/corazawaf/coraza-coreruleset/v4)
crs3_version=""
if command -v dpkg-query >/dev/null; then
	crs3_version=$(dpkg-query -W -f='${Version}' modsecurity-crs 2>/dev/null || true)
fi
report() {
	echo "## edgeguard side by side, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc --all) CPUs, $(uname -sr)"
	echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine shows it here)"
	echo "- $(go version | cut -d' ' -f3), $(version nginx -v), $(version wrk -v | cut -d' ' -f1-2), $(version redis-server --version | cut -d' ' -f1-3)"
	if command -v dpkg-query >/dev/null; then
		echo "- $(dpkg-query -W -f='${Package} ${Version}; ' libmodsecurity3 modsecurity-crs 2>/dev/null | sed 's/; $//')"
	fi
	echo "- CRS: ${crs4_version} (coraza-coreruleset module: edgeguard-all, coraza, nginx-modsec-crs4); Debian's modsecurity-crs ${crs3_version:-not installed} (nginx-modsec-crs3)"
	echo "- wrk -t1 -c$conns -d$duration, $rounds rounds interleaved, medians; CPU/req: the target's CPU time during the load ÷ requests; proxies on CPU $proxy_cpu, wrk/upstream/redis on CPU $load_cpu"
	echo
	"$work/bin/report" -crs3 "$crs3_version" "$results"
}
if [[ -n $out ]]; then report | tee "$out"; else report; fi
