#!/bin/bash
# What Prometheus metrics cost, counted in instructions rather than seconds.
#
#   bench/metrics_cost.sh [BUILD_DIR] [REQUESTS]      (defaults: build/release 200000)
#
# Runs crabcached under `valgrind --tool=callgrind` (one fast path loop, --threads=1) with metrics
# on (the defaults, an ephemeral metrics port) and with --metrics_address= (no metrics sink at
# all), drives a fixed number of requests through it with crabcache-bench, and prints the
# user-space instructions the server executed per request in each case and the difference.
# Each case runs twice, with REQUESTS and with 2 x REQUESTS requests, and the per-request figure is
# the difference divided by REQUESTS: start-up (loading and binding prometheus-cpp, the exposer
# thread starting) and shutdown cancel out. The expiry sweeper, whose work depends on time rather
# than on requests, is slowed to one step an hour (--sweep_interval=1h).
#
# Instruction counts do not depend on what else the machine is doing, which wall-clock throughput
# on a shared 2-core machine does (bench/metrics_overhead.py measures that, with a spread of tens
# of percent here). Two caveats: instructions are not cycles (a cache miss on a counter costs more
# than one instruction says, but the counters are per thread and touched once per batch), and the
# kernel's share of the server's CPU (system calls, TCP) is not counted, so the percentage
# overstates the cost in CPU time by that share (compare.py prints it per workload).
#
# Workloads: fast path pipeline 1 and 16 (8 connections), gRPC BatchExecute with 64 commands per
# message (8 streams), 10,000 keys, 90 % GET. Exit status 1 when a run fails.
set -euo pipefail

BUILD=${1:-build/release}
REQUESTS=${2:-200000}
SERVER=$BUILD/server/crabcached
BENCH=$BUILD/bench/crabcache-bench
for f in "$SERVER" "$BENCH"; do
  [[ -x $f ]] || { echo "missing $f (build first: make build)" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Prints the instructions crabcached executed serving N requests of one workload.
# $1: run name, $2: N, $3: the metrics flag, $4: "fastpath_port" or "grpc_port", rest: bench flags.
instructions() {
  local name=$1 requests=$2 metrics_flag=$3 port_key=$4
  shift 4
  local dir=$WORK/$name
  mkdir -p "$dir"
  valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$SERVER" \
    --address=127.0.0.1 --port=0 --grpc_port=0 --threads=1 --sweep_interval=1h "$metrics_flag" \
    --ready_file="$dir/ready.json" --log_level=warning 2>"$dir/valgrind.log" &
  local pid=$!
  for _ in $(seq 300); do
    [[ -s $dir/ready.json ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/valgrind.log" >&2; return 1; }
    sleep 0.2
  done
  local port
  port=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" \
    "$dir/ready.json" "$port_key")
  if ! "$BENCH" "$@" --port "$port" --connections 8 --keys 10000 --get-ratio 0.9 \
      --requests "$requests" --warmup 0 </dev/null >"$dir/bench.log" 2>&1; then
    cat "$dir/bench.log" >&2
    kill -TERM "$pid"
    wait "$pid" || true
    return 1
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$dir/callgrind.out"
}

# Prints the instructions per request of one workload: $1 name, $2 metrics flag, $3 port key,
# rest: bench flags.
per_request() {
  local name=$1 metrics_flag=$2 port_key=$3
  shift 3
  local once twice
  once=$(instructions "$name-1" "$REQUESTS" "$metrics_flag" "$port_key" "$@")
  twice=$(instructions "$name-2" $((2 * REQUESTS)) "$metrics_flag" "$port_key" "$@")
  echo $(((twice - once) / REQUESTS))
}

printf '| workload | instructions per request, metrics on | metrics off | cost of metrics |\n'
printf '|---|---:|---:|---:|\n'
while IFS='|' read -r name port_key args; do
  # shellcheck disable=SC2086  # args is a list of flags
  on=$(per_request "$name-on" "--metrics_address=127.0.0.1:0" "$port_key" $args)
  # shellcheck disable=SC2086
  off=$(per_request "$name-off" "--metrics_address=" "$port_key" $args)
  /usr/bin/python3 -c "import sys; n, on, off = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); \
print(f'| {n} | {on:,} | {off:,} | {100 * (on - off) / off:+.2f} % |')" "$name" "$on" "$off"
done <<'EOF'
fast path, pipeline 1|fastpath_port|--protocol binary --pipeline 1
fast path, pipeline 16|fastpath_port|--protocol binary --pipeline 16
gRPC BatchExecute, 64 per message|grpc_port|--protocol grpc --pipeline 64 --streams 8
EOF
printf '\n%s and %s requests per case, 10,000 keys, 90 %% GET, --threads=1; command: %s\n' \
  "$REQUESTS" $((2 * REQUESTS)) "bench/metrics_cost.sh $BUILD $REQUESTS"
