#!/usr/bin/env bash
# Is judging linear in the object's size? One privileged Pod of N containers
# (every container a Deny finding, the worst case), N from 1 to 10,000:
#   check: `paved check` on the Pod (text and json), wall time and peak RSS
#   serve: `paved serve --no-cluster`, the Pod's CREATE review and an UPDATE
#          review (which judges the old object too) over HTTPS; the server's
#          answer time (best of 5) and its peak RSS after all sizes
# Prints a table; per-container time should stay flat as N grows.
#
#   bench/containers.sh [SIZES...]     default 1 10 100 1000 10000
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 10 100 1000 10000)
out=bench/out/containers
rm -rf "$out" && mkdir -p "$out"
cargo build --release --quiet
paved=target/release/paved

python3 - "$out" "${sizes[@]}" <<'PY'
import json, sys
out, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]]
for n in sizes:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "namespace": "shop"},
           "spec": {"containers": [{"name": f"c{i}", "image": "registry.example.com/app:1.0",
                                    "securityContext": {"privileged": True}} for i in range(n)]}}
    json.dump(pod, open(f"{out}/pod-{n}.json", "w"))
    request = {"uid": f"u-{n}", "kind": {"group": "", "version": "v1", "kind": "Pod"},
               "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "big",
               "namespace": "shop", "operation": "CREATE",
               "userInfo": {"username": "dev", "groups": ["system:authenticated"]},
               "object": pod, "dryRun": True}
    json.dump({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request},
              open(f"{out}/create-{n}.json", "w"))
    request = dict(request, operation="UPDATE", oldObject=pod)
    json.dump({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request},
              open(f"{out}/update-{n}.json", "w"))
PY

serve_paved "$paved" "$out"

printf '%-10s %14s %12s %14s %12s %14s %14s %12s\n' containers "check text s" "text MiB" "check json s" "json MiB" \
  "serve CREATE ms" "serve UPDATE ms" "us/container"
for n in "${sizes[@]}"; do
  row=()
  for format in text json; do
    # `paved check` exits 1 on Deny findings: that is the expected outcome here.
    /usr/bin/time -f "%e %M" -o "$out/time" $paved check --format "$format" "$out/pod-$n.json" >/dev/null || true
    read -r secs kib < <(tail -1 "$out/time")
    row+=("$secs" "$((kib / 1024))")
  done
  best() {
    python3 - "$port" "$1" <<'PY'
import json, ssl, sys, time, http.client
port, path = int(sys.argv[1]), sys.argv[2]
body = open(path, "rb").read()
context = ssl._create_unverified_context()
best = None
for _ in range(5):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    conn.connect()
    started = time.perf_counter()
    conn.request("POST", "/validate/policies", body, {"Content-Type": "application/json"})
    answer = json.loads(conn.getresponse().read())
    elapsed = time.perf_counter() - started
    # CREATE is denied; UPDATE keeps the old object's denials as warnings.
    message = answer["response"].get("status", {}).get("message", "")
    assert "without judging" not in message, message
    assert answer["response"]["allowed"] is ("update" in path), answer["response"]
    best = elapsed if best is None else min(best, elapsed)
print(f"{best * 1000:.1f}")
PY
  }
  create=$(best "$out/create-$n.json")
  update=$(best "$out/update-$n.json")
  per=$(python3 -c "print(f'{$update * 1000 / $n:.1f}')")
  printf '%-10s %14s %12s %14s %12s %14s %14s %12s\n' "$n" "${row[0]}" "${row[1]}" "${row[2]}" "${row[3]}" \
    "$create" "$update" "$per"
done
echo "serve peak RSS after every size: $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status") MiB"
