# Shared by the bench scripts (sourced, not run).

# serve_paved BINARY DIR [ARGS...]: a certificate for localhost in DIR, then
# `BINARY serve --no-cluster` with ARGS on a loopback port, its log in
# DIR/serve.log; returns once it listens. Sets $port and $server (the pid),
# and kills the server when the script (or subshell) exits.
serve_paved() {
  local binary=$1 dir=$2
  shift 2
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
  port=$((20000 + RANDOM % 20000))
  "$binary" serve --no-cluster --listen "127.0.0.1:$port" --tls-cert "$dir/tls.crt" --tls-key "$dir/tls.key" "$@" \
    2>"$dir/serve.log" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "paved serve did not listen on $port; see $dir/serve.log" >&2
  return 1
}

# best_of RUNS PREPARE COMMAND...: runs PREPARE (a command, `:` for none)
# then COMMAND, RUNS times, stdout to $out/stdout and stderr to $out/stderr
# ($out must be set); prints "best_seconds max_rss_kib". Wall time from the
# nanosecond clock (GNU time's %e has 10 ms steps, 5% of a 10,000-object run).
best_of() {
  local runs=$1 prepare=$2
  shift 2
  local best="" rss=0 t m start end
  for _ in $(seq "$runs"); do
    $prepare
    start=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$out/time" "$@" >"$out/stdout" 2>"$out/stderr" || true
    end=$(date +%s%N)
    t=$(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.3f", (e - s) / 1e9}')
    m=$(tail -n 1 "$out/time")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}
