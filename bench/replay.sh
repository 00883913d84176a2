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
  rm -f "$db" "$db-wal" "$db-shm"
  # An empty replay creates the schema through the tool's own migrations.
  "$bin" replay --db "$db" --json >/dev/null
  echo "generating $events events into $db …" >&2
  gen_start=$(date +%s.%N)
  sqlite3 "$db" <<SQL
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
BEGIN;
INSERT INTO source (id, path, sha256, size, status, ingested_at) VALUES (1, 'bench-synthetic', 'bench', 0, 'ingested', 0);
DROP INDEX IF EXISTS event_time;
DROP INDEX IF EXISTS event_client_ip;
DROP INDEX IF EXISTS event_request_id;
DROP INDEX IF EXISTS event_trace_id;
DROP INDEX IF EXISTS event_source_line;
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < $events - 1)
INSERT INTO event (source_id, line, line_end, time, layer, kind, client_ip, method, path, status, raw)
SELECT 1, i + 1, i + 1,
       1738800000000000 + (i / 2) * (86400000000 / ($events / 2)) + (i % 2) * 1000,
       CASE i % 2 WHEN 0 THEN 'alb' ELSE 'nginx' END,
       'access',
       CASE WHEN (i / 2) % 1000 < 5 THEN '203.0.113.' || ((i / 2) % 5)
            ELSE '10.' || ((((i / 16) * 7919) % 50000) / 250) || '.' || ((((i / 16) * 7919) % 50000) % 250) END,
       'GET',
       CASE WHEN (i / 2) % 997 = 0 THEN '/wp-login.php'
            WHEN (i / 2) % 1000 < 5 THEN '/scan/' || (i / 2)
            ELSE '/p/' || ((i / 2) % 1000) END,
       CASE WHEN (i / 2) % 1000 < 5 THEN 404 WHEN (i / 2) % 50 = 0 THEN 404 WHEN (i / 2) % 200 = 1 THEN 500 ELSE 200 END,
       x''
FROM seq;
CREATE INDEX event_time ON event(time);
CREATE INDEX event_client_ip ON event(client_ip, time);
CREATE INDEX event_request_id ON event(request_id) WHERE request_id IS NOT NULL;
CREATE INDEX event_trace_id ON event(trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX event_source_line ON event(source_id, line);
COMMIT;
SQL
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
