#!/usr/bin/env bash
# Benchmark of `paved fix` (issue: the paved road). Prints its figures.
#
#   bench/fix.sh [OBJECTS]      default: 10000
#
# On the generated corpus (bench/gen_manifests.py, the corpus bench/check.sh
# uses): `paved fix --diff` (every edit made and read back, the diff
# printed, nothing written) and `paved fix` in place on a fresh copy each
# run, beside `paved check --format json` on the same files, on one core
# and on every core. Best of 5 runs, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-10000}
out=bench/out
mkdir -p "$out"
cargo build --release -q -p paved --bin paved
paved=$PWD/target/release/paved
dir="$out/corpus-$n"
[ -d "$dir" ] || python3 bench/gen_manifests.py "$n" "$dir"
work="$out/fix-work"

fresh() { rm -rf "$work" && cp -r "$dir" "$work"; }
row() { # label seconds rss_kib check_seconds
  awk -v l="$1" -v n="$n" -v s="$2" -v r="$3" -v c="$4" 'BEGIN{
    printf "%-36s %8.3f s %10.0f obj/s %8.1f MiB %6.2fx check\n", l, s, n / s, r / 1024, s / c }'
}

fresh
files=$(find "$dir" -name '*.yaml' | wc -l)
echo "== $n objects, $files files ($(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
for cores in 1 all; do
  if [ "$cores" = 1 ]; then run=(env RAYON_NUM_THREADS=1 taskset -c 0); else run=(env); fi
  read -r c cr < <(best_of 5 : "${run[@]}" "$paved" check --format json "$work")
  row "paved check --format json, $cores core(s)" "$c" "$cr" "$c"
  read -r d dr < <(best_of 5 fresh "${run[@]}" "$paved" fix --diff "$work")
  row "paved fix --diff, $cores core(s)" "$d" "$dr" "$c"
  read -r f fr < <(best_of 5 fresh "${run[@]}" "$paved" fix "$work")
  row "paved fix (in place), $cores core(s)" "$f" "$fr" "$c"
done
tail -n 1 "$out/stderr"
# What it wrote reads back clean: a second run changes nothing.
"$paved" fix --diff "$work" >/dev/null 2>&1 && echo "a second paved fix --diff: nothing left to set" \
  || echo "a second paved fix --diff still finds something to set"
rm -rf "$work"
