#!/usr/bin/env bash
# SQLite's own floor for issue 10's target 1: how long SQLite alone (the sqlite3 shell, no
# decompression, no parsing, no hashing, journal and sync off) takes to store the rows our ingest
# stores for the 3M-line nginx file and to build the indexes the schema requires, next to lnav's
# load + count of the same file. When that floor alone exceeds 0.75x lnav, no ingest pipeline in
# front of SQLite can meet the target with this stored shape.
#
# Also times two other stored shapes that would meet it, as figures for a product decision:
# narrow rows (no user_agent/query/peer_ip/extra/...) with the original line and only the `time`
# index, and the same rows without the original line.
#
# Usage: [RUNS=N] bench/sqlite-floor.sh [LINES]   (default 3000000; RUNS default 3, alternated with lnav)
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-3000000}
out=bench/out
mkdir -p "$out"
log=$(bench/nginx-log.sh "$lines")
src="$out/floor-source-$lines.db"
work=${TMPDIR:-/tmp}/investigate-floor.db

for tool in lnav sqlite3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y lnav sqlite3 time"; exit 1; }
done
if [ ! -f "$src" ]; then
  swift build -c release --product investigate >/dev/null
  echo "ingesting $log once → $src (the rows to copy)"
  .build/release/investigate ingest --db "$src" "$log" >/dev/null
fi

seconds() { # command... → wall seconds
  /usr/bin/time -f "%e" -o "$out/floor-time.txt" "$@" >/dev/null 2>"$out/floor.stderr" || { cat "$out/floor.stderr"; exit 1; }
  cat "$out/floor-time.txt"
}
# The same settings as the ingest's (16 KB pages; sorts under a 2 MB cache and four helpers), but
# with no journal and no sync: the floor is generous to SQLite.
fresh() { rm -f "$work" "$work-journal"; sqlite3 "$work" "PRAGMA page_size=16384; PRAGMA journal_mode=OFF;" >/dev/null; }
load() { # column list, DDL → seconds for the insert
  sqlite3 "$work" "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536; ATTACH '$src' AS src; $2;" >/dev/null
  seconds sqlite3 "$work" "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536; ATTACH '$src' AS src;
    BEGIN; INSERT INTO event SELECT $1 FROM src.event; COMMIT;"
}
index() { # definition → seconds
  seconds sqlite3 "$work" "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-2048; PRAGMA threads=4; CREATE INDEX $1;"
}
wide_ddl=$(sqlite3 "$src" "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'event'")
narrow_cols="id, source_id, line, line_end, time, layer, kind, client_ip, method, path, status, bytes"
narrow_ddl="CREATE TABLE event (id INTEGER PRIMARY KEY, source_id INTEGER, line INTEGER, line_end INTEGER, time INTEGER,
  layer TEXT, kind TEXT, client_ip TEXT, method TEXT, path TEXT, status INTEGER, bytes INTEGER"

runs=${RUNS:-3}
rows=(); for ((run = 1; run <= runs; run++)); do
  read_s=$(seconds sqlite3 "$src" "SELECT sum(length(raw) + ifnull(length(user_agent), 0)) FROM event")
  fresh; wide_s=$(load "*" "$wide_ddl"); time_s=$(index "event_time ON event(time)"); client_s=$(index "event_client_ip ON event(client_ip, time)")
  fresh; narrow_raw_s=$(load "$narrow_cols, raw" "$narrow_ddl, raw BLOB NOT NULL)"); narrow_raw_time_s=$(index "event_time ON event(time)")
  fresh; narrow_s=$(load "$narrow_cols" "$narrow_ddl)"); narrow_time_s=$(index "event_time ON event(time)")
  rm -f "$work"
  lnav_s=$(seconds lnav -n -c ';SELECT count(*) FROM access_log' "$log")
  echo "run $run: scan $read_s s; as stored: insert $wide_s + time $time_s + (client_ip, time) $client_s s;" \
       "narrow with raw: $narrow_raw_s + $narrow_raw_time_s s; narrow without raw: $narrow_s + $narrow_time_s s; lnav $lnav_s s"
  rows+=("$read_s $wide_s $time_s $client_s $narrow_raw_s $narrow_raw_time_s $narrow_s $narrow_time_s $lnav_s")
done

python3 - "${rows[@]}" <<'PY'
import statistics, sys
runs = [list(map(float, r.split())) for r in sys.argv[1:]]
med = [statistics.median(col) for col in zip(*runs)]
scan, wide, t, c, nr, nrt, n, nt, lnav = med
print(f"\nmedians of {len(runs)} runs; lnav 0.11 load + count {lnav:.2f} s, so target 1 (0.75x) is {0.75 * lnav:.2f} s")
print(f"{'stored shape (SQLite alone)':58} {'seconds':>8} {'/ lnav':>7}")
for name, s in [
    ("rows as stored now + time + (client_ip, time) indexes", wide + t + c),
    ("  the same less the time to scan the source rows", max(wide - scan, 0) + t + c),
    ("rows as stored now + time index only", wide + t),
    ("narrow rows with the original line + time index", nr + nrt),
    ("narrow rows without the original line + time index", n + nt),
]:
    print(f"{name:58} {s:8.2f} {s / lnav:6.2f}x")
print(f"(insert {wide:.2f} s, time index {t:.2f} s, (client_ip, time) index {c:.2f} s; scanning the source rows {scan:.2f} s)")
PY
