#!/usr/bin/env bash
# Load on `paved serve` over TLS on loopback, as the API server sends it:
# HTTP/2, a few connections with many streams each, realistic Pod and
# Deployment CREATE reviews (a mix of allowed, warned and denied, checked
# first). The same reviews on /mutate (the paved road's defaults, a JSON
# Patch for the Deployments without them; the replicaset controller's Pods
# follow their template), on the server's always-allow endpoint (/allow),
# the floor, and both routes again with the Pods made by a person, each of
# which without the defaults gets a patch. Rounds alternate between the
# routes; medians are reported, because this machine's wall-clock figures
# swing between runs.
#
#   bench/serve.sh [SECONDS] [ROUNDS] [CONNECTIONS] [STREAMS]    default 8 5 4 4
#
# Needs oha (cargo install oha --locked) and openssl. The load generator
# shares the machine's two cores with the server.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-8}
rounds=${2:-5}
connections=${3:-4}
streams=${4:-4}
command -v oha >/dev/null || cargo install oha --locked
out=bench/out/serve
rm -rf "$out" && mkdir -p "$out"
cargo build --release --quiet
python3 bench/gen_reviews.py --out "$out/reviews" --count 400 >/dev/null
for f in "$out"/reviews/*.json; do cat "$f"; echo; done >"$out/reviews.jsonl"
# The same, with the Pods made by a person (no owner): each Pod without the
# defaults gets a patch, the path /mutate takes for bare pods.
python3 - "$out/reviews.jsonl" >"$out/bare.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    review = json.loads(line)
    request = review["request"]
    if request["kind"]["kind"] == "Pod":
        request["object"]["metadata"].pop("ownerReferences", None)
        request["userInfo"]["username"] = "dev@example.com"
    print(json.dumps(review, separators=(",", ":")))
PY
serve_paved target/release/paved "$out" --floor-endpoint
echo "verdicts of the $(ls "$out/reviews" | wc -l) reviews: $(python3 bench/check_verdicts.py "$port" "$out/reviews")"
echo "oha: HTTP/2 over TLS, $connections connections x $streams streams, ${seconds}s a run, $rounds rounds"

cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
for round in $(seq "$rounds"); do
  for path in validate mutate allow validate-bare mutate-bare; do
    before=$(cpu)
    reviews=$out/reviews.jsonl
    [[ $path == *-bare ]] && reviews=$out/bare.jsonl
    oha --no-tui --insecure --http2 -c "$connections" -p "$streams" -z "${seconds}s" -m POST \
      -H "Content-Type: application/json" -Z "$reviews" --output-format json \
      "https://127.0.0.1:$port/${path%-bare}" >"$out/$path-$round.json"
    echo "$(( $(cpu) - before ))" >"$out/$path-$round.cpu"
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ticks = 100  # clock ticks a second (getconf CLK_TCK)
rows = {}
for path in ("validate", "mutate", "allow", "validate-bare", "mutate-bare"):
    runs = []
    for r in range(1, rounds + 1):
        d = json.load(open(f"{out}/{path}-{r}.json"))
        n = sum(d["statusCodeDistribution"].values())
        ok = d["statusCodeDistribution"].get("200", 0)
        cpu = int(open(f"{out}/{path}-{r}.cpu").read()) / ticks
        p = d["latencyPercentiles"]
        runs.append(dict(rps=d["summary"]["requestsPerSec"], p50=p["p50"] * 1e3, p99=p["p99"] * 1e3,
                         max=d["summary"]["slowest"] * 1e3, cpu_us=cpu / n * 1e6, failed=n - ok))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rows[path] = med
    per_round = ", ".join("%.0f" % r["rps"] for r in runs)
    failed = sum(r["failed"] for r in runs)
    print(f"{path:13} {med['rps']:8.0f} req/s  p50 {med['p50']:5.2f} ms  p99 {med['p99']:5.2f} ms  "
          f"max {med['max']:6.2f} ms  server CPU {med['cpu_us']:5.1f} µs/req  failed {failed}"
          f"   (req/s per round: {per_round})")
v, m, a = rows["validate"], rows["mutate"], rows["allow"]
print(f"validate / floor: {a['rps'] / v['rps']:.2f}x in throughput, {v['p99'] / a['p99']:.2f}x in p99, "
      f"{v['cpu_us'] / a['cpu_us']:.2f}x in server CPU per request")
print(f"mutate / validate: {v['rps'] / m['rps']:.2f}x in throughput, {m['p99'] / v['p99']:.2f}x in p99, "
      f"{m['cpu_us'] / v['cpu_us']:.2f}x in server CPU per request (the issue's bound: 1.5x)")
v, m = rows["validate-bare"], rows["mutate-bare"]
print(f"bare pods, mutate / validate: {v['rps'] / m['rps']:.2f}x in throughput, {m['p99'] / v['p99']:.2f}x in p99, "
      f"{m['cpu_us'] / v['cpu_us']:.2f}x in server CPU per request")
PY
echo "server RSS: $(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$server/status") MiB now, $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status") MiB peak"
