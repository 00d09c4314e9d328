#!/usr/bin/env bash
# Fuzzes one target for a while.
#
#   bench/fuzz.sh [TARGET] [SECONDS]     default: load_and_check 600
#
# Targets (fuzz/fuzz_targets/): load_and_check (YAML loading and the engine),
# admission_review (AdmissionReview decoding, verdict and response),
# kubeconfig (kubeconfig parsing and printing, seeded with the golden configurations),
# cel_expression (CEL compiling and evaluation, seeded with the library's CEL),
# image_layer (layer blobs: decompression, tar, whiteouts, analysis),
# rego_mends (the source rewrites regorus gets, seeded with the library's Rego),
# advisories (OSV records, zip dumps and version orderings, seeded with real records),
# mutate_and_edit (the paved road's patch builder and paved fix's text edits,
# seeded with the Pod Security fixtures).
# Works on the stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# -Z flags). Seeds come from the examples and the shared corpora. A crash
# leaves its input in fuzz/artifacts/TARGET/ and makes this exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-load_and_check}
seconds=${2:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
seeds=fuzz/corpus/$target
mkdir -p "$seeds"
i=0
case "$target" in
  admission_review)
    python3 bench/gen_reviews.py --out "$seeds" --count 60 >/dev/null
    sources=(../shared/corpus/k8s-api/HEAD);;
  kubeconfig)
    sources=(crates/paved-cluster/tests/golden/kubeconfig);;
  cel_expression)
    # One seed per single-line expression of the library's K8sNativeValidation code.
    grep -rhoE "expression: .+$" ../shared/corpus/gatekeeper-library --include=template.yaml \
      | sed -E "s/^expression: //; s/^'(.*)'$/\1/" | sort -u \
      | while IFS= read -r e; do printf '%s' "$e" > "$seeds/seed-$i"; i=$((i + 1)); done
    sources=(/nonexistent);;
  rego_mends)
    # One seed per template's Rego (the `rego:` block scalars of the library).
    python3 - "$seeds" <<'PY'
import pathlib, re, sys
out = pathlib.Path(sys.argv[1])
for i, f in enumerate(sorted(pathlib.Path("../shared/corpus/gatekeeper-library").rglob("template.yaml"))):
    m = re.search(r"rego: \|\n((?:\s{8,}.*\n|\s*\n)+)", f.read_text())
    if m:
        (out / f"seed-{i}").write_text("\n".join(l[8:] for l in m.group(1).splitlines()))
PY
    sources=(/nonexistent);;
  advisories)
    # Real records, Go's JSON and PyPA's YAML, a few dozen of each.
    go=(../shared/corpus/osv/golang-vulndb/osv/*.json)
    mapfile -t pypa < <(find ../shared/corpus/osv/pypa-advisory-database/vulns -name '*.yaml' | sort)
    for f in "${go[@]:0:40}" "${pypa[@]:0:40}"; do cp "$f" "$seeds/seed-$i"; i=$((i + 1)); done
    sources=(/nonexistent);;
  image_layer)
    # Small real layers: GNU and PAX tars, gzip and zstd, with links,
    # long names and a setuid file.
    tmp=$(mktemp -d)
    mkdir -p "$tmp/root/bin" "$tmp/root/opt/$(printf 'x%.0s' {1..120})"
    printf '\177ELF' > "$tmp/root/bin/busybox"; chmod 4755 "$tmp/root/bin/busybox"
    ln -s busybox "$tmp/root/bin/sh"; touch "$tmp/root/bin/.wh.bash"
    for format in gnu posix ustar; do
      tar --format=$format -C "$tmp/root" -cf "$seeds/seed-$format.tar" . 2>/dev/null || true
      gzip -c "$seeds/seed-$format.tar" > "$seeds/seed-$format.tar.gz"
      zstd -q -c "$seeds/seed-$format.tar" > "$seeds/seed-$format.tar.zst" 2>/dev/null || true
    done
    rm -rf "$tmp"
    sources=(/nonexistent);;
  *)
    sources=(examples ../shared/corpus/pod-security/restricted/v1.37 ../shared/corpus/gatekeeper-library ../shared/corpus/k8s-api);;
esac
while IFS= read -r -d '' f; do
  case "$target:$f" in
    admission_review:*AdmissionReview*|load_and_check:*|mutate_and_edit:*|kubeconfig:*) cp "$f" "$seeds/seed-$i"; i=$((i + 1));;
  esac
done < <(find "${sources[@]}" -type f \( -name '*.yaml' -o -name '*.json' \) -print0 2>/dev/null)
export RUSTC_BOOTSTRAP=1
cd fuzz
cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536
