#!/usr/bin/env bash
# Kyverno's CEL policies (issue "Bring your own policies, part two", point 8):
#   1. `paved test` over the Kyverno library's ValidatingPolicy and
#      validate.cel suites (../shared/corpus/kyverno-policies), wall time;
#   2. the evaluation rate of the ten pod-security ValidatingPolicies beside
#      the same policies written as ValidatingAdmissionPolicies with
#      bindings, on N Pods (the suites' own Pods, repeated): `paved check`
#      time with each set, minus the time without either (native rules only).
# Prints the figures; release build.
#
#   bench/kyverno.sh [PODS]      default 20000
set -euo pipefail
cd "$(dirname "$0")/.."
pods="${1:-20000}"
corpus=../shared/corpus/kyverno-policies
out=bench/out/kyverno
rm -rf "$out" && mkdir -p "$out"
cargo build --release --quiet
paved=target/release/paved

best_of_3() {
  local best=999
  for _ in 1 2 3; do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    best=$(echo "if ($end - $start < $best) $end - $start else $best" | bc)
  done
  printf '%.3f' "$best"
}

dirs=()
for d in "$corpus"/*-cel "$corpus"/*-vpol; do dirs+=("$d"); done
# Suites whose resources the corpus holds back exit 2: counted all the same.
"$paved" test --format json "${dirs[@]}" >"$out/test.json" 2>/dev/null || true
cases=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["passed"]+d["failed"])' "$out/test.json")
echo "paved test, ${#dirs[@]} categories, $cases cases: $(best_of_3 "$paved" test "${dirs[@]}") s"

python3 - "$corpus/pod-security-vpol" "$out" "$pods" <<'PY'
import json, os, sys
import glob
src, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
vpol, vap, pods = [], [], []
def docs(path):
    text = open(path).read()
    import yaml
    return [d for d in yaml.safe_load_all(text) if d]
for policy in sorted(glob.glob(f"{src}/*/*/*.yaml")):
    for d in docs(policy):
        vpol.append(d)
        spec = {k: v for k, v in d["spec"].items() if k not in ("validationActions", "evaluation", "autogen")}
        name = d["metadata"]["name"]
        vap.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                    "metadata": {"name": name}, "spec": spec})
        vap.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                    "metadata": {"name": name}, "spec": {"policyName": name,
                    "validationActions": d["spec"]["validationActions"]}})
for resource in sorted(glob.glob(f"{src}/*/*/.kyverno-test/resource*.yaml")):
    pods.extend(d for d in docs(resource) if d.get("kind") == "Pod")
json.dump(vpol, open(f"{out}/vpol.json", "w"))
json.dump(vap, open(f"{out}/vap.json", "w"))
with open(f"{out}/pods.json", "w") as f:
    items = []
    for i in range(count):
        p = json.loads(json.dumps(pods[i % len(pods)]))
        p["metadata"]["name"] = f"{p['metadata']['name']}-{i}"
        p["metadata"]["namespace"] = "bench"
        items.append(p)
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
print(f"{len(vpol)} ValidatingPolicies, {len(pods)} distinct Pods repeated to {count}")
PY
for set in vpol vap; do
  python3 -c 'import json,sys; print("\n---\n".join(json.dumps(d) for d in json.load(open(sys.argv[1]))))' "$out/$set.json" >"$out/$set.yaml"
done
base=$(best_of_3 "$paved" check --format json "$out/pods.json")
vpol=$(best_of_3 "$paved" check --format json --policy "$out/vpol.yaml" "$out/pods.json")
vap=$(best_of_3 "$paved" check --format json --policy "$out/vap.yaml" "$out/pods.json")
echo "paved check on $pods Pods: native only $base s; with the ValidatingPolicies $vpol s; with the VAPs $vap s"
python3 - "$pods" "$base" "$vpol" "$vap" <<'PY'
import sys
n, base, vpol, vap = int(sys.argv[1]), *map(float, sys.argv[2:])
for name, t in (("ValidatingPolicy", vpol), ("VAP + binding", vap)):
    cost = max(t - base, 1e-9)
    print(f"  {name}: {cost:.3f} s for the ten policies on {n} Pods = {n / cost:,.0f} Pods/s, {cost / n / 10 * 1e6:.2f} µs per policy and Pod")
PY
