#!/usr/bin/env bash
# Load benchmark of the foundation (issue 2): cold start, idle RSS, and wrk with 32 connections
# against GET /api/v1/violations?date=… (a page of 50 of the demo day) and POST /api/v1/violations,
# on SQLite and, when THOR_BENCH_POSTGRES names a server, PostgreSQL.
#   cargo build --release --bin thor && bench/load.sh
# Needs wrk (apt-get install wrk). Sends traffic to 127.0.0.1 only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/${PROFILE:-release}/thor
[ -x "$bin" ] || { echo "build first: cargo build --release --bin thor"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
# The idle figures depend on the link order (backend/build.rs): say how much of it still holds.
if [ -f backend/symbol-order.txt ] && command -v nm >/dev/null; then
  found=$(nm --defined-only "$bin" | awk '{print $3}' | sort | comm -12 - <(sort backend/symbol-order.txt) | wc -l)
  echo "link order: $found of $(wc -l <backend/symbol-order.txt) listed functions are in $bin (far fewer: rerun bench/symbol-order.sh)"
fi
dur=${DURATION:-10s}
port=${PORT:-18181}
date=$(TZ=Europe/Amsterdam date +%F)
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT

wait_ready() {
  for _ in $(seq 1 500); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0; sleep 0.01; done
  echo "server did not become ready"; exit 1
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
ms_now() { date +%s%3N; }

run() {
  local label=$1; shift
  echo "=== $label"
  # First start: migrations, reference data, demo day.
  "$bin" serve --demo --addr "127.0.0.1:$port" --data-dir "$work/$label" "$@" >"$work/$label.log" 2>&1 &
  pid=$!; wait_ready
  # --demo loads 28 days of history in the background after ready; let it finish, so the second
  # start below measures an idle server on a complete database.
  for _ in $(seq 1 600); do grep -q "demo history loaded" "$work/$label.log" && break; sleep 0.1; done
  kill -TERM $pid; wait $pid || true
  # Cold start on the existing database: exec to /readyz answering.
  local t0; t0=$(ms_now)
  "$bin" serve --demo --addr "127.0.0.1:$port" --data-dir "$work/$label" "$@" >>"$work/$label.log" 2>&1 &
  pid=$!; wait_ready
  echo "start to ready on an existing database: $(( $(ms_now) - t0 )) ms"
  sleep 2
  echo "idle RSS 2 s after start: $(( $(rss_kb $pid) / 1024 )) MB"
  # Pooled SQLite connections unused for 30 s are closed (with their caches) at the pool's next
  # check, and freed memory goes back to the system every 10 s: measure again after that.
  sleep "${IDLE_WAIT:-65}"
  echo "idle RSS $(( ${IDLE_WAIT:-65} + 2 )) s after start: $(( $(rss_kb $pid) / 1024 )) MB"
  export THOR_TOKEN THOR_DATE=$date
  THOR_TOKEN=$(curl -s -X POST -H 'content-type: application/json' \
    -d '{"username":"teamleider","password":"demo","device_id":"bench"}' \
    "http://127.0.0.1:$port/api/v1/auth/login" | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
  echo "--- GET /api/v1/violations?date=$date&limit=50 (wrk -t2 -c32 -d$dur)"
  wrk -t2 -c32 -d"$dur" --latency -s bench/get_list.lua "http://127.0.0.1:$port" | grep -E "Requests/sec|99%|Non-2xx|Socket errors|Latency  "
  THOR_TOKEN=$(curl -s -X POST -H 'content-type: application/json' \
    -d '{"username":"handhaver","password":"demo","device_id":"bench"}' \
    "http://127.0.0.1:$port/api/v1/auth/login" | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
  echo "--- POST /api/v1/violations (wrk -t2 -c32 -d$dur, durable commits)"
  wrk -t2 -c32 -d"$dur" --latency -s bench/post_violation.lua "http://127.0.0.1:$port" | grep -E "Requests/sec|99%|Non-2xx|Socket errors|Latency  "
  sleep 2
  echo "RSS after load: $(( $(rss_kb $pid) / 1024 )) MB"
  sleep "${IDLE_WAIT:-65}"
  echo "RSS $(( ${IDLE_WAIT:-65} + 2 )) s after load: $(( $(rss_kb $pid) / 1024 )) MB"
  kill -TERM $pid; wait $pid || true
}

run sqlite
if [ -n "${THOR_BENCH_POSTGRES:-}" ]; then
  db="thor_bench_$$"
  psql "$THOR_BENCH_POSTGRES" -qc "CREATE DATABASE $db" >/dev/null
  run postgres --database-url "${THOR_BENCH_POSTGRES%/*}/$db"
  psql "$THOR_BENCH_POSTGRES" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
fi
