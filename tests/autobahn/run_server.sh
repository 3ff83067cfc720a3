#!/usr/bin/env bash
# Autobahn|Testsuite, server role: `wstest -m fuzzingclient` against an echo server.
#
#   tests/autobahn/run_server.sh PROGRAM [--quick] [--face NAME]
#
# PROGRAM is an echo_server of the example-program contract (docs/DESIGN.md); it is started as
# `PROGRAM --host 127.0.0.1 --port P` on a free loopback port and must exit 0 on SIGTERM.
# The face (for the name of the run and of its expected file) comes from PROGRAM's name:
# echo_server -> rust, echo_server_c -> c, echo_server_py -> py; --face overrides it.
# --quick leaves out the sub-groups 12.2-12.5 and 13.2-13.7 (the faces other than Rust).
#
# Writes build/autobahn/FACE-server/ (spec.json, cases.json, wstest.log, program.log and the
# HTML report in report/), prints the summary table, and exits 0 only when every case is OK or
# INFORMATIONAL, none is missing, and the verdicts match tests/autobahn/expected-FACE-server.json
# (when it exists). AUTOBAHN_TIMEOUT=SECONDS changes the time bound (30 min, 10 min quick);
# AUTOBAHN_WRITE_EXPECTED=1 (re)writes the expected file from this run.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ab_parse_args echo_server server "$@"
ab_install_traps
limit=$(ab_time_limit)
started=$SECONDS

rm -rf "$AB_DIR"
mkdir -p "$AB_DIR/report"

# Start the server on a free port; if another process took the port in between, try another.
port=
for attempt in 1 2 3; do
    try_port=$(ab_free_port)
    "$AB_PROGRAM" --host 127.0.0.1 --port "$try_port" >"$AB_DIR/program.log" 2>&1 &
    server_pid=$!
    AB_PIDS+=("$server_pid")
    rc=0
    ab_wait_listening "$try_port" "$server_pid" 30 || rc=$?
    if [ "$rc" -eq 0 ]; then
        port=$try_port
        break
    fi
    ab_stop "$server_pid"
    ab_say "attempt $attempt: $(basename "$AB_PROGRAM") did not listen on 127.0.0.1:$try_port ($([ "$rc" -eq 2 ] && echo exited || echo 'timed out after 30s')); last lines of its log:"
    tail -5 "$AB_DIR/program.log" | sed 's/^/    /'
done
[ -n "$port" ] || ab_die "$AB_PROGRAM never came up; see $AB_DIR/program.log"

cat >"$AB_DIR/spec.json" <<EOF
{
   "options": {"failByDrop": false},
   "outdir": "$AB_DIR/report",
   "servers": [{"agent": "$AB_NAME", "url": "ws://127.0.0.1:$port"}],
   "cases": ["*"],
   "exclude-cases": $(ab_excludes),
   "exclude-agent-cases": {}
}
EOF
ab_list_cases "$AB_DIR/spec.json"
total=$("$AB_PY3" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$AB_DIR/cases.json")

ab_say "$total cases$([ "$AB_QUICK" -eq 1 ] && echo ' (quick)'), $(basename "$AB_PROGRAM") on 127.0.0.1:$port (pid $server_pid), time bound ${limit}s"
(cd "$AB_DIR" && PYTHONUNBUFFERED=1 exec timeout -k 10 "$limit" "$AB_WSTEST" -m fuzzingclient -s spec.json) \
    >"$AB_DIR/wstest.log" 2>&1 &
wstest_pid=$!
AB_PIDS+=("$wstest_pid")
ab_progress "$AB_DIR/wstest.log" "$total"

status=0
wstest_rc=0
wait "$wstest_pid" || wstest_rc=$?
if [ "$wstest_rc" -eq 124 ] || [ "$wstest_rc" -eq 137 ]; then
    ab_say "FAIL: wstest did not finish within ${limit}s (set AUTOBAHN_TIMEOUT to change); see $AB_DIR/wstest.log"
    status=1
elif [ "$wstest_rc" -ne 0 ]; then
    ab_say "FAIL: wstest exited with status $wstest_rc; last lines of $AB_DIR/wstest.log:"
    tail -15 "$AB_DIR/wstest.log" | sed 's/^/    /'
    status=1
fi

# The server must still be up, and must exit 0 when asked to stop (docs/DESIGN.md contract).
if ! kill -0 "$server_pid" 2>/dev/null; then
    server_rc=0
    wait "$server_pid" || server_rc=$?
    ab_say "FAIL: $(basename "$AB_PROGRAM") died during the run (status $server_rc); last lines of $AB_DIR/program.log:"
    tail -15 "$AB_DIR/program.log" | sed 's/^/    /'
    status=1
else
    kill -TERM "$server_pid"
    server_rc=0
    timeout_s=10
    for _ in $(seq $((timeout_s * 10))); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        ab_say "FAIL: $(basename "$AB_PROGRAM") did not exit within ${timeout_s}s of SIGTERM"
        status=1
    else
        wait "$server_pid" || server_rc=$?
        if [ "$server_rc" -ne 0 ]; then
            ab_say "FAIL: $(basename "$AB_PROGRAM") exited with status $server_rc on SIGTERM (the contract says 0)"
            status=1
        fi
    fi
fi
ab_cleanup

if [ -f "$AB_DIR/report/index.json" ]; then
    ab_summarize || status=1
else
    ab_say "FAIL: wstest wrote no report ($AB_DIR/report/index.json is missing)"
    status=1
fi
ab_say "$([ "$status" -eq 0 ] && echo PASS || echo FAIL) in $((SECONDS - started))s; HTML report: $AB_DIR/report/index.html"
exit "$status"
