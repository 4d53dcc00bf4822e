#!/usr/bin/env bash
# Export benchmark (issue 6): does a year's CSV export stream with flat memory?
# Loads the demo (today and 28 days of history, ~4,000 reports), copies those 29 days back over a
# year with new ids (sqlite3; the write paths refuse reports older than 31 days), then exports a
# month, a quarter and a year of CSV and GeoJSON as the team lead, each from a freshly started
# server, and prints the bytes, the time and the server's peak RSS (VmHWM) of each export.
#   cargo build --release --bin thor -p thor && bench/export.sh
# COPIES=n puts n copies of each report per day (default 1; 4 gives ~230,000 reports a year).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v sqlite3 >/dev/null || { echo "bench/export.sh needs sqlite3 (apt-get install sqlite3)" >&2; exit 1; }
port=${PORT:-18384}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
start() {
  target/${PROFILE:-release}/thor serve --demo --addr "127.0.0.1:$port" --data-dir "$work" >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
}
stop() { kill -TERM $pid; wait $pid || true; }

start; stop
cols=$(sqlite3 "$work/thor.db" "select group_concat('\"' || name || '\"', ',') from pragma_table_info('violation')")
select=$(sqlite3 "$work/thor.db" "select group_concat(case name
  when 'id' then 'randomblob(16)'
  when 'observed_at' then 'strftime(''%Y-%m-%dT%H:%M:%S+00:00'', observed_at, :shift)'
  when 'fix_time' then 'strftime(''%Y-%m-%dT%H:%M:%S+00:00'', fix_time, :shift)'
  else '\"' || name || '\"' end, ',') from pragma_table_info('violation')")
{
  echo "BEGIN;"
  echo "CREATE TEMP TABLE src AS SELECT * FROM violation;"
  for k in $(seq 1 13); do
    for c in $(seq 1 "${COPIES:-1}"); do
      if [ "$k" = 0 ] && [ "$c" = 1 ]; then continue; fi
      echo "INSERT INTO violation ($cols) SELECT ${select//:shift/\'-$((k * 29)) days\'} FROM src;"
    done
  done
  for c in $(seq 2 "${COPIES:-1}"); do
    echo "INSERT INTO violation ($cols) SELECT ${select//:shift/\'+0 days\'} FROM src;"
  done
  echo "COMMIT;"
} | sqlite3 "$work/thor.db"
echo "reports in the database: $(sqlite3 "$work/thor.db" 'select count(*) from violation')"

today=$(TZ=Europe/Amsterdam date +%F)
printf '%-8s %-8s %10s %12s %8s %10s\n' period format reports bytes seconds peak_RSS
for days in 30 91 365; do
  from=$(TZ=Europe/Amsterdam date -d "$today - $((days - 1)) days" +%F)
  for fmt in csv geojson; do
    start
    token=$(curl -fs "$base/api/v1/auth/login" -H 'content-type: application/json' \
      -d '{"username":"teamleider","password":"demo","device_id":"export-bench"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
    rss_before=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    out=$(curl -fs -o "$work/export.$fmt" -w '%{size_download} %{time_total}' -H "authorization: Bearer $token" \
      "$base/api/v1/exports/violations.$fmt?from=$from&to=$today")
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status); anon=$(awk '/RssAnon/ {print $2}' /proc/$pid/status); file=$(awk '/RssFile/ {print $2}' /proc/$pid/status)
    if [ "$fmt" = csv ]; then n=$(( $(wc -l <"$work/export.csv") - 1 )); else n=$(grep -o '"type":"Feature"' "$work/export.geojson" | wc -l); fi
    printf '%-8s %-8s %10s %12s %8s %7s MB  (RSS before: %s MB; after: anon %s MB, file-backed %s MB)\n' "${days}d" "$fmt" "$n" ${out%% *} ${out##* } $((hwm / 1024)) $((rss_before / 1024)) $((anon / 1024)) $((file / 1024))
    stop
  done
done
