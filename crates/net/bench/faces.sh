#!/usr/bin/env bash
# The echo servers of every native face under one load: tidewire's Rust, C and C++
# echo_server programs, driven by `loadgen` (16 connections x 8 in flight, binary messages),
# median of ROUNDS (default 3) interleaved rounds. Needs `make examples` first.
#
#   crates/net/bench/faces.sh [BIN_DIR]      (default build/bin)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
bindir=${1:-$root/build/bin}
rounds=${ROUNDS:-3}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$here" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/bench" cargo build --quiet --release)
loadgen="$CARGO_TARGET_DIR/bench/release/loadgen"

pid=
stop() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }; }
trap stop EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

printf '%-8s %-16s %12s %14s\n' size server msg_per_s server_us/msg
for size in 16 1024 65536; do
    declare -A rates=() cpus=()
    for _ in $(seq "$rounds"); do
        for prog in echo_server echo_server_c echo_server_cpp; do
            log=$(mktemp)
            taskset -c 0 "$bindir/$prog" --host 127.0.0.1 --port 0 >"$log" 2>&1 &
            pid=$!
            port=
            for _ in $(seq 100); do
                port=$(sed -n 's/.*:\([0-9][0-9]*\)\/\{0,1\}$/\1/p' "$log" | head -1)
                [ -n "$port" ] && break
                sleep 0.05
            done
            rm -f "$log"
            [ -n "$port" ] || { echo "$prog did not start" >&2; exit 1; }
            out=$(taskset -c 1 "$loadgen" --port "$port" --size "$size" --conns 16 --inflight 8 \
                --warmup 1 --duration 4 --server-pid "$pid")
            stop
            rates[$prog]+="$(echo "$out" | field msg_per_s) "
            cpus[$prog]+="$(echo "$out" | field server_us_per_msg) "
        done
    done
    for prog in echo_server echo_server_c echo_server_cpp; do
        printf '%-8s %-16s %12.0f %14.3f\n' "$size" "$prog" \
            "$(echo ${rates[$prog]} | tr ' ' '\n' | median)" "$(echo ${cpus[$prog]} | tr ' ' '\n' | median)"
    done
    unset rates cpus
done
