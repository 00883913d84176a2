#!/usr/bin/env bash
# Fuzzes every importer family with libFuzzer (AddressSanitizer on) for SECONDS each, seeded with
# the importers' own samples. An input that crashes, hangs (over 10 s) or makes a line vanish (in
# no event, rejected record, framing or blank line) is saved under $FUZZ_DIR/findings/<importer>/.
# Reproduce one with `FUZZ_IMPORTER=<importer> .build/debug/investigate-fuzz FILE`; once fixed, copy it
# into Tests/InvestigateKitTests/FuzzFindings/<importer>/, where FuzzRegressionTests replays it.
# Usage: scripts/fuzz.sh [SECONDS per family, default 60]   (FUZZ_FAMILIES="nginx-access waf" to choose)
# FUZZ_RUNS=N runs N inputs per family from a fixed seed instead of a time: repeatable, as CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
work=${FUZZ_DIR:-bench/out/fuzz}
mkdir -p "$work"

swift build --product investigate-fuzz >/dev/null
plain="$(swift build --show-bin-path)/investigate-fuzz"
swift build -c release --product investigate-fuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING >/dev/null
fuzzer=".build-fuzz/release/investigate-fuzz"

rm -rf "$work/seeds"
"$plain" --write-seeds "$work/seeds"
families=${FUZZ_FAMILIES:-$(ls "$work/seeds")}

total_runs=0; findings=0; status=0
for id in $families; do
  mkdir -p "$work/corpus/$id" "$work/findings/$id"
  log="$work/$id.log"
  if [ -n "${FUZZ_RUNS:-}" ]; then budget=(-runs="$FUZZ_RUNS" -seed=1); else budget=(-max_total_time="$seconds"); fi
  if ! FUZZ_IMPORTER="$id" "$fuzzer" "${budget[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/findings/$id/" "$work/corpus/$id" "$work/seeds/$id" >"$log" 2>&1; then
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  found=$(find "$work/findings/$id" -type f | wc -l)
  total_runs=$((total_runs + ${runs:-0})); findings=$((findings + found))
  printf '%-26s %10s inputs  %3s findings\n' "$id" "${runs:-0}" "$found"
done
echo "fuzz: $total_runs inputs tried in all, $findings findings (crashes, hangs, vanished lines) under $work/findings"
exit $status
