#!/usr/bin/env bash
# Bytes of RSS per key, CrabCache's store against redis-server, measured in one run on one load:
# N keys of K bytes (the zero-padded decimal index) with V-byte values of 'v'.
#
#   core/rss_vs_redis.sh [keys=1000000] [key_bytes=16] [value_bytes=10]
#
# CrabCache: crabcache-rss-per-key (default policy s3fifo, the store alone, no server).
# Redis: a fresh redis-server (no persistence, unix socket only), loaded with pipelined SETs from
# redis-cli --pipe; RSS read from /proc/<pid>/status before and after the load.
# Environment: RSS_PER_KEY (the program; default build/release/core/crabcache-rss-per-key),
# REDIS_SERVER and REDIS_CLI (default: from PATH).
set -euo pipefail

keys=${1:-1000000}
key_bytes=${2:-16}
value_bytes=${3:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
rss_per_key=${RSS_PER_KEY:-$root/build/release/core/crabcache-rss-per-key}
redis_server=${REDIS_SERVER:-redis-server}
redis_cli=${REDIS_CLI:-redis-cli}

for tool in "$rss_per_key" "$redis_server" "$redis_cli"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "rss_vs_redis: $tool not found (build crabcache-rss-per-key; apt-get install redis-server)" >&2
    exit 2
  fi
done

crab=$("$rss_per_key" "$keys" "$key_bytes" "$value_bytes")
crab_rss=$(sed -E 's/.*"rss_bytes_per_key":([0-9.]+).*/\1/' <<<"$crab")
crab_accounted=$(sed -E 's/.*"accounted_bytes_per_key":([0-9.]+).*/\1/' <<<"$crab")

dir=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    "$redis_cli" -s "$dir/redis.sock" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$redis_server" --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no \
  --daemonize no --logfile "$dir/redis.log" &
pid=$!
for _ in $(seq 100); do
  [[ -S $dir/redis.sock ]] && "$redis_cli" -s "$dir/redis.sock" ping >/dev/null 2>&1 && break
  sleep 0.1
done
"$redis_cli" -s "$dir/redis.sock" ping >/dev/null

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
used_memory() { "$redis_cli" -s "$dir/redis.sock" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }
before_kb=$(rss_kb)
used_before=$(used_memory)
awk -v n="$keys" -v kb="$key_bytes" -v vb="$value_bytes" 'BEGIN {
  v = sprintf("%" vb "s", ""); gsub(/ /, "v", v)
  fmt = "%0" kb "d"
  for (i = 0; i < n; i++) {
    k = sprintf(fmt, i)
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", kb, k, vb, v
  }
}' | "$redis_cli" -s "$dir/redis.sock" --pipe >"$dir/pipe.log"
stored=$("$redis_cli" -s "$dir/redis.sock" dbsize)
after_kb=$(rss_kb)
used_after=$(used_memory)
version=$("$redis_server" --version | sed -E 's/.*v=([0-9.]+).*/\1/')
if [[ $stored != "$keys" ]]; then
  echo "rss_vs_redis: redis stored $stored of $keys keys" >&2
  cat "$dir/pipe.log" >&2
  exit 1
fi

redis_rss=$(awk -v a="$after_kb" -v b="$before_kb" -v n="$keys" 'BEGIN {printf "%.1f", (a - b) * 1024 / n}')
redis_used=$(awk -v a="$used_after" -v b="$used_before" -v n="$keys" 'BEGIN {printf "%.1f", (a - b) / n}')
ratio=$(awk -v c="$crab_rss" -v r="$redis_rss" 'BEGIN {printf "%.2f", c / r}')
echo "crabcache: $crab"
printf '{"keys":%d,"key_bytes":%d,"value_bytes":%d,"crabcache_rss_bytes_per_key":%s,' \
  "$keys" "$key_bytes" "$value_bytes" "$crab_rss"
printf '"crabcache_accounted_bytes_per_key":%s,"redis_version":"%s",' "$crab_accounted" "$version"
printf '"redis_rss_bytes_per_key":%s,"redis_used_memory_bytes_per_key":%s,' "$redis_rss" "$redis_used"
printf '"crabcache_to_redis_rss":%s}\n' "$ratio"
