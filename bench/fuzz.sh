#!/usr/bin/env bash
# Fuzzes load-and-check (fuzz/fuzz_targets/load_and_check.rs) for a while.
#
#   bench/fuzz.sh [SECONDS]     default 600
#
# Works on the stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# -Z flags). Seeds come from the examples and the shared corpora. A crash
# leaves its input in fuzz/artifacts/load_and_check/ and makes this exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
seeds=fuzz/corpus/load_and_check
mkdir -p "$seeds"
i=0
while IFS= read -r -d '' f; do
  cp "$f" "$seeds/seed-$i"; i=$((i + 1))
done < <(find examples ../shared/corpus/pod-security/restricted/v1.37 ../shared/corpus/gatekeeper-library \
           ../shared/corpus/k8s-api -type f \( -name '*.yaml' -o -name '*.json' \) -print0 2>/dev/null)
export RUSTC_BOOTSTRAP=1
cd fuzz
cargo fuzz run load_and_check -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536
