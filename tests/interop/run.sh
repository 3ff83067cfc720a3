#!/usr/bin/env bash
# Interop with a peer written by others (issue 5): the Python `websockets` package, in a
# virtualenv this script makes, against tidewire's Rust programs, with permessage-deflate
# negotiated and checked on both sides.
#
#   tests/interop/run.sh [BIN_DIR]     (default build/bin, with echo_server and ws_client)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/bin}
venv=${INTEROP_VENV:-$root/build/interop-venv}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

if ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
    echo "interop: creating $venv with websockets"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'websockets==17.4'
fi
py="$venv/bin/python"

# Waits up to 10 s for a line matching $2 in file $1 and prints it.
wait_line() {
    for _ in $(seq 100); do
        if line=$(grep -m1 -E "$2" "$1"); then echo "$line"; return 0; fi
        sleep 0.1
    done
    echo "interop: no line matching '$2' in $1:" >&2; cat "$1" >&2; return 1
}

passed=0 failed=0
check() { # name, command...
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "interop: PASS $name"
    else failed=$((failed + 1)); echo "interop: FAIL $name"; fi
}

# 1. websockets client -> tidewire echo_server.
client_against_echo_server() {
    "$bin/echo_server" --host 127.0.0.1 --port 0 --verbose > "$work/server.log" 2>&1 &
    pids+=($!)
    local url
    url=$(wait_line "$work/server.log" '^listening on ' | awk '{print $3}') || return 1
    timeout 60 "$py" "$here/peer.py" client "$url" || return 1
    wait_line "$work/server.log" '^open .* extensions=permessage-deflate' > /dev/null || return 1
}

# 1b. The same against echo_server on two event loops sharing the port (Workers).
client_against_echo_server_workers() {
    "$bin/echo_server" --host 127.0.0.1 --port 0 --threads 2 --verbose > "$work/workers.log" 2>&1 &
    pids+=($!)
    local url
    url=$(wait_line "$work/workers.log" '^listening on ' | awk '{print $3}') || return 1
    for _ in 1 2 3 4; do timeout 60 "$py" "$here/peer.py" client "$url" > /dev/null || return 1; done
    [ "$(grep -c '^open .* extensions=permessage-deflate' "$work/workers.log")" = 4 ] || {
        cat "$work/workers.log" >&2; return 1; }
    kill -TERM "${pids[-1]}"
    for _ in $(seq 50); do kill -0 "${pids[-1]}" 2>/dev/null || return 0; sleep 0.1; done
    echo "echo_server --threads 2 did not exit on SIGTERM" >&2; return 1
}

# 2. tidewire ws_client -> websockets server.
ws_client_against_websockets_server() {
    "$py" "$here/peer.py" server > "$work/peer.log" 2>&1 &
    pids+=($!)
    local port
    port=$(wait_line "$work/peer.log" '^listening ' | awk '{print $2}') || return 1
    local long
    long=$(printf 'compressible tidewire text %.0s' $(seq 500))
    timeout 60 "$bin/ws_client" "ws://127.0.0.1:$port/" "hello" "$long" "κόσμε" > "$work/client.out" || {
        cat "$work/client.out" >&2; return 1; }
    grep -q '^open extensions=permessage-deflate' "$work/client.out" || { cat "$work/client.out" >&2; return 1; }
    [ "$(grep -c '^< ' "$work/client.out")" = 3 ] || { cat "$work/client.out" >&2; return 1; }
    grep -qxF "< $long" "$work/client.out" || { echo "long message not echoed intact" >&2; return 1; }
    grep -q '^closed 1000 clean' "$work/client.out" || { cat "$work/client.out" >&2; return 1; }
    wait_line "$work/peer.log" '^open extensions=PerMessageDeflate' > /dev/null || return 1
}

# 3. websockets clients -> chat_server (the demo, on topics): rooms, deflate, order.
clients_against_chat_server() {
    "$bin/chat_server" --host 127.0.0.1 --port 0 > "$work/chat.log" 2>&1 &
    pids+=($!)
    local url
    url=$(wait_line "$work/chat.log" '^tidewire chat: open ' | awk '{print $4}') || return 1
    timeout 60 "$py" "$here/peer.py" chat "${url%/}" || { cat "$work/chat.log" >&2; return 1; }
}

check "websockets client -> echo_server (deflate)" client_against_echo_server
check "websockets client -> echo_server --threads 2 (deflate)" client_against_echo_server_workers
check "ws_client -> websockets server (deflate)" ws_client_against_websockets_server
check "websockets clients -> chat_server rooms (deflate)" clients_against_chat_server
echo "interop: $passed passed, $failed failed"
[ "$failed" = 0 ]
