#!/usr/bin/env bash
# Readers beside an ingest (WAL mode): how long `timeline` takes while an ingest of a multi-file
# edge archive writes the same database, and what WAL costs a bulk load. A bulk load alone on
# the database runs under a rollback journal (src: Store/TimelineStore.swift, bulkLoad); with a
# reader connected it runs in WAL, where each page is written twice.
# Usage: bench/readers.sh [REQUESTS] [NGINX_LINES]   (defaults 60000, 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-60000}
lines=${2:-1000000}
work=${BENCH_DIR:-/tmp/investigate-bench}/readers-$requests
swift build -c release --product investigate >/dev/null
swift build -c release --product logsim >/dev/null
bin="$(swift build -c release --show-bin-path)"
if [ ! -e "$work/archive/truth.jsonl" ]; then
  rm -rf "$work"; mkdir -p "$work"
  "$bin/logsim" edge --requests "$requests" --rate 1.0 --start 2025-02-03T00:00:00Z --fail waf-block --out "$work/archive" >/dev/null
fi
log=$(bench/nginx-log.sh "$lines")

echo "== timeline queries while an ingest of $(find "$work/archive" -type f | wc -l) files writes"
rm -f "$work/r.db"*
start=$(date +%s.%N)
"$bin/investigate" ingest --db "$work/r.db" "$work/archive" >/dev/null 2>&1 &
ingest=$!
times=()
while kill -0 "$ingest" 2>/dev/null; do
  s=$(date +%s.%N)
  "$bin/investigate" timeline --db "$work/r.db" --from "2025-02-03 10:00" --to "2025-02-03 10:01" --tz UTC >/dev/null 2>&1 || true
  times+=("$(echo "$(date +%s.%N) - $s" | bc)")
  sleep 0.2
done
wait "$ingest"
echo "ingest: $(echo "$(date +%s.%N) - $start" | bc) s; ${#times[@]} timeline queries beside it"
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "reader seconds: median %.3f, max %.3f\n", a[int((NR+1)/2)], a[NR]}'

echo "== bulk load of $lines nginx lines, alone (rollback journal) and with a reader connected (WAL)"
for run in 1 2 3; do
  rm -f "$work/b.db"*
  /usr/bin/time -f "%e" -o "$work/t" "$bin/investigate" ingest --db "$work/b.db" "$log" >/dev/null 2>&1
  alone=$(cat "$work/t")
  rm -f "$work/b.db"*
  "$bin/investigate" timeline --db "$work/b.db" --at "2025-02-06 12:00" >/dev/null 2>&1 || true
  python3 -c "import sqlite3,time,sys; c=sqlite3.connect(sys.argv[1]); c.execute('select count(*) from source').fetchall(); time.sleep(3600)" "$work/b.db" &
  reader=$!
  sleep 0.5
  /usr/bin/time -f "%e" -o "$work/t" "$bin/investigate" ingest --db "$work/b.db" "$log" >/dev/null 2>&1
  beside=$(cat "$work/t")
  kill "$reader"; wait "$reader" 2>/dev/null || true
  echo "run $run: alone $alone s, with a reader connected $beside s"
done
