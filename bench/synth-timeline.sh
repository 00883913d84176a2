#!/usr/bin/env bash
# Writes a synthetic timeline of EVENTS access events (two layers per request: alb and nginx, ~50k
# clients, some 404/500s, probes and a few noisy scanners, over one day, 2025-02-06 UTC) straight
# into DB, through the tool's own schema. Used by bench/replay.sh and bench/diagnose.sh.
# Usage: bench/synth-timeline.sh DB EVENTS BIN   (BIN: the investigate binary that creates the schema)
set -euo pipefail
db=$1
events=$2
bin=$3
rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
# An empty replay creates the schema through the tool's own migrations.
"$bin" replay --db "$db" --json >/dev/null
  sqlite3 "$db" <<SQL
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
BEGIN;
INSERT INTO source (id, path, sha256, size, status, ingested_at) VALUES (1, 'bench-synthetic', 'bench', 0, 'complete', 0);
DROP INDEX IF EXISTS event_time;
DROP INDEX IF EXISTS event_request_id;
DROP INDEX IF EXISTS event_trace_id;
-- Straight into event_data (docs/schema.md): layer 4 = alb, 6 = nginx, kind 1 = access; the text
-- inline (no shared_text); no original bytes (raw_block NULL reads as empty).
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < $events - 1)
INSERT INTO event_data (source_id, line, time, layer, kind, client_ip, method, path, status)
SELECT 1, i + 1,
       1738800000000000 + (i / 2) * (86400000000 / ($events / 2)) + (i % 2) * 1000,
       CASE i % 2 WHEN 0 THEN 4 ELSE 6 END,
       1,
       CASE WHEN (i / 2) % 1000 < 5 THEN '203.0.113.' || ((i / 2) % 5)
            ELSE '10.' || ((((i / 16) * 7919) % 50000) / 250) || '.' || ((((i / 16) * 7919) % 50000) % 250) END,
       'GET',
       CASE WHEN (i / 2) % 997 = 0 THEN '/wp-login.php'
            WHEN (i / 2) % 1000 < 5 THEN '/scan/' || (i / 2)
            ELSE '/p/' || ((i / 2) % 1000) END,
       CASE WHEN (i / 2) % 1000 < 5 THEN 404 WHEN (i / 2) % 50 = 0 THEN 404 WHEN (i / 2) % 200 = 1 THEN 500 ELSE 200 END
FROM seq;
CREATE INDEX event_time ON event_data(time);
UPDATE source SET first_event_id = 1, last_event_id = $events WHERE id = 1;
INSERT INTO source_layer (source_id, layer, events, first_time, last_time)
SELECT 1, layer, count(*), min(time), max(time) FROM event GROUP BY layer;
COMMIT;
SQL
