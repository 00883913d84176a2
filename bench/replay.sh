#!/usr/bin/env bash
# Replay benchmark (not a test): builds in release, synthesises EVENTS access events straight into
# a timeline database (two layers per request, ~50k clients making visits of 8 requests, some
# 404/500s, probes and a few noisy scanners, over one day), then replays them through the default detectors and prints
# events per second and peak RSS. Usage: bench/replay.sh [EVENTS] [extra replay options…]
# Needs sqlite3 (the CLI), bc, python3 and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."

events=${1:-10000000}
shift || true
work=${BENCH_DIR:-$(mktemp -d /tmp/investigate-bench.XXXXXX)}
db="$work/replay-bench.db"

swift build -c release --product investigate >/dev/null
bin="$(swift build -c release --show-bin-path)/investigate"

if [ ! -e "$db.events-$events" ]; then
  echo "generating $events events into $db …" >&2
  gen_start=$(date +%s.%N)
  "$(dirname "$0")/synth-timeline.sh" "$db" "$events" "$bin"
  touch "$db.events-$events"
  echo "generated in $(echo "$(date +%s.%N) - $gen_start" | bc) s" >&2
fi

out="$work/replay-out.jsonl"
start=$(date +%s.%N)
/usr/bin/time -v "$bin" replay --db "$db" --json "$@" >"$out" 2>"$work/time.txt"
end=$(date +%s.%N)
elapsed=$(echo "$end - $start" | bc)
requests=$(tail -1 "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["summary"]["requests"])')
alerts=$(($(wc -l <"$out") - 1))
rss=$(grep "Maximum resident set size" "$work/time.txt" | awk '{print $NF}')
echo "replayed $requests events in $elapsed s: $(echo "$requests / $elapsed" | bc) events/s; $alerts alerts; peak RSS $((rss / 1024)) MiB"
echo "(database and output kept in $work)"
