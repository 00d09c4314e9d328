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
