#!/usr/bin/env bash
# Regenerates backend/symbol-order.txt, the link order of the server's code (see backend/build.rs).
#
# Runs the release server under valgrind's callgrind on an existing demo database (start, the
# requests of an ordinary day: login, lists, a create, an edit, sync pull and push, the
# briefing, reference data, probes) and lists every function of the binary that ran. The
# linker then puts those functions next to each other, so the pages of code an idle server has
# touched hold little else. Rerun after large changes to the request paths (stale names are
# ignored by the linker; new functions just land in the default order):
#   cargo build --release --bin thor && bench/symbol-order.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/thor
[ -x "$bin" ] || { echo "build first: cargo build --release --bin thor"; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind"; exit 1; }
port=${PORT:-18777}
base="http://127.0.0.1:$port"
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT

# First start: creates the database and the demo history (not profiled).
"$bin" serve --demo --addr "127.0.0.1:$port" --data-dir "$work/d" >"$work/first.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q "demo history loaded" "$work/first.log" && break; sleep 0.1; done
kill -TERM $pid; wait $pid || true

# Profiled: a start on the existing database and a day's requests.
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.out" \
  "$bin" serve --demo --addr "127.0.0.1:$port" --data-dir "$work/d" >"$work/cg.log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$base/readyz" >/dev/null || { tail -20 "$work/cg.log"; exit 1; }
sleep 5 # the briefing warm-up after start

login() {
  curl -fs -X POST -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"demo\",\"device_id\":\"order-$1\"}" "$base/api/v1/auth/login" |
    python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])'
}
get() { curl -fs -o /dev/null -H "authorization: Bearer $1" "$base$2" || echo "GET $2 failed"; }
send() {
  curl -fs -o "$work/last.json" -X "$1" -H "authorization: Bearer $2" -H 'content-type: application/json' \
    -d "$4" "$base$3" || echo "$1 $3 failed"
}
day=$(TZ=Europe/Amsterdam date +%F)
now_ms=$(date +%s%3N)
observed=$(date -u -d '-1 min' +%FT%TZ)
lead=$(login teamleider)
officer=$(login handhaver)
curl -fs -o /dev/null "$base/healthz"
curl -fs -o /dev/null "$base/metrics"
get "$lead" "/api/v1/auth/me"
get "$lead" "/api/v1/violations?date=$day&limit=50"
get "$lead" "/api/v1/briefing?date=$day"
get "$lead" "/api/v1/conflicts?status=open"
get "$officer" "/api/v1/reference/areas"
get "$officer" "/api/v1/reference/feitcodes"
get "$officer" "/api/v1/reference/categories"
get "$officer" "/api/v1/areas/lookup?lat=52.4595&lon=4.6210"
id=$(cat /proc/sys/kernel/random/uuid)
send POST "$officer" /api/v1/violations "{\"id\":\"$id\",\"category\":\"afval\",\"feitcode\":\"H004\",\"observed_at\":\"$observed\",\"location\":{\"lat\":52.4599,\"lon\":4.6218,\"accuracy_m\":6.5,\"source\":\"gps\"},\"description\":\"bijgeplaatste zakken\",\"outcome\":\"warning\"}"
get "$officer" "/api/v1/violations/$id"
send PATCH "$officer" "/api/v1/violations/$id" '{"description":"bijgeplaatste zakken naast de container"}'
curl -fs -o "$work/pull.json" -H "authorization: Bearer $officer" "$base/api/v1/sync/pull?last_pulled_at=0&limit=1000"
cursor=$(python3 -c 'import sys,json;print(json.load(open(sys.argv[1]))["timestamp"])' "$work/pull.json")
send POST "$officer" "/api/v1/sync/push?last_pulled_at=$cursor" "{\"changes\":{\"violations\":{\"created\":[],\"updated\":[{\"id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"_status\":\"created\",\"_changed\":\"\",\"category\":\"afval\",\"feitcode\":\"H004\",\"observed_at\":$now_ms,\"lat\":52.4595,\"lon\":4.621,\"accuracy_m\":8.0,\"location_source\":\"gps\",\"description\":\"Huisvuilzakken\",\"outcome\":\"warning\",\"status\":\"submitted\",\"officer_ids\":\"[]\"}],\"deleted\":[]}}}"
get "$officer" "/api/v1/sync/pull?last_pulled_at=$cursor"
sleep 25 # quiet: the idle release runs (connections closed, memory returned)

callgrind_control -d $pid >/dev/null
for _ in $(seq 1 100); do ls "$work"/cg.out.* >/dev/null 2>&1 && break; sleep 0.2; done
kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
python3 - "$bin" "$work"/cg.out.* >backend/symbol-order.txt <<'EOF'
import re, subprocess, sys
ran = set()
for path in sys.argv[2:]:
    for line in open(path, errors="replace"):
        m = re.match(r"c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
        if m:
            ran.add(m.group(1))
nm = subprocess.run(["nm", "--defined-only", sys.argv[1]], capture_output=True, text=True, check=True)
text = {p[2] for p in (l.split(" ", 2) for l in nm.stdout.splitlines()) if len(p) == 3 and p[1] in "tTwW"}
print("\n".join(sorted(ran & text)))
EOF
echo "backend/symbol-order.txt: $(wc -l <backend/symbol-order.txt) functions"
