#!/usr/bin/env bash
# Smoke tests of the C++ example programs on loopback: echo_server_cpp (ws and wss, SIGTERM
# and SIGINT), chat_server_cpp (the page over HTTP, a broadcast, rooms under load, SIGTERM),
# usage errors.
# Usage: examples_test.sh BIN_DIR WS_CHECK DATA_DIR RESULT_FILE
set -u
bin=$1
check_client=$2
data=$3
result=$4
passed=0
failed=0
server_pid=
out=$(mktemp)
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -f "$out"' EXIT

check() { # name, then the command whose success is checked
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
  fi
}

# Starts PROGRAM with arguments, waits for the line matching the sed address SED and sets
# $port from it (empty on failure).
start() {
  local sed_expr=$1
  shift
  port=
  "$@" >"$out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    port=$(sed -n "$sed_expr" "$out")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "$1 did not start:"; cat "$out"
  return 1
}
ws_line='s|^listening on wss\{0,1\}://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p'
chat_line='s|^tidewire chat: open http://127\.0\.0\.1:\([0-9][0-9]*\)/ .*|\1|p'

# Stops the server with a signal and checks that it exits 0 within 5 s.
stop() {
  local sig=$1 code
  kill "-$sig" "$server_pid"
  for _ in $(seq 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$server_pid" 2>/dev/null && { echo "still running 5 s after SIG$sig"; kill -9 "$server_pid"; }
  wait "$server_pid"
  code=$?
  server_pid=
  [ "$code" -eq 0 ] || { echo "exited $code after SIG$sig"; cat "$out"; return 1; }
}

page() {
  python3 - "$port" <<'PY'
import sys, urllib.request
port = sys.argv[1]
with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
    body = r.read().decode()
    assert r.status == 200 and "text/html" in r.headers["Content-Type"], r.status
    assert "new WebSocket" in body and "/chat" in body
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing", timeout=5)
    sys.exit("no 404")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
PY
}

check "echo_server_cpp starts on port 0" start "$ws_line" "$bin/echo_server_cpp" --host 127.0.0.1 --port 0
check "echo_server_cpp echoes text and binary over ws://" timeout 20 "$check_client" echo "ws://127.0.0.1:$port/"
check "echo_server_cpp exits 0 on SIGTERM" stop TERM

check "echo_server_cpp starts with --tls-cert/--tls-key" start "$ws_line" "$bin/echo_server_cpp" \
  --host 127.0.0.1 --port 0 --tls-cert "$data/server.pem" --tls-key "$data/server.key"
check "echo_server_cpp echoes over wss://" timeout 20 "$check_client" echo "wss://localhost:$port/" --ca "$data/ca.pem"
check "echo_server_cpp exits 0 on SIGINT" stop INT

check "chat_server_cpp starts on port 0" start "$chat_line" "$bin/chat_server_cpp" --port 0
check "chat_server_cpp serves the page at / and 404 elsewhere" page
check "chat_server_cpp broadcasts to every client" timeout 20 "$check_client" chat "ws://127.0.0.1:$port/chat"
check "chat_server_cpp keeps rooms apart under load and closes a slow member with 1008" \
  timeout 20 "$check_client" rooms "ws://127.0.0.1:$port/chat"
check "chat_server_cpp exits 0 on SIGTERM" stop TERM

usage_exit() { "$@" >/dev/null 2>&1; [ $? -eq 2 ]; }
check "echo_server_cpp without --port is a usage error" usage_exit "$bin/echo_server_cpp" --host 127.0.0.1
check "echo_server_cpp with a cert but no key is a usage error" usage_exit "$bin/echo_server_cpp" --port 0 --tls-cert x
check "autobahn_client_cpp without URL is a usage error" usage_exit "$bin/autobahn_client_cpp"
check "chat_server_cpp with a bad port is a usage error" usage_exit "$bin/chat_server_cpp" --port 70000

echo "$passed passed, $failed failed" | tee "$result"
[ "$failed" -eq 0 ]
