#!/usr/bin/env bash
# Ingest benchmark: `investigate ingest` vs lnav vs zcat on the same gzipped nginx combined log.
# Not a test: it prints figures. Usage: [RUNS=N] bench/ingest-vs-lnav.sh [LINES]   (default 3000000)
# The two tools alternate RUNS times (default 3) so a slow minute of a shared machine hits both;
# the ratios are of medians and of bests.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-3000000}
out=bench/out
mkdir -p "$out"
log=$(bench/nginx-log.sh "$lines")

for tool in lnav zcat /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y lnav time"; exit 1; }
done

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
runs=${RUNS:-3}
read -r zcat_s zcat_mb < <(measure zcat sh -c "zcat '$log' > /dev/null")
inv_all=(); lnav_all=()
for ((run = 1; run <= runs; run++)); do
  rm -f "$out/bench.db" "$out/bench.db-wal" "$out/bench.db-shm" "$out/bench.db-journal"
  read -r inv_s inv_mb < <(measure investigate "$bin" ingest --db "$out/bench.db" "$log")
  read -r lnav_s lnav_mb < <(measure lnav lnav -n -c ';SELECT count(*) FROM access_log' "$log")
  echo "run $run: investigate ingest $inv_s s ($inv_mb MB), lnav $lnav_s s ($lnav_mb MB)"
  inv_all+=("$inv_s"); lnav_all+=("$lnav_s")
done
read -r again_s again_mb < <(measure investigate-again "$bin" ingest --db "$out/bench.db" "$log")
# The main job on the file already ingested: no re-parse, one dense ±2-minute window diagnosed.
read -r at_s at_mb < <(measure investigate-at "$bin" --db "$out/bench.db" --at "2025-02-06 12:00" --tz +09:00 "$log")
db_size=$(stat -c %s "$out/bench.db")
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
inv_s=$(median "${inv_all[@]}"); lnav_s=$(median "${lnav_all[@]}")

printf '\n%-32s %10s %12s %10s\n' "tool (median of $runs)" "seconds" "lines/s" "peak MB"
for row in "zcat:$zcat_s:$zcat_mb" "lnav (load + count):$lnav_s:$lnav_mb" "investigate ingest:$inv_s:$inv_mb" "investigate (already in):$again_s:$again_mb" "investigate --at (already in):$at_s:$at_mb"; do
  IFS=: read -r name s mb <<<"$row"
  printf '%-32s %10s %12s %10s\n' "$name" "$s" "$(python3 -c "print(int($lines/max($s,0.001)))")" "$mb"
done
python3 - "$zcat_s" "$db_size" "$raw" "${inv_all[*]}" "${lnav_all[*]}" <<'PY'
import statistics, sys
zcat, db, raw = map(float, sys.argv[1:4])
inv = [float(x) for x in sys.argv[4].split()]
lnav = [float(x) for x in sys.argv[5].split()]
mi, ml = statistics.median(inv), statistics.median(lnav)
print(f"\ninvestigate / lnav = {mi/ml:.2f}x (medians), {min(inv)/min(lnav):.2f}x (bests), "
      f"per run {', '.join(f'{a/b:.2f}x' for a, b in zip(inv, lnav))}")
print(f"investigate / zcat = {mi/zcat:.2f}x (median)")
print(f"database {db/1e6:.0f} MB = {db/raw:.2f}x the uncompressed input")
PY
