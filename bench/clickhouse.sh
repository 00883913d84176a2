#!/usr/bin/env bash
# The ClickHouse store against the local SQLite timeline (docs/clickhouse.md):
#  1. ingest of one large gzipped nginx log (bench/nginx-log.sh LINES): rows per second into
#     ClickHouse (`ingest --store`) and into a fresh local database (`ingest --db`), same file;
#  2. `--at` about four minutes of a logsim edge archive (as bench/window.sh builds it), side by
#     side, time and peak RSS (median time and largest peak of RUNS runs each): on a local database
#     already holding the archive; from ClickHouse holding it, cold (window fetched into a working
#     set, then copies marked, correlated and diagnosed; no kept working sets); and the same question
#     again, answered from the working set the first one kept (docs/clickhouse.md, "Kept working
#     sets"). The verdicts must be identical.
# Needs a ClickHouse server: CLICKHOUSE_BENCH_URL (default clickhouse://127.0.0.1:18123/bench;
# `.ci/clickhouse/server.sh start DIR 18123` starts one). Each run drops and refills its databases.
# Usage: bench/clickhouse.sh [LINES] [REQUESTS] [RATE]   (default 3000000 lines; 200000 requests at 1.0/s)
# Environment: SCRATCH (build directory, default .build), BENCH_DIR, RUNS (default 5), AT_ONLY=1 (skip
# the ingests: the databases of an earlier run are measured again).
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-3000000}
requests=${2:-200000}
rate=${3:-1.0}
url=${CLICKHOUSE_BENCH_URL:-clickhouse://127.0.0.1:18123/bench}
scratch=${SCRATCH:-.build}
runs=${RUNS:-5}
work=${BENCH_DIR:-/tmp/investigate-bench}
http="http://$(echo "$url" | sed -E 's#^clickhouse://([^@/]*@)?([^/]+)/.*#\2#')/"
db=$(echo "$url" | sed -E 's#.*/##')
swift build -c release --scratch-path "$scratch" --product investigate >/dev/null
swift build -c release --scratch-path "$scratch" --product logsim >/dev/null
bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"
ch() { curl -fsS "$http" --data-binary "$1"; }
echo "ClickHouse $(ch 'SELECT version()') at $url"

if [ -z "${AT_ONLY:-}" ]; then
log=$(bench/nginx-log.sh "$lines")
ch "DROP DATABASE IF EXISTS ${db}_nginx" >/dev/null
t0=$(date +%s.%N)
"$bin/investigate" ingest --store "${url}_nginx" "$log" > /dev/null
t1=$(date +%s.%N)
rows=$(ch "SELECT count() FROM ${db}_nginx.event")
rm -f "$work/nginx-local.db"*; mkdir -p "$work"
"$bin/investigate" ingest --db "$work/nginx-local.db" "$log" > /dev/null
t2=$(date +%s.%N)
echo "$lines-line nginx log: ClickHouse ingest $(echo "$t1 - $t0" | bc) s ($(echo "$rows / ($t1 - $t0)" | bc) rows/s, $rows rows); local SQLite ingest $(echo "$t2 - $t1" | bc) s ($(echo "$rows / ($t2 - $t1)" | bc) rows/s)"
rm -f "$work/nginx-local.db"*
fi

archive=$work/window-$requests-$rate/archive
if [ ! -e "$archive/truth.jsonl" ]; then
  rm -rf "$archive"; mkdir -p "$archive"
  "$bin/logsim" edge --requests "$requests" --rate "$rate" --start 2025-02-03T00:00:00Z --fail waf-block,worker-timeout --out "$archive" >/dev/null
fi
at="2025-02-04 12:00"
if [ -z "${AT_ONLY:-}" ]; then
  ch "DROP DATABASE IF EXISTS ${db}_edge" >/dev/null
  /usr/bin/time -f "archive into ClickHouse: %e s" "$bin/investigate" ingest --store "${url}_edge" "$archive" > /dev/null
  rm -f "$work/edge-full.db"*
  /usr/bin/time -f "archive into a local database: %e s" "$bin/investigate" ingest --db "$work/edge-full.db" "$archive" > /dev/null
fi

# measure LABEL OUT CACHE_DIR ARGS...: RUNS runs; prints the median time and the largest peak RSS.
measure() {
  local label=$1 out=$2 cache=$3; shift 3
  local times=() peak=0
  for _ in $(seq 1 "$runs"); do
    [ "$cache" = fresh ] && { rm -rf "$work/ws-cache"; c=off; } || c=$cache
    INVESTIGATE_CACHE_DIR=$c /usr/bin/time -o "$work/time.txt" -f "%e %M" "$bin/investigate" "$@" > "$out" 2>"$out.err" || true
    read -r t m < "$work/time.txt"
    times+=("$t"); [ "$m" -gt "$peak" ] && peak=$m
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
  printf '| %s | %s s | %d MB |\n' "$label" "$median" $((peak / 1024))
}
echo "--at \"$at\" --tz UTC, $runs runs each (median time, largest peak RSS):"
echo "| | time | peak RSS |"
echo "| --- | --- | --- |"
measure "local database holding the archive" "$work/edge-local.txt" off --db "$work/edge-full.db" --at "$at" --tz UTC
measure "ClickHouse, cold (window fetched, correlated)" "$work/edge-ch.txt" fresh --store "${url}_edge" --at "$at" --tz UTC
rm -rf "$work/ws-cache"
INVESTIGATE_CACHE_DIR="$work/ws-cache" "$bin/investigate" --store "${url}_edge" --at "$at" --tz UTC > /dev/null 2>&1 || true
measure "ClickHouse, same window again (kept working set)" "$work/edge-ch-again.txt" "$work/ws-cache" --store "${url}_edge" --at "$at" --tz UTC
rm -rf "$work/ws-cache"
grep -h "^investigate:" "$work/edge-ch.txt.err" | head -1
for f in edge-ch edge-ch-again; do
  if diff <(grep -E '^  [0-9]+\.' "$work/$f.txt") <(grep -E '^  [0-9]+\.' "$work/edge-local.txt") >/dev/null; then echo "$f: verdicts identical"; else echo "$f: VERDICTS DIFFER"; fi
done
