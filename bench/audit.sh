#!/usr/bin/env bash
# Benchmark of `paved audit` (issue: paved audit and paved images). Prints its figures.
#
#   bench/audit.sh [OBJECTS]       default: 100000
#
# Starts the fixture API server (crates/paved-cluster, feature `fixture`) with a
# generated cluster of OBJECTS objects (namespaces choosing profiles, Deployments
# with their ReplicaSets and Pods, Services, ConfigMaps; some locked, some
# exempted), then runs `paved audit --format json` against it through a
# kubeconfig, pinned to one CPU (the fixture gets the other). Reports wall
# time (best of 5), objects/s and peak RSS; the same for `paved images --cluster`.
# Target: at least 20,000 objects/s and at most 200 MiB peak RSS at 100,000 objects.
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-100000}
out=bench/out
mkdir -p "$out"
cargo build --release -q -p paved --bin paved
cargo build --release -q -p paved-cluster --features fixture --example fixture-apiserver
paved=target/release/paved
kubeconfig="$out/fixture.kubeconfig"
rm -f "$kubeconfig"
taskset -c 1 target/release/examples/fixture-apiserver "$objects" "$kubeconfig" 2>"$out/fixture.log" &
fixture=$!
trap 'kill $fixture 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -s "$kubeconfig" ] && break; sleep 0.1; done
[ -s "$kubeconfig" ] || { echo "the fixture API server did not start" >&2; cat "$out/fixture.log" >&2; exit 1; }

measure() { # label command...: best of 5 wall seconds, max RSS
  local label=$1; shift
  local best="" rss=0
  for _ in 1 2 3 4 5; do
    /usr/bin/time -f "%e %M" -o "$out/time" taskset -c 0 "$@" >"$out/audit.json" 2>"$out/stderr" || true
    read -r t m < <(tail -n 1 "$out/time")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  local listed
  listed=$(python3 -c "import json,sys; d=json.load(open('$out/audit.json')); print(d['report']['objects'] if 'report' in d else sum(len(i['usedBy']) for i in d['images']))")
  awk -v l="$label" -v n="$listed" -v s="$best" -v r="$rss" 'BEGIN{
    printf "%-28s %8d objects  %6.2f s  %9.0f objects/s  peak RSS %6.1f MiB\n", l, n, s, (s > 0 ? n / s : 0), r / 1024 }'
}

echo "paved audit against a fixture API server ($(nproc) CPUs, $(uname -m)); audit on CPU 0, fixture on CPU 1"
measure "audit (page 500)" $paved audit --kubeconfig "$kubeconfig" --format json
measure "audit (page 100)" $paved audit --kubeconfig "$kubeconfig" --format json --page-size 100
measure "images --cluster (uses)" $paved images --cluster --kubeconfig "$kubeconfig" --format json
