#!/usr/bin/env bash
# The deployment of examples/deploy, tested: examples/deploy/chat_cluster.sh starts Redis,
# two chat_server processes joined through it, and nginx in front; Python `websockets`
# clients connect through nginx (so they land on both processes) and every line must reach
# every client once. Then the cluster is stopped by PID and nothing it started may be left.
#
#   tests/deploy/run.sh [BIN_DIR]     (default build/bin)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/bin}
venv=${INTEROP_VENV:-$root/build/interop-venv}
if ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'websockets==17.4'
fi
log=$(mktemp)
cluster=
cleanup() {
    [ -n "$cluster" ] && kill -TERM "$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PORT=$port "$root/examples/deploy/chat_cluster.sh" "$bin" >"$log" 2>&1 &
cluster=$!
for _ in $(seq 300); do
    grep -q '^chat cluster: open ' "$log" && break
    kill -0 "$cluster" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
grep -q '^chat cluster: open ' "$log" || { echo "deploy: the cluster did not start" >&2; cat "$log" >&2; exit 1; }

timeout 60 "$venv/bin/python" "$here/check.py" "ws://127.0.0.1:$port" 8
# nginx's round robin put clients on both processes (each logs who joined).
for name in a b; do
    file=$(sed -n "s/^chat_server $name: .* (log \(.*\))$/\1/p" "$log")
    grep -q " joined lobby" "$file" || { echo "deploy: no client reached chat_server $name" >&2; exit 1; }
done
children=$(pgrep -P "$cluster" | tr '\n' ' ')
kill -TERM "$cluster"
wait "$cluster" 2>/dev/null || true
cluster=
for pid in $children; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "deploy: process $pid left running" >&2; exit 1; fi
done
echo "deploy: PASS (nginx -> 2 chat_server processes -> Redis; all stopped)"
