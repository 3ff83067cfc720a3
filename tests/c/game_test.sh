#!/usr/bin/env bash
# Runs examples/c/game_client.c headless against examples/rust/relay_server.rs in the four
# configurations (poll per frame / background I/O thread, without / with a wss:// reconnect
# storm) and prints each run's frame-time line. Fails when a run fails.
#
# Usage: tests/c/game_test.sh BIN_DIR DATA_DIR SECONDS STORM [RESULTS_FILE]
#   BIN_DIR   holds game_client_c and relay_server (make game-client examples-rust)
#   DATA_DIR  tests/c/data (the test CA and server certificate for wss://)
#   STORM     connections in the reconnect storm
# RESULTS_FILE gets "N passed, M failed" (the C suite's format).
set -u
bin=$1 data=$2 seconds=$3 storm=$4 results=${5:-}
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$bin/relay_server" --host 127.0.0.1 --port 0 --tls-port 0 \
    --tls-cert "$data/server.pem" --tls-key "$data/server.key" >"$work/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^listening on wss://' "$work/server.out" 2>/dev/null && break
    sleep 0.05
done
ws=$(sed -n 's|^listening on ws://||p' "$work/server.out")
wss=$(sed -n 's|^listening on wss://||p' "$work/server.out")
if [ -z "$ws" ] || [ -z "$wss" ]; then
    echo "relay_server did not start:"; cat "$work/server.out"; exit 1
fi

passed=0 failed=0
for mode in poll bg; do
    for n in 0 "$storm"; do
        args=(--url "ws://$ws/game" --mode "$mode" --seconds "$seconds" --headless --ca "$data/ca.pem")
        if [ "$n" != 0 ]; then args+=(--storm "$n" --storm-url "wss://$wss/storm"); fi
        if SDL_VIDEODRIVER=dummy "$bin/game_client_c" "${args[@]}" >"$work/run.out" 2>&1; then
            passed=$((passed + 1)); tail -n 1 "$work/run.out"
        else
            failed=$((failed + 1)); echo "FAILED: game_client_c ${args[*]}"; cat "$work/run.out"
        fi
    done
done
kill -0 "$server_pid" 2>/dev/null || { echo "relay_server died"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed"
if [ -n "$results" ]; then echo "$passed passed, $failed failed" >"$results"; fi
[ "$failed" = 0 ]
