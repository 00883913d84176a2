#!/usr/bin/env bash
# `investigate --at` latency on a large, already-ingested timeline (not a test): builds in release,
# synthesises EVENTS events (default 10,000,000) with bench/synth-timeline.sh, then times the
# main job, answered from the database alone, over several runs.
# Usage: bench/diagnose.sh [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-10000000}
work=${BENCH_DIR:-/tmp/investigate-bench}
mkdir -p "$work"
db="$work/diagnose-$events.db"
swift build -c release --product investigate >/dev/null
bin="$(swift build -c release --show-bin-path)/investigate"
if [ ! -e "$db.done" ]; then
  echo "generating $events events into $db …" >&2
  bench/synth-timeline.sh "$db" "$events" "$bin"
  touch "$db.done"
fi
"$bin" --db "$db" --at "2025-02-06 12:00" --tz UTC >/dev/null   # warm the page cache once
printf '%-44s %10s\n' "run" "seconds"
for query in "--at 2025-02-06T12:00" "--at 2025-02-06T12:00 --status 5xx" "--at 2025-02-06T18:30 --ip 203.0.113.2" "--at 2025-02-06T12:00 --json"; do
  best=999
  for i in 1 2 3 4 5; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$bin" --db "$db" $query --tz UTC >/dev/null
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc)
    best=$(echo "if ($t < $best) $t else $best" | bc)
  done
  printf '%-44s %10s\n' "investigate $query (best of 5)" "$best"
done
echo "timeline: $events events in $db ($(stat -c %s "$db") bytes)"
