#!/usr/bin/env bash
# Echo benchmark of tidewire-net (issue 3).
#
#   crates/net/bench/run.sh [--quick]
#
# Servers, each on CPU 0 (taskset), driven by `loadgen` on CPU 1 over loopback:
#   raw     raw_echo: a mio TCP echo of the same bytes (the physical limit)
#   tw      tidewire's examples/rust/echo_server (release)
#   tt      tokio-tungstenite 0.30 echo on a single-threaded tokio runtime
# For 16 B, 1 KiB, 64 KiB and 1 MiB messages, 16 connections with 8 messages in flight each
# (2 for 1 MiB), 1 s warm-up, 5 s measured (2 s with --quick), median of ROUNDS (default 3,
# 1 with --quick) interleaved rounds. Prints messages per second and
# the server's CPU time per echoed message (user + system, from /proc/PID/stat), then 64 KiB
# of compressible text with and without permessage-deflate, then the resident memory per idle
# connection with 5,000 WebSocket connections open.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
duration=5
rounds=${ROUNDS:-3}
[ "${1:-}" = "--quick" ] && duration=2 && rounds=1

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --quiet --release -p tidewire-net --example echo_server)
(cd "$here" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/bench" cargo build --quiet --release)
ex="$CARGO_TARGET_DIR/release/examples"
bin="$CARGO_TARGET_DIR/bench/release"

server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT

# start_server NAME: starts it on CPU 0 and sets server_pid and port.
start_server() {
    local log
    log=$(mktemp)
    case $1 in
        raw) taskset -c 0 "$bin/raw_echo" --port 0 >"$log" 2>&1 & ;;
        tw) taskset -c 0 "$ex/echo_server" --host 127.0.0.1 --port 0 >"$log" 2>&1 & ;;
        tt) taskset -c 0 "$bin/tungstenite_echo" --port 0 >"$log" 2>&1 & ;;
    esac
    server_pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/.*:\([0-9][0-9]*\)$/\1/p' "$log" | head -1)
        [ -n "$port" ] && break
        sleep 0.05
    done
    rm -f "$log"
    [ -n "$port" ] || { echo "server $1 did not start" >&2; exit 1; }
}

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

# Median of ROUNDS rounds; within a round the servers take turns, so that a slow spell of
# the machine hits all of them rather than one.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-8s %-4s %12s %14s %10s %10s\n' size srv msg_per_s server_us/msg vs_raw cpu_vs_raw
for size in 16 1024 65536 1048576; do
    inflight=8
    [ "$size" -ge 1048576 ] && inflight=2
    declare -A rates=() cpus=()
    for _ in $(seq "$rounds"); do
        for srv in raw tw tt; do
            start_server "$srv"
            flags=()
            [ "$srv" = raw ] && flags=(--raw)
            out=$(taskset -c 1 "$bin/loadgen" --port "$port" "${flags[@]}" --size "$size" \
                --conns 16 --inflight "$inflight" --warmup 1 --duration "$duration" \
                --server-pid "$server_pid")
            stop_server
            rates[$srv]+="$(echo "$out" | field msg_per_s) "
            cpus[$srv]+="$(echo "$out" | field server_us_per_msg) "
        done
    done
    raw_rate=$(echo ${rates[raw]} | tr ' ' '\n' | median)
    raw_cpu=$(echo ${cpus[raw]} | tr ' ' '\n' | median)
    for srv in raw tw tt; do
        rate=$(echo ${rates[$srv]} | tr ' ' '\n' | median)
        us=$(echo ${cpus[$srv]} | tr ' ' '\n' | median)
        printf '%-8s %-4s %12.0f %14.3f %10.2f %10.2f\n' "$size" "$srv" "$rate" "$us" \
            "$(awk -v a="$rate" -v b="$raw_rate" 'BEGIN { print a / b }')" \
            "$(awk -v a="$us" -v b="$raw_cpu" 'BEGIN { print a / b }')"
    done
    unset rates cpus
done

echo
# permessage-deflate (issue 5): 64 KiB of compressible text per message, sent plain and sent
# compressed (the server inflates each message and deflates its echo).
printf '%-22s %12s %14s %10s\n' "64 KiB text, tw" msg_per_s server_us/msg mib_per_s
for mode in text deflate; do
    start_server tw
    out=$(taskset -c 1 "$bin/loadgen" --port "$port" "--$mode" --size 65536 \
        --conns 16 --inflight 8 --warmup 1 --duration "$duration" --server-pid "$server_pid")
    stop_server
    printf '%-22s %12s %14s %10s\n' "$mode" "$(echo "$out" | field msg_per_s)" \
        "$(echo "$out" | field server_us_per_msg)" "$(echo "$out" | field mib_per_s)"
done

echo
for srv in tw tt; do
    start_server "$srv"
    out=$("$bin/loadgen" --port "$port" --idle 5000 --duration 3 --server-pid "$server_pid")
    stop_server
    echo "$srv idle memory: $out"
done
