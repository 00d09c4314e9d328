#!/usr/bin/env bash
# Benchmark of foreign policies (issue "Bring your own policies", point 7).
# Prints its figures.
#
#   bench/policies.sh [OBJECTS] [SECONDS]     defaults: 10000 objects, 5 s
#
# 1. Every constraint of the public gatekeeper-library suites, templates
#    compiled once, over the generated corpus of OBJECTS manifests
#    (bench/gen_manifests.py, as bench/check.sh uses): evaluations per
#    second with Rego (regorus's virtual machine), with CEL for the templates
#    that carry it, and paved's native rules for the checks both have, then
#    the peak RSS of the whole run. One pass, on CPU 0.
# 2. The same constraints over the suites' own objects for SECONDS per line,
#    and one rule three ways (native, CEL, Rego) on the same Pods.
# 3. With valgrind installed, instructions per evaluation over one pass of
#    the suites' objects (repeatable where wall time is not).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
seconds=${2:-5}
out=bench/out
dir="$out/corpus-$n"
mkdir -p "$out"
[ -d "$dir" ] || python3 bench/gen_manifests.py "$n" "$dir"
cargo build --release -q -p paved-gatekeeper --example bench_policies
bench=target/release/examples/bench_policies

echo "== corpus: $dir"
taskset -c 0 "$bench" 0 corpus "$dir"
echo "== the library's own objects, ${seconds} s per line"
taskset -c 0 "$bench" "$seconds" library
taskset -c 0 "$bench" "$seconds" same-rule

if command -v valgrind >/dev/null; then
  echo "== instructions per evaluation (callgrind, one pass of the library's objects)"
  for part in library cel-only; do
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.policies" \
      --toggle-collect='paved_gatekeeper::suite::violations_of*' "$bench" 0 "$part" >"$out/policies.stdout" 2>"$out/policies.stderr"
    total=$(grep -o 'Collected : [0-9]*' "$out/policies.stderr" | awk '{print $3}')
    grep -E '^(Rego|CEL)' "$out/policies.stdout" | sed 's/^/  /'
    echo "  $part: $total instructions in all"
  done
fi
