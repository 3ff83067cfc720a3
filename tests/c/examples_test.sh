#!/usr/bin/env bash
# Smoke tests of the C example programs on loopback: echo_server_c (ws and wss, SIGTERM and
# SIGINT), game_loop_c against it for ~2 s each, usage errors.
# Usage: examples_test.sh BIN_DIR DATA_DIR RESULT_FILE
set -u
bin=$1
data=$2
result=$3
passed=0
failed=0
server_pid=
out=$(mktemp)
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -f "$out" "$out.log"' EXIT

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

# Starts echo_server_c with the given extra arguments and sets $port (empty on failure).
start_server() {
  port=
  "$bin/echo_server_c" --host 127.0.0.1 --port 0 "$@" >"$out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's|^listening on wss\{0,1\}://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$out")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "echo_server_c did not start:"; cat "$out"
  return 1
}

# Stops the server with a signal and checks that it exits 0 within 5 s.
stop_server() {
  local sig=$1 code
  kill "-$sig" "$server_pid"
  for _ in $(seq 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  wait "$server_pid"
  code=$?
  server_pid=
  [ "$code" -eq 0 ] || { echo "echo_server_c exited $code after SIG$sig"; return 1; }
}

# Runs game_loop_c for 2 s and checks: exit 0, echoes came back, worst frame under 100 ms.
game_loop() {
  local line worst
  timeout 20 "$bin/game_loop_c" "$@" --seconds 2 >"$out.log" 2>&1 || { cat "$out.log"; return 1; }
  line=$(tail -n 1 "$out.log")
  echo "     $line"
  worst=$(printf '%s\n' "$line" | sed -n 's/.*worst frame \([0-9.]*\) ms.*/\1/p')
  [ -n "$worst" ] && awk -v w="$worst" 'BEGIN { exit !(w < 100) }'
}

check "echo_server_c starts on port 0" start_server
check "game_loop_c over ws:// (name resolved off the loop)" game_loop "ws://localhost:$port/"
check "echo_server_c exits 0 on SIGTERM" stop_server TERM

check "echo_server_c starts with --tls-cert/--tls-key" start_server --tls-cert "$data/server.pem" --tls-key "$data/server.key"
check "game_loop_c over wss://" game_loop "wss://localhost:$port/" --ca "$data/ca.pem"
check "echo_server_c exits 0 on SIGINT" stop_server INT

usage_exit() { "$@" >/dev/null 2>&1; [ $? -eq 2 ]; }
check "echo_server_c without --port is a usage error" usage_exit "$bin/echo_server_c" --host 127.0.0.1
check "echo_server_c with a cert but no key is a usage error" usage_exit "$bin/echo_server_c" --port 0 --tls-cert x
check "autobahn_client_c without URL is a usage error" usage_exit "$bin/autobahn_client_c"
check "game_loop_c without URL is a usage error" usage_exit "$bin/game_loop_c"

echo "$passed passed, $failed failed" | tee "$result"
[ "$failed" -eq 0 ]
