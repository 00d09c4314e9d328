#!/usr/bin/env bash
# Benchmark of layer analysis (issue "What an image carries", point 7).
# Prints its figures.
#
#   bench/layers.sh [MB]     default: 400 (uncompressed size of the big layer)
#
# Layers are made from this machine's own /usr (real binaries, libraries,
# text), gzip -6 as docker writes them, plus a zstd copy and a layer of one
# incompressible file MB large. For each: the floor, `gzip -dc | tar -t`
# (or `zstd -dc | tar -t`), against paved's analysis of the same blob
# (decompress, digest, walk the tar, apply, detect), on one CPU; then the
# peak RSS for a small and a big layer, which should be about the same.
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-400}
out=bench/out/layers
mkdir -p "$out"
cargo build --release -q -p paved-image --example bench_layers
bench=target/release/examples/bench_layers

if [ ! -s "$out/usr.tar.gz" ]; then
  # About MB of real files: whole directories of /usr until the size is reached.
  { find /usr/share /usr/bin /usr/lib -xdev \( -type f -o -type l \) -size -64M -printf '%s %p\n' 2>/dev/null || true; } \
    | awk -v max=$((mb * 1000000)) '{ if (sum + $1 > max) exit; sum += $1; sub(/^[0-9]+ \//, ""); print }' > "$out/files"
  tar -C / --no-recursion -cf "$out/usr.tar" -T "$out/files"
  gzip -6 -c "$out/usr.tar" > "$out/usr.tar.gz"
  zstd -q -3 -c "$out/usr.tar" > "$out/usr.tar.zst"
  mkdir -p "$out/big" && head -c $((mb * 1000000)) /dev/urandom > "$out/big/blob"
  tar -C "$out/big" -cf - blob | gzip -1 > "$out/random.tar.gz"
  tar -C / --no-recursion -cf - usr/bin/bash | gzip -6 > "$out/small.tar.gz"
  rm -f "$out/usr.tar"
fi

secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
for layer in usr.tar.gz usr.tar.zst random.tar.gz; do
  blob="$out/$layer"
  case "$layer" in *.zst) dec="zstd -dc";; *) dec="gzip -dc";; esac
  floor=$(secs taskset -c 0 sh -c "$dec '$blob' | tar -t > /dev/null")
  # Best of three for both, one CPU each.
  best=""
  for _ in 1 2 3; do
    s=$(secs taskset -c 0 "$bench" "$blob")
    best=$(python3 -c "print(min(float('$s'), float('${best:-1e9}')))")
  done
  floor_best="$floor"
  for _ in 1 2; do
    f=$(secs taskset -c 0 sh -c "$dec '$blob' | tar -t > /dev/null")
    floor_best=$(python3 -c "print(min(float('$f'), float('$floor_best')))")
  done
  taskset -c 0 "$bench" "$blob" | sed 's/^/  /'
  python3 -c "print(f'  {\"$layer\"}: floor ({\"$dec\"} | tar -t) {float(\"$floor_best\"):.2f} s, paved {float(\"$best\"):.2f} s, ratio {float(\"$best\")/float(\"$floor_best\"):.2f}x')"
done
echo "== peak RSS, small then big layer"
"$bench" "$out/small.tar.gz" | sed 's/^/  /'
"$bench" "$out/random.tar.gz" | sed 's/^/  /'
"$bench" "$out/usr.tar.gz" | sed 's/^/  /'
