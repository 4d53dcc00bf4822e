#!/usr/bin/env bash
# The briefing of a busy day (issue 6): 5,000 violations, 500 rounds, 300,000 track fixes.
# Times the JSON briefing and the HTML page, and weighs the page, on SQLite and (with
# THOR_BENCH_POSTGRES) PostgreSQL.
#   cargo build --release -p thor-tests --bin briefingbench && bench/briefing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "=== SQLite"
target/${PROFILE:-release}/briefingbench
if [ -n "${THOR_BENCH_POSTGRES:-}" ]; then
  db="thor_briefingbench_$$"
  psql "$THOR_BENCH_POSTGRES" -qc "CREATE DATABASE $db" >/dev/null
  echo "=== PostgreSQL"
  target/${PROFILE:-release}/briefingbench "${THOR_BENCH_POSTGRES%/*}/$db" || true
  psql "$THOR_BENCH_POSTGRES" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
fi
