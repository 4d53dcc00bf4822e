#!/usr/bin/env bash
# Photo benchmarks (issue 4), on one file each, in one run:
#  1. upload throughput over loopback (tus PATCH, SHA-256 verified, fdatasync'd, moved into the
#     store) against `dd … conv=fdatasync` of the same bytes into the same folder;
#  2. both derivatives (1280 + 320 px) of a 12-megapixel JPEG in one process against libvips
#     (`vipsthumbnail` twice, and pyvips making both in one process when it is installed),
#     with the peak memory of each.
#   cargo build --release --bin thor -p thor && cargo build --release -p thor-tests --bin photobench && bench/photos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v vipsthumbnail >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools >/dev/null; }
command -v hyperfine >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
port=${PORT:-18484}
pid=""
work=${WORK:-$(mktemp -d -p "$PWD/target")}
trap '[ -n "$pid" ] && kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
size_mb=${SIZE_MB:-25}

echo "=== derivatives of a 12-megapixel JPEG (4000x3000, q90, 4:2:0 as phones write it)"
target/${PROFILE:-release}/photobench generate "$work/raw.jpg"
vips copy "$work/raw.jpg" "$work/12mp.jpg[Q=90,subsample-mode=on]"
vips --version
target/${PROFILE:-release}/photobench derive "$work/12mp.jpg" 21
hyperfine -N -w 2 -r 15 \
  "vipsthumbnail $work/12mp.jpg -s 1280 -o $work/v1280.jpg[Q=80,strip]" \
  "vipsthumbnail $work/12mp.jpg -s 320 -o $work/v320.jpg[Q=80,strip]" \
  "target/${PROFILE:-release}/photobench derive $work/12mp.jpg 1" 2>&1 | grep -E "Benchmark|Time"
if python3 -c 'import pyvips' 2>/dev/null; then
  python3 - "$work/12mp.jpg" <<'PY'
import sys, time, statistics, pyvips
f = sys.argv[1]; ts = []
for _ in range(21):
    t = time.perf_counter()
    big = pyvips.Image.thumbnail(f, 1280).copy_memory(); big.write_to_buffer('.jpg[Q=80,strip]')
    big.thumbnail_image(320).write_to_buffer('.jpg[Q=80,strip]')
    ts.append((time.perf_counter() - t) * 1000)
print(f"libvips in one process (pyvips), both sizes: median={statistics.median(ts):.1f} ms")
PY
fi
echo "peak RSS: thor derive $(/usr/bin/time -f %M target/${PROFILE:-release}/photobench derive "$work/12mp.jpg" 1 2>&1 >/dev/null | tail -1) KB; vipsthumbnail 1280 $(/usr/bin/time -f %M vipsthumbnail "$work/12mp.jpg" -s 1280 -o "$work/x.jpg" 2>&1 | tail -1) KB"

echo "=== upload of a ${size_mb} MB file over loopback against dd conv=fdatasync (same folder)"
target/${PROFILE:-release}/photobench generate "$work/upload.jpg" $((size_mb * 1000 * 1000))
THOR_PHOTO_MAX_BYTES=$(( (size_mb + 1) * 1000 * 1000 )) THOR_LOGIN_PER_ACCOUNT_PER_MINUTE=100000 \
  target/${PROFILE:-release}/thor serve --demo --addr "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
for i in 1 2 3 4 5; do
  dd if="$work/upload.jpg" of="$work/data/dd-$i" bs=1M conv=fdatasync 2>&1 | tail -1
  rm -f "$work/data/dd-$i"
done
target/${PROFILE:-release}/photobench upload "http://127.0.0.1:$port" "$work/upload.jpg" 5
echo "server peak RSS: $(( $(awk '/VmHWM/ {print $2}' /proc/$pid/status) / 1024 )) MB"
