#!/usr/bin/env bash
# paved's container image (deploy/image/build.sh): how long the build takes,
# how big the image is, and what the static binary in it costs to run next
# to the glibc release build: `paved check` of 10,000 generated objects,
# wall time (best of 5) and peak RSS, and the idle peak RSS of
# `paved serve --no-cluster`.
#
#   bench/image.sh            builds the image into bench/out/image
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
out=bench/out/image
rm -rf "$out" && mkdir -p "$out"

start=$(date +%s.%N)
deploy/image/build.sh "$out/layout" >"$out/build.log" 2>&1
build_seconds=$(echo "$(date +%s.%N) - $start" | bc)
static=target/x86_64-unknown-linux-musl/dist/paved
cargo build --release --quiet
glibc=target/release/paved

layer=$(python3 - "$out/layout" <<'PY'
import json, sys, os
layout = sys.argv[1]
blob = lambda d: os.path.join(layout, "blobs/sha256", d.split(":")[1])
index = json.load(open(os.path.join(layout, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
print(sum(l["size"] for l in manifest["layers"]))
PY
)
printf 'build (cold or warm cache as found): %.0f s\n' "$build_seconds"
printf 'static binary: %s bytes; compressed image layers: %s bytes\n' "$(stat -c %s "$static")" "$layer"
printf 'release binary (glibc, line tables): %s bytes\n' "$(stat -c %s "$glibc")"

best_of_5() {
  local best=999 rss=0
  for _ in 1 2 3 4 5; do
    /usr/bin/time -f '%e %M' -o "$out/time" "$@" >/dev/null 2>&1 || true
    # The last line: GNU time writes "Command exited with non-zero status" first.
    read -r seconds kib < <(tail -n1 "$out/time")
    best=$(echo "if ($seconds < $best) $seconds else $best" | bc)
    rss=$kib
  done
  echo "$best s, peak RSS $((rss / 1024)) MiB"
}
python3 bench/gen_manifests.py 10000 "$out/objects" >/dev/null
echo "paved check, 10,000 objects, static: $(best_of_5 "$static" check --format json "$out/objects")"
echo "paved check, 10,000 objects, glibc:  $(best_of_5 "$glibc" check --format json "$out/objects")"

serve_rss() {
  mkdir -p "$out/serve"
  serve_paved "$1" "$out/serve" --offline
  sleep 2
  echo "$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status") MiB"
}
echo "paved serve --no-cluster, idle peak RSS: static $(serve_rss "$static"), glibc $(serve_rss "$glibc")"
