#!/usr/bin/env bash
# Benchmark of `paved check` (issue: speed and memory). Prints its figures.
#
#   bench/check.sh [OBJECTS...]      default: 10000, and 40000 to show RSS stays flat
#
# For each corpus size: wall time (best of 10), objects/s and peak RSS of
# `paved check` on one core (RAYON_NUM_THREADS=1, taskset to CPU 0) and on
# every core, in json and text formats, next to the parse-only floor (same
# files, same loader, one thread, no evaluation).
#
# Wall time on a shared 2-core machine varies by tens of percent between
# runs, so the script also counts instructions with callgrind (when valgrind
# is installed) on a 2,000-object corpus: those counts repeat exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
sizes=("${@:-10000 40000}")
read -r -a sizes <<<"${sizes[*]}"
out=bench/out
mkdir -p "$out"
cargo build --release -q -p paved --bin paved
cargo build --release -q -p paved-yaml --example parse_only
paved=target/release/paved
parse=target/release/examples/parse_only

# best of N runs, "seconds max_rss_kib" (bench/lib.sh)
measure() { local runs=$1; shift; best_of "$runs" : "$@"; }

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
  read -r floor floor_rss < <(measure 10 taskset -c 0 "$parse" "$dir")
  row "parse only (floor, 1 core)" "$n" "$floor" "$floor_rss" "$floor"
  for fmt in json text; do
    read -r t r < <(measure 10 env RAYON_NUM_THREADS=1 taskset -c 0 "$paved" check --format "$fmt" "$dir")
    row "paved check --format $fmt, 1 core" "$n" "$t" "$r" "$floor"
  done
  read -r t r < <(measure 10 "$paved" check --format json "$dir")
  row "paved check --format json, all cores" "$n" "$t" "$r" "$floor"
done

if command -v valgrind >/dev/null; then
  small="$out/corpus-2000"
  [ -d "$small" ] || python3 bench/gen_manifests.py 2000 "$small"
  # paved exits 1 on this corpus (it has violations): that is not a failure here
  count() { { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null || true; } | awk '/Collected/ {print $4}'; }
  floor_ir=$(count "$parse" "$small")
  echo "== instructions per object (callgrind, 2000 objects, one thread)"
  awk -v f="$floor_ir" 'BEGIN{printf "%-34s %10.0f instr/obj  1.00x floor\n", "parse only (floor)", f / 2000}'
  for fmt in json text; do
    ir=$(RAYON_NUM_THREADS=1 count "$paved" check --format "$fmt" "$small")
    awk -v l="paved check --format $fmt" -v i="$ir" -v f="$floor_ir" \
      'BEGIN{printf "%-34s %10.0f instr/obj %5.2fx floor\n", l, i / 2000, i / f}'
  done
fi
