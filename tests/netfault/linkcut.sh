#!/usr/bin/env bash
# A real link cut (issue 16, section 4: network faults).
#
# Two network namespaces joined by a veth pair with addresses in a private /30 that exists
# only inside them (nothing is added to the host's own namespace; no traffic leaves them):
#
#   <tag>s: echo_server (the Rust example) on 10.253.0.1:9001   <- veth ->   <tag>c: client
#
# The client is the `link_cut_client` test of crates/net/tests/faults.rs (a tidewire
# Context with a short keepalive), run inside the client namespace. It echoes 200 checked
# messages, sets the server's end of the link down (`ip link set ... down`: the client's
# side sees pure silence, no RST, no FIN), keeps sending, and must report the dead link
# (close 1006) within its idle timeout while the link is down; a connect made while it is
# down must fail cleanly; after --down seconds it sets the link up again, and a new
# connection must echo 200 checked messages and close cleanly. The echo server must still
# be running at the end and exit 0 on SIGTERM.
#
# Usage: tests/netfault/linkcut.sh [--down SECONDS] [--ping-ms MS] [--idle-ms MS]
#   defaults: --down 30 --ping-ms 3000 --idle-ms 10000 (the long variant)
# Environment: ECHO_SERVER (default build/bin/echo_server), FAULTS_BIN (the faults test
# binary; built with cargo when unset), CARGO.
#
# Needs root (network namespaces). Where they are unavailable it prints "SKIPPED: ..." and
# exits 0. Namespaces and processes are removed on every exit path.

set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
down=30
ping_ms=3000
idle_ms=10000
while [ $# -gt 0 ]; do
    case "$1" in
        --down) down=$2; shift 2 ;;
        --ping-ms) ping_ms=$2; shift 2 ;;
        --idle-ms) idle_ms=$2; shift 2 ;;
        *) echo "usage: $0 [--down SECONDS] [--ping-ms MS] [--idle-ms MS]" >&2; exit 2 ;;
    esac
done

skip() {
    echo "SKIPPED: link cut test: $*"
    exit 0
}

[ "$(id -u)" = 0 ] || skip "network namespaces need root (running as uid $(id -u))"
command -v ip >/dev/null 2>&1 || skip "iproute2's ip is not installed"

echo_server=${ECHO_SERVER:-$root/build/bin/echo_server}
if [ ! -x "$echo_server" ]; then
    echo "linkcut: $echo_server is missing (make examples)" >&2
    exit 1
fi
if [ -z "${FAULTS_BIN:-}" ]; then
    FAULTS_BIN=$(cd "$root" && "${CARGO:-cargo}" test -p tidewire-net --test faults --no-run \
        --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m.get("target", {}).get("name") == "faults":
        print(m["executable"])')
fi
if [ ! -x "$FAULTS_BIN" ]; then
    echo "linkcut: the faults test binary was not found" >&2
    exit 1
fi

tag=tw$$
ns_s=${tag}s
ns_c=${tag}c
veth_s=${tag}s0
veth_c=${tag}c0
work=$(mktemp -d)
server_pid=
client_pid=

# Ends one of our processes by its PID: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT
    [ -z "$client_pid" ] || stop_pid "$client_pid"
    [ -z "$server_pid" ] || stop_pid "$server_pid"
    ip netns del "$ns_c" 2>/dev/null || true
    ip netns del "$ns_s" 2>/dev/null || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

if ! ip netns add "$ns_s" 2>"$work/err"; then
    skip "ip netns add failed: $(cat "$work/err")"
fi
if ! ip netns add "$ns_c" 2>"$work/err"; then
    skip "ip netns add failed: $(cat "$work/err")"
fi
# The veth pair is created inside the client namespace with its peer put straight into
# the server's: it never exists in the host's namespace.
if ! ip -n "$ns_c" link add "$veth_c" type veth peer name "$veth_s" netns "$ns_s" \
        2>"$work/err"; then
    skip "cannot create a veth pair: $(cat "$work/err")"
fi
ip -n "$ns_s" addr add 10.253.0.1/30 dev "$veth_s"
ip -n "$ns_c" addr add 10.253.0.2/30 dev "$veth_c"
for ns in "$ns_s" "$ns_c"; do
    ip -n "$ns" link set lo up
done
ip -n "$ns_s" link set "$veth_s" up
ip -n "$ns_c" link set "$veth_c" up

# `ip netns exec` execs the program: $! is the echo server's own PID.
ip netns exec "$ns_s" "$echo_server" --host 10.253.0.1 --port 9001 \
    </dev/null >"$work/server.log" 2>&1 &
server_pid=$!

echo "linkcut: link down for ${down} s, client keepalive: ping ${ping_ms} ms, idle timeout ${idle_ms} ms"
started=$(date +%s)
client_rc=0
# In the background and waited for, so that a signal to this script runs the cleanup at
# once (bash runs traps only between commands, and `wait` is interruptible).
ip netns exec "$ns_c" env \
    NETFAULT_URL="ws://10.253.0.1:9001/" \
    NETFAULT_LINK_DOWN="ip -n $ns_s link set dev $veth_s down" \
    NETFAULT_LINK_UP="ip -n $ns_s link set dev $veth_s up" \
    NETFAULT_DOWN_MS=$((down * 1000)) \
    NETFAULT_PING_MS="$ping_ms" \
    NETFAULT_IDLE_MS="$idle_ms" \
    "$FAULTS_BIN" --ignored --exact link_cut_client --nocapture --test-threads=1 \
    </dev/null &
client_pid=$!
wait "$client_pid" || client_rc=$?
client_pid=

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "linkcut: FAILED: echo_server is gone (it crashed or exited); its log:" >&2
    cat "$work/server.log" >&2
    server_pid=
    exit 1
fi
kill -TERM "$server_pid"
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=
if [ "$client_rc" != 0 ]; then
    echo "linkcut: FAILED: the client test failed (status $client_rc); echo_server's log:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
if [ "$server_rc" != 0 ]; then
    echo "linkcut: FAILED: echo_server exited with status $server_rc on SIGTERM; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
echo "linkcut: PASSED in $(($(date +%s) - started)) s (link down ${down} s; echo_server up throughout, exited 0)"
