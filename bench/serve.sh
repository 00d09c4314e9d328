#!/usr/bin/env bash
# Load on `paved serve` over TLS on loopback: realistic Pod and Deployment
# CREATE reviews (a mix of allowed, warned and denied, checked first), then the
# same load on the server's always-allow endpoint (/allow) as the floor.
#
#   bench/serve.sh [SECONDS] [CONNECTIONS]      default 20 64
#
# Prints requests/s, p50, p99 and max latency for both, and the server's RSS.
# The load generator (wrk, from Debian) shares the machine's cores with the server.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
connections=${2:-64}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 2; }
out=bench/out/serve
rm -rf "$out" && mkdir -p "$out"
cargo build --release --quiet
python3 bench/gen_reviews.py --out "$out/reviews" --count 400 >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$out/tls.key" -out "$out/tls.crt" 2>/dev/null
port=$((20000 + RANDOM % 20000))
target/release/paved serve --no-cluster --floor-endpoint --listen "127.0.0.1:$port" \
  --tls-cert "$out/tls.crt" --tls-key "$out/tls.key" --log-format json 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null && break
  sleep 0.1
done
echo "verdicts of the $(ls "$out/reviews" | wc -l) reviews: $(python3 bench/check_verdicts.py "$port" "$out/reviews")"

run() { # path label
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -s bench/wrk_reviews.lua "https://127.0.0.1:$port$1" -- "$out/reviews" \
    >"$out/wrk-$2.txt"
  local rps p50 p99 max non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$out/wrk-$2.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$out/wrk-$2.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$out/wrk-$2.txt")
  max=$(awk '$1 == "Latency" {print $4}' "$out/wrk-$2.txt")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$out/wrk-$2.txt")
  printf '%-8s %10s req/s   p50 %-9s p99 %-9s max %-9s non-2xx %s\n' "$2" "$rps" "$p50" "$p99" "$max" "${non2xx:-0}"
}
echo "wrk: 2 threads, $connections connections, ${seconds}s, HTTP/1.1 over TLS"
run /validate validate
rss_validate=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
run /allow floor
echo "server RSS after /validate load: $((rss_validate / 1024)) MiB; peak: $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status") MiB"
