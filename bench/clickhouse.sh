#!/usr/bin/env bash
# The ClickHouse store against the local SQLite timeline (docs/clickhouse.md):
#  1. ingest of one large gzipped nginx log (bench/nginx-log.sh LINES): rows per second into
#     ClickHouse (`ingest --store`) and into a fresh local database (`ingest --db`), same file;
#  2. `--at` about four minutes of a logsim edge archive (as bench/window.sh builds it): from
#     ClickHouse holding the whole archive (window fetched into a working set, then correlated and
#     diagnosed) against a local database already holding it; the verdicts must be identical.
# Needs a ClickHouse server: CLICKHOUSE_BENCH_URL (default clickhouse://127.0.0.1:18123/bench;
# `.ci/clickhouse/server.sh start DIR 18123` starts one). Each run drops and refills its databases.
# Usage: bench/clickhouse.sh [LINES] [REQUESTS] [RATE]   (default 3000000 lines; 200000 requests at 1.0/s)
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-3000000}
requests=${2:-200000}
rate=${3:-1.0}
url=${CLICKHOUSE_BENCH_URL:-clickhouse://127.0.0.1:18123/bench}
scratch=${SCRATCH:-.build}
work=${BENCH_DIR:-/tmp/investigate-bench}
http="http://$(echo "$url" | sed -E 's#^clickhouse://([^@/]*@)?([^/]+)/.*#\2#')/"
db=$(echo "$url" | sed -E 's#.*/##')
swift build -c release --scratch-path "$scratch" --product investigate >/dev/null
swift build -c release --scratch-path "$scratch" --product logsim >/dev/null
bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"
ch() { curl -fsS "$http" --data-binary "$1"; }
echo "ClickHouse $(ch 'SELECT version()') at $url"

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

archive=$work/window-$requests-$rate/archive
if [ ! -e "$archive/truth.jsonl" ]; then
  rm -rf "$archive"; mkdir -p "$archive"
  "$bin/logsim" edge --requests "$requests" --rate "$rate" --start 2025-02-03T00:00:00Z --fail waf-block,worker-timeout --out "$archive" >/dev/null
fi
at="2025-02-04 12:00"
ch "DROP DATABASE IF EXISTS ${db}_edge" >/dev/null
/usr/bin/time -f "archive into ClickHouse: %e s" "$bin/investigate" ingest --store "${url}_edge" "$archive" > /dev/null
rm -f "$work/edge-full.db"*
/usr/bin/time -f "archive into a local database: %e s" "$bin/investigate" ingest --db "$work/edge-full.db" "$archive" > /dev/null
/usr/bin/time -f "--at from ClickHouse: %e s, peak %M KB" "$bin/investigate" --store "${url}_edge" --at "$at" --tz UTC > "$work/edge-ch.txt" || true
/usr/bin/time -f "--at on the local database: %e s, peak %M KB" "$bin/investigate" --db "$work/edge-full.db" --at "$at" --tz UTC > "$work/edge-local.txt" || true
if diff <(grep -E '^  [0-9]+\.' "$work/edge-ch.txt") <(grep -E '^  [0-9]+\.' "$work/edge-local.txt") >/dev/null; then echo "verdicts identical"; else echo "VERDICTS DIFFER"; fi
