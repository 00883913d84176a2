#!/usr/bin/env bash
# The main job on an archive: a cold `investigate --at` about four minutes of a multi-day edge
# archive (logsim: WAF and ALB S3 objects, rotated nginx logs, syslog, daily app files), against
# one plain read pass (zcat/cat) over the same files and a full ingest. Files whose names' time
# stamps cannot hold the window are not read (src: Ingest/WindowPlan.swift).
# Usage: bench/window.sh [REQUESTS] [RATE]   (default 200000 requests at 1.0/s: 2.3 days)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-200000}
rate=${2:-1.0}
work=${BENCH_DIR:-/tmp/investigate-bench}/window-$requests-$rate
swift build -c release --product investigate >/dev/null
swift build -c release --product logsim >/dev/null
bin="$(swift build -c release --show-bin-path)"
if [ ! -e "$work/archive/truth.jsonl" ]; then
  rm -rf "$work"; mkdir -p "$work"
  "$bin/logsim" edge --requests "$requests" --rate "$rate" --start 2025-02-03T00:00:00Z --fail waf-block,worker-timeout --out "$work/archive" >/dev/null
fi
files=$(find "$work/archive" -type f ! -name truth.jsonl | wc -l)
start=$(date +%s.%N)
find "$work/archive" -type f ! -name truth.jsonl | while read -r f; do if gzip -t "$f" 2>/dev/null; then zcat "$f"; else cat "$f"; fi; done > /dev/null
pass=$(echo "$(date +%s.%N) - $start" | bc)
at="2025-02-04 12:00"
rm -f "$work/cold.db"*
/usr/bin/time -f "cold --at: %e s, peak %M KB" "$bin/investigate" --db "$work/cold.db" --at "$at" --tz UTC "$work/archive" > "$work/cold.txt" || true
/usr/bin/time -f "same question again: %e s" "$bin/investigate" --db "$work/cold.db" --at "$at" --tz UTC "$work/archive" > /dev/null || true
rm -f "$work/full.db"*
/usr/bin/time -f "full ingest: %e s, peak %M KB" "$bin/investigate" ingest --db "$work/full.db" "$work/archive" > /dev/null
/usr/bin/time -f "--at on the full database: %e s" "$bin/investigate" --db "$work/full.db" --at "$at" --tz UTC > "$work/full.txt" || true
echo "archive: $files files; one plain read pass: $pass s"
if diff <(grep -E '^  [0-9]+\.' "$work/cold.txt") <(grep -E '^  [0-9]+\.' "$work/full.txt") >/dev/null; then echo "verdicts identical"; else echo "VERDICTS DIFFER"; fi
