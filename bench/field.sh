#!/usr/bin/env bash
# Field-work benchmarks (issue 5): deriving a 2-hour round (7,200 fixes) against Velsen's real
# areas, and one phone pushing a full shift (40 violations, 10 youth observations, one round of
# 2,000 fixes in 4 segments) in one sync push, on SQLite and (with THOR_BENCH_POSTGRES) PostgreSQL.
#   cargo build --release --bin thor -p thor && cargo build --release -p thor-tests --bin fieldbench && bench/field.sh
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-18585}
pid=""
work=$(mktemp -d)
trap '[ -n "$pid" ] && kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
echo "=== derive"
target/${PROFILE:-release}/fieldbench derive 51
run() {
  local label=$1; shift
  echo "=== shift push, $label"
  THOR_LOGIN_PER_ACCOUNT_PER_MINUTE=100000 target/${PROFILE:-release}/thor serve --demo --addr "127.0.0.1:$port" \
    --data-dir "$work/$label" "$@" >"$work/$label.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  target/${PROFILE:-release}/fieldbench shift "http://127.0.0.1:$port" 11 | tail -1
  kill -TERM $pid; wait $pid || true; pid=""
}
run sqlite
if [ -n "${THOR_BENCH_POSTGRES:-}" ]; then
  db="thor_fieldbench_$$"
  psql "$THOR_BENCH_POSTGRES" -qc "CREATE DATABASE $db" >/dev/null
  run postgres --database-url "${THOR_BENCH_POSTGRES%/*}/$db"
  psql "$THOR_BENCH_POSTGRES" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
fi
