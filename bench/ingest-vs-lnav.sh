#!/usr/bin/env bash
# Ingest benchmark: `investigate ingest` vs lnav vs zcat on the same gzipped nginx combined log.
# Not a test: it prints figures. Usage: bench/ingest-vs-lnav.sh [LINES]   (default 3000000)
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-3000000}
out=bench/out
mkdir -p "$out"
log="$out/access-$lines.log.gz"

for tool in lnav zcat /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y lnav time"; exit 1; }
done

if [ ! -f "$log" ]; then
  echo "generating $lines lines → $log"
  python3 bench/gen_nginx_combined.py "$lines" | gzip -6 > "$log"
fi
swift build -c release --product investigate >/dev/null
bin=.build/release/investigate
raw=$(zcat "$log" | wc -c)
echo "input: $log ($(stat -c %s "$log") bytes gzip, $raw bytes uncompressed, $lines lines)"

measure() { # name, command... → prints seconds and peak RSS (MB)
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" >/dev/null 2>"$out/$name.stderr" || { cat "$out/$name.stderr"; exit 1; }
  read -r secs kb < "$out/time.txt"
  echo "$secs $((kb / 1024))"
}

sync
read -r zcat_s zcat_mb < <(measure zcat sh -c "zcat '$log' > /dev/null")
rm -f "$out/bench.db" "$out/bench.db-wal" "$out/bench.db-shm"
read -r inv_s inv_mb < <(measure investigate "$bin" ingest --db "$out/bench.db" "$log")
read -r again_s again_mb < <(measure investigate-again "$bin" ingest --db "$out/bench.db" "$log")
# The main job on the file already ingested: no re-parse, one dense ±2-minute window diagnosed.
read -r at_s at_mb < <(measure investigate-at "$bin" --db "$out/bench.db" --at "2025-02-06 12:00" --tz +09:00 "$log")
read -r lnav_s lnav_mb < <(measure lnav lnav -n -c ';SELECT count(*) FROM access_log' "$log")
db_size=$(stat -c %s "$out/bench.db")

printf '\n%-32s %10s %12s %10s\n' "tool" "seconds" "lines/s" "peak MB"
for row in "zcat:$zcat_s:$zcat_mb" "lnav (load + count):$lnav_s:$lnav_mb" "investigate ingest:$inv_s:$inv_mb" "investigate (already in):$again_s:$again_mb" "investigate --at (already in):$at_s:$at_mb"; do
  IFS=: read -r name s mb <<<"$row"
  printf '%-32s %10s %12s %10s\n' "$name" "$s" "$(python3 -c "print(int($lines/max($s,0.001)))")" "$mb"
done
python3 - "$inv_s" "$lnav_s" "$zcat_s" "$db_size" "$raw" <<'PY'
import sys
inv, lnav, zcat, db, raw = map(float, sys.argv[1:])
print(f"\ninvestigate / lnav = {inv/lnav:.2f}x   investigate / zcat = {inv/zcat:.2f}x")
print(f"database {db/1e6:.0f} MB = {db/raw:.2f}x the uncompressed input")
PY
