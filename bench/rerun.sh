#!/usr/bin/env bash
# An unchanged re-run over many small files must cost a small fraction of the first ingest (a stat
# and an indexed look-up per file). Generates FILES small nginx logs (5 lines each, 100 per
# folder), ingests them, then times RUNS unchanged re-runs. Usage: bench/rerun.sh [FILES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-20000}
runs=${2:-3}
work=${BENCH_DIR:-/tmp/investigate-bench}/rerun-$files
swift build -c release --product investigate >/dev/null
bin="$(swift build -c release --show-bin-path)/investigate"
if [ ! -d "$work/logs" ]; then
  python3 - "$work/logs" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for k in range(n):
    d = f"{root}/d{k // 100:04d}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/access-{k % 100:03d}.log", "w") as fh:
        for i in range(5):
            fh.write(f'198.51.100.{(k + i) % 250 + 1} - - [06/Feb/2025:05:{k % 60:02d}:{i:02d} +0000] "GET /p/{k}/{i} HTTP/1.1" 200 512 "-" "curl/8.5.0"\n')
PY
fi
rm -f "$work/t.db"*
/usr/bin/time -f "first ingest of $files files: %e s, peak %M KB" "$bin" ingest --db "$work/t.db" "$work/logs" >/dev/null
for i in $(seq "$runs"); do
  /usr/bin/time -f "unchanged re-run $i: %e s, peak %M KB" "$bin" ingest --db "$work/t.db" "$work/logs" >/dev/null
done
