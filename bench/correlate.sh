#!/usr/bin/env bash
# Correlation benchmark (not a test): generates an edge corpus with logsim (WAF + ALB + nginx +
# syslog + app; default 1,000,000 requests), ingests it with phase timings (ingest, copy marking,
# correlation) and peak memory, then scores the links against the simulator's ground truth.
# Usage: bench/correlate.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-1000000}
work=${BENCH_DIR:-/tmp/investigate-bench}
corpus="$work/edge-$requests"
db="$work/edge-$requests.db"
mkdir -p "$work"
swift build -c release --product investigate >/dev/null
swift build -c release --product logsim >/dev/null
bin="$(swift build -c release --show-bin-path)"
if [ ! -e "$corpus/truth.jsonl" ]; then
  rm -rf "$corpus"
  /usr/bin/time -f "logsim: %e s, peak %M KB" "$bin/logsim" edge --requests "$requests" --out "$corpus"
fi
lines=$(find "$corpus" -type f ! -name truth.jsonl | while read -r f; do if gzip -t "$f" 2>/dev/null; then zcat "$f"; else cat "$f"; fi; done | wc -l)
zstart=$(date +%s.%N)
find "$corpus" -type f ! -name truth.jsonl | while read -r f; do if gzip -t "$f" 2>/dev/null; then zcat "$f"; else cat "$f"; fi; done > /dev/null
zend=$(date +%s.%N)
rm -f "$db" "$db-journal"
INVESTIGATE_TIMING=1 /usr/bin/time -f "investigate ingest: %e s, peak %M KB" "$bin/investigate" ingest --db "$db" "$corpus" >/dev/null
"$bin/investigate" score --db "$db" --corpus "$corpus"
echo "input: $requests requests, $lines lines; zcat/cat of the same files: $(echo "$zend - $zstart" | bc) s"
