#!/usr/bin/env bash
# Memory benchmark (not a test): peak RSS of `investigate ingest` and of the main job
# (`investigate --at`) on plain nginx logs of about 1 GB and 5 GB, and the database size as a
# ratio of the input. Usage: bench/memory.sh [GB...]   (default: 1 5)
# Needs about 3.6x the input in free disk space under $BENCH_DIR (default /tmp/investigate-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/tmp/investigate-bench}
mkdir -p "$work"
command -v /usr/bin/time >/dev/null || { echo "missing /usr/bin/time: apt-get install -y time"; exit 1; }
# INVESTIGATE_BIN runs a binary built earlier (so that building meanwhile cannot replace it).
bin=${INVESTIGATE_BIN:-}
if [ -z "$bin" ]; then swift build -c release --product investigate >/dev/null; bin=.build/release/investigate; fi
# gen_nginx_combined.py writes ~198 bytes per line.
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1 5)
printf '%-8s %12s %12s %10s %14s %10s %12s %10s\n' input lines bytes ingest_s ingest_peak_MB db_ratio at_s at_peak_MB
for gb in "${sizes[@]}"; do
  lines=$(( gb * 1000000000 / 198 ))
  log="$work/access-${gb}gb.log"
  [ -f "$log" ] || python3 bench/gen_nginx_combined.py "$lines" > "$log"
  db="$work/memory-${gb}gb.db"
  rm -f "$db" "$db-journal"
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$bin" ingest --db "$db" "$log" >/dev/null
  read -r ingest_s ingest_kb < "$work/time.txt"
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$bin" --db "$db" --at "2025-02-06 12:00" --tz +09:00 "$log" >/dev/null
  read -r at_s at_kb < "$work/time.txt"
  bytes=$(stat -c %s "$log")
  ratio=$(python3 -c "print(f'{$(stat -c %s "$db")/$bytes:.2f}')")
  printf '%-8s %12s %12s %10s %14s %10s %12s %10s\n' "${gb} GB" "$lines" "$bytes" "$ingest_s" "$((ingest_kb / 1024))" "$ratio" "$at_s" "$((at_kb / 1024))"
  rm -f "$db"
done
