#!/usr/bin/env bash
# The chat on several machines' worth of processes, on this one: Redis, two chat_server
# processes (each joined to the cluster through Redis) and nginx in front of them.
#
#   examples/deploy/chat_cluster.sh [BIN_DIR]      (default build/bin; `make examples-rust`)
#
# PORT (default 8080) is nginx's port; the rest pick free ports. Prints the URL, then runs
# until SIGINT or SIGTERM, and stops everything it started by PID. Needs redis-server and
# nginx (Debian: `apt-get install redis-server nginx`).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/bin}
port=${PORT:-8080}
for tool in redis-server nginx; do
    command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
    command -v "$tool" >/dev/null || { echo "chat_cluster: $tool is not installed" >&2; exit 1; }
done
[ -x "$bin/chat_server" ] || { echo "chat_cluster: no $bin/chat_server (make examples-rust)" >&2; exit 1; }

work=$(mktemp -d)
# nginx's worker processes (another user when started as root) write temp files here.
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for a line matching $2 in file $1.
wait_line() {
    for _ in $(seq 100); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "chat_cluster: no line matching '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    >"$work/redis.log" 2>&1 &
pids+=($!)
wait_line "$work/redis.log" "Ready to accept connections"

upstreams=""
for name in a b; do
    backend=$(free_port)
    "$bin/chat_server" --host 127.0.0.1 --port "$backend" \
        --cluster "redis://127.0.0.1:$redis_port/" >"$work/$name.log" 2>&1 &
    pids+=($!)
    wait_line "$work/$name.log" "^cluster: connected"
    upstreams+="        server 127.0.0.1:$backend;"$'\n'
    echo "chat_server $name: 127.0.0.1:$backend (log $work/$name.log)"
done

sed -e "s|@WORK@|$work|g" -e "s|@LISTEN@|127.0.0.1:$port|g" \
    "$here/nginx.conf.template" >"$work/nginx.conf.head"
awk -v ups="$upstreams" '{ if ($0 == "@UPSTREAMS@") printf "%s", ups; else print }' \
    "$work/nginx.conf.head" >"$work/nginx.conf"
nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log" &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
echo "chat cluster: open http://127.0.0.1:$port/ (nginx -> 2 chat_server processes, Redis on $redis_port)"
# Until a signal (the traps above end the script and clean up).
while true; do sleep 1; done
