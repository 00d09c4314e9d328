#!/usr/bin/env bash
# Benchmark of `paved check` (issue: speed and memory). Prints its figures.
#
#   bench/check.sh [OBJECTS...]      default: 10000, and 40000 to show RSS stays flat
#
# For each corpus size: wall time, objects/s and peak RSS of `paved check` on
# one core (RAYON_NUM_THREADS=1, taskset to CPU 0) and on every core, in json
# and text formats, next to the parse-only floor (same files, same loader,
# one thread, no evaluation).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-10000 40000}")
read -r -a sizes <<<"${sizes[*]}"
out=bench/out
mkdir -p "$out"
cargo build --release -q -p paved --bin paved
cargo build --release -q -p paved-yaml --example parse_only
paved=target/release/paved
parse=target/release/examples/parse_only

# best of N runs: prints "seconds max_rss_kib"
measure() {
  local runs=$1; shift
  local best="" rss=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$out/time" "$@" >/dev/null 2>"$out/stderr" || true
    read -r t m < <(tail -n 1 "$out/time")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}

row() { # label objects seconds rss_kib floor_seconds
  awk -v l="$1" -v n="$2" -v s="$3" -v r="$4" -v f="$5" 'BEGIN{
    ops = (s > 0) ? n / s : 0
    printf "%-34s %8.3f s %10.0f obj/s %8.1f MiB %6.2fx floor\n", l, s, ops, r / 1024, (f > 0) ? s / f : 0 }'
}

for n in "${sizes[@]}"; do
  dir="$out/corpus-$n"
  [ -d "$dir" ] || python3 bench/gen_manifests.py "$n" "$dir"
  mb=$(du -sm "$dir" | cut -f1)
  files=$(find "$dir" -name '*.yaml' | wc -l)
  echo "== $n objects, $files files, ${mb} MB ($(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  read -r floor floor_rss < <(measure 3 taskset -c 0 "$parse" "$dir")
  row "parse only (floor, 1 core)" "$n" "$floor" "$floor_rss" "$floor"
  for fmt in json text; do
    read -r t r < <(measure 3 env RAYON_NUM_THREADS=1 taskset -c 0 "$paved" check --format "$fmt" "$dir")
    row "paved check --format $fmt, 1 core" "$n" "$t" "$r" "$floor"
  done
  read -r t r < <(measure 3 "$paved" check --format json "$dir")
  row "paved check --format json, all cores" "$n" "$t" "$r" "$floor"
done
