#!/usr/bin/env bash
# Publish-to-delivery latency between two cluster nodes through a real Redis (issue 14):
# starts redis-server on a free loopback port, runs `cluster_latency` (1,000 messages/s for
# 10 s by default; flags are passed on), stops Redis by PID.
#
#   crates/net/bench/cluster.sh [--rate N] [--seconds S] [--size BYTES]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$here" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/bench" cargo build --quiet --release --bin cluster_latency)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
redis=$!
trap 'kill "$redis" 2>/dev/null || true; wait "$redis" 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$CARGO_TARGET_DIR/bench/release/cluster_latency" --redis "redis://127.0.0.1:$port/" "$@"
