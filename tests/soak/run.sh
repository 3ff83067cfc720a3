#!/usr/bin/env bash
# Soak (issue 16): the Rust echo_server example, one ws:// and one wss:// process, under
# thousands of verified echo connections from tests/soak (a tidewire client) for a while.
#
#   tests/soak/run.sh BIN_DIR SOAK_BIN [soak flags...]     e.g. --conns 10000 --seconds 600
#
# The servers get a raised open-files limit and are stopped by PID on every exit path.
set -euo pipefail
bin=$1
soak=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data="$here/../c/data"
logs=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$logs"
}
trap cleanup EXIT

# Starts the echo server with the given flags; prints its port.
start() {
  local name=$1
  shift
  (ulimit -n "$(ulimit -Hn)" && exec "$bin/echo_server" --host 127.0.0.1 --port 0 "$@") \
    >"$logs/$name.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do
    port=$(sed -n 's|^listening on wss\{0,1\}://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$logs/$name.log")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "echo_server ($name) did not start:" >&2
  cat "$logs/$name.log" >&2
  return 1
}

start ws
ws_port=$port
ws_pid=${pids[-1]}
start wss --tls-cert "$data/server.pem" --tls-key "$data/server.key"
wss_port=$port
wss_pid=${pids[-1]}
"$soak" --url "ws://127.0.0.1:$ws_port/" --tls-url "wss://localhost:$wss_port/" --ca "$data/ca.pem" \
  --server-pid "$ws_pid" --server-pid "$wss_pid" "$@"
