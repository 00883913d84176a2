#!/usr/bin/env bash
# What recognising files by content costs (not a test): `investigate ingest` wall and CPU seconds
# (user + system, steadier than wall on a shared machine; median of RUNS, default 5) for
#   - 200 small nginx files (50 lines each), plain and gzip: a fresh ingest and an unchanged re-run;
#   - a 1,000,000-line nginx log, plain and gzip: a fresh ingest, an unchanged re-run, a re-run
#     after 1,000 lines were appended, the same after logrotate renamed it to access.log.1, and a
#     run after a gzip copy of it appeared (access.log.1.gz); with the events then stored.
# INVESTIGATE_BIN=path runs a binary built earlier (BASELINE_BIN=path adds its figures alongside,
# to compare two builds on the same inputs). Usage: [RUNS=N] bench/rotation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/tmp/investigate-bench}/rotation
mkdir -p "$work"
bin=${INVESTIGATE_BIN:-}
if [ -z "$bin" ]; then swift build -c release --product investigate >/dev/null; bin=.build/release/investigate; fi
bin=$(realpath "$bin")
bins=("$bin"); [ -n "${BASELINE_BIN:-}" ] && bins+=("$(realpath "$BASELINE_BIN")")

if [ ! -f "$work/big.log.gz" ]; then
  python3 bench/gen_nginx_combined.py 1001000 > "$work/all.log"
  head -n 1000000 "$work/all.log" > "$work/big.log"
  tail -n 1000 "$work/all.log" > "$work/extra.log"
  gzip -6 -c "$work/big.log" > "$work/big.log.gz"
  mkdir -p "$work/small" "$work/small-gz"
  for i in $(seq 0 199); do
    f=$(printf 'access-%03d.log' "$i")
    sed -n "$((i * 50 + 1)),$((i * 50 + 50))p" "$work/all.log" > "$work/small/$f"
    gzip -6 -c "$work/small/$f" > "$work/small-gz/$f.gz"
  done
  rm "$work/all.log"
fi

python3 - "$work" "${RUNS:-5}" "${bins[@]}" <<'PY'
import os, resource, shutil, sqlite3, statistics, subprocess, sys, time
work, runs, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
os.chdir(work)

def timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.time() - t0, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

def fresh(bin, inputs):
    for p in ["t.db", "t.db-journal"]:
        if os.path.exists(p): os.remove(p)
    return timed([bin, "ingest", "--db", "t.db", *inputs])

def logdir(bin, first):
    # A log directory holding the 1M-line log as `access.log`, ingested once.
    shutil.rmtree("g", ignore_errors=True); os.mkdir("g"); shutil.copy(first, "g/access.log")
    fresh(bin, ["g"])

def append_extra():
    with open("g/access.log", "ab") as out, open("extra.log", "rb") as extra: out.write(extra.read())

cases = [
    ("200 small plain, fresh", lambda b: None, lambda b: fresh(b, ["small"])),
    ("200 small plain, re-run", lambda b: fresh(b, ["small"]), lambda b: timed([b, "ingest", "--db", "t.db", "small"])),
    ("200 small gzip, fresh", lambda b: None, lambda b: fresh(b, ["small-gz"])),
    ("1M plain, fresh", lambda b: None, lambda b: fresh(b, ["big.log"])),
    ("1M gzip, fresh", lambda b: None, lambda b: fresh(b, ["big.log.gz"])),
    ("1M plain, re-run", lambda b: logdir(b, "big.log"), lambda b: timed([b, "ingest", "--db", "t.db", "g"])),
    ("1M plain, grew 1000", lambda b: (logdir(b, "big.log"), append_extra()), lambda b: timed([b, "ingest", "--db", "t.db", "g"])),
    ("1M plain, grew, renamed .1", lambda b: (logdir(b, "big.log"), append_extra(), os.rename("g/access.log", "g/access.log.1")),
     lambda b: timed([b, "ingest", "--db", "t.db", "g"])),
    ("1M plain, then .1.gz copy", lambda b: (logdir(b, "big.log"), shutil.copy("big.log.gz", "g/access.log.1.gz")),
     lambda b: timed([b, "ingest", "--db", "t.db", "g"])),
]
print(f"{'case':28s} {'binary':>10s} {'wall med':>9s} {'cpu min':>8s} {'cpu med':>8s} {'events':>8s}")
for name, setup, run in cases:
    results = {b: ([], [], []) for b in bins}
    for _ in range(runs):
        for b in bins:  # alternated, so both see the same machine
            setup(b)
            wall, cpu = run(b)
            results[b][0].append(wall); results[b][1].append(cpu)
            results[b][2].append(sqlite3.connect("t.db").execute("SELECT count(*) FROM event").fetchone()[0])
    for i, b in enumerate(bins):
        w, c, counts = results[b]
        events = counts[-1]
        print(f"{name:28s} {'this' if i == 0 else 'baseline':>10s} {statistics.median(w):9.3f} {min(c):8.3f} {statistics.median(c):8.3f} {events:8d}")
PY
