#!/usr/bin/env bash
# A throwaway ClickHouse server on loopback for the tests, run as a child process (not a daemon).
#   server.sh start DIR HTTP_PORT   renders config.xml into DIR, starts the server with its data in
#                                   DIR, waits until it answers on HTTP_PORT; its pid goes to DIR/pid
#   server.sh stop DIR              stops it (TERM, then KILL after 20 s)
# Works with Debian 12's clickhouse-server (18.16) and with current releases (`clickhouse server`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd=${1:?start or stop}
dir=${2:?data directory}
case "$cmd" in
  start)
    port=${3:?http port}
    tcp=$((port + 1))
    mkdir -p "$dir/log"
    sed -e "s#@DATA@#$dir#g" -e "s/@HTTP_PORT@/$port/" -e "s/@TCP_PORT@/$tcp/" "$here/config.xml" > "$dir/config.xml"
    cp "$here/users.xml" "$dir/users.xml"
    if command -v clickhouse-server >/dev/null 2>&1; then server=(clickhouse-server)
    elif command -v clickhouse >/dev/null 2>&1; then server=(clickhouse server)
    else echo "server.sh: no clickhouse-server binary" >&2; exit 3; fi
    (cd "$dir" && exec "${server[@]}" --config-file="$dir/config.xml" >"$dir/log/stdout" 2>&1) &
    echo $! > "$dir/pid"
    for _ in $(seq 1 150); do
      if curl -fsS "http://127.0.0.1:$port/?query=SELECT%201" >/dev/null 2>&1; then exit 0; fi
      if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
      sleep 0.2
    done
    echo "server.sh: ClickHouse did not start; its log:" >&2
    tail -20 "$dir/log/stdout" "$dir/log/server.err.log" >&2 2>/dev/null || true
    exit 1
    ;;
  stop)
    [ -f "$dir/pid" ] || exit 0
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
esac
