#!/usr/bin/env bash
# The gzipped nginx `combined` log that ingest-vs-lnav.sh and sqlite-floor.sh both measure:
# generated once (gen_nginx_combined.py, ~198 bytes a line), then reused. Prints its path.
# Usage: bench/nginx-log.sh LINES
set -euo pipefail
cd "$(dirname "$0")/.."
lines=$1
mkdir -p bench/out
log="bench/out/access-$lines.log.gz"
if [ ! -f "$log" ]; then
  echo "generating $lines lines → $log" >&2
  python3 bench/gen_nginx_combined.py "$lines" | gzip -6 > "$log.partial"
  mv "$log.partial" "$log"
fi
echo "$log"
