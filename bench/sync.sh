#!/usr/bin/env bash
# Sync benchmark (issue 3): 50 devices each push 100 reports at once, 5 rounds; then a fresh
# device pulls the team's 14 days. SQLite, and PostgreSQL when THOR_BENCH_POSTGRES is set.
#   cargo build --release --bin thor -p thor && cargo build --release -p thor-tests --bin syncbench && bench/sync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-18383}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
run() {
  local label=$1; shift
  echo "=== $label"
  THOR_LOGIN_PER_ACCOUNT_PER_MINUTE=100000 THOR_LOGIN_PER_ADDRESS_PER_MINUTE=100000 \
    target/${PROFILE:-release}/thor serve --demo --addr "127.0.0.1:$port" --data-dir "$work/$label" "$@" >"$work/$label.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  # --demo loads 28 days of history in the background after ready (~3 s); the pushes are measured
  # against a server that has finished it, not one still importing (as load.sh does).
  for _ in $(seq 1 600); do grep -q "demo history loaded" "$work/$label.log" && break; sleep 0.1; done
  target/${PROFILE:-release}/syncbench "http://127.0.0.1:$port" "${DEVICES:-50}" "${RECORDS:-100}" "${ROUNDS:-5}"
  echo "server RSS after the pull: $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 )) MB (peak $(( $(awk '/VmHWM/ {print $2}' /proc/$pid/status) / 1024 )) MB)"
  kill -TERM $pid; wait $pid || true
}
run sqlite
if [ -n "${THOR_BENCH_POSTGRES:-}" ]; then
  db="thor_syncbench_$$"
  psql "$THOR_BENCH_POSTGRES" -qc "CREATE DATABASE $db" >/dev/null
  run postgres --database-url "${THOR_BENCH_POSTGRES%/*}/$db"
  psql "$THOR_BENCH_POSTGRES" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
fi
