#!/usr/bin/env bash
# Autobahn|Testsuite, client role: `wstest -m fuzzingserver` with an Autobahn test client.
#
#   tests/autobahn/run_client.sh PROGRAM [--quick] [--face NAME]
#
# Starts wstest as fuzzing server on a free loopback port P, then runs
# `PROGRAM ws://127.0.0.1:P --agent FACE-client` (an autobahn_client of the docs/DESIGN.md
# contract: getCaseCount, runCase for each case echoing every message, updateReports).
# The face comes from PROGRAM's name: autobahn_client -> rust, autobahn_client_c -> c, ...;
# --face overrides it. --quick leaves out the sub-groups 12.2-12.5 and 13.2-13.7.
#
# Writes build/autobahn/FACE-client/ (spec.json, cases.json, wstest.log, program.log and the
# HTML report in report/), prints the summary table, and exits 0 only when every case is OK or
# INFORMATIONAL, none is missing, the client exited 0, and the verdicts match
# tests/autobahn/expected-FACE-client.json (when it exists). AUTOBAHN_TIMEOUT=SECONDS changes
# the time bound (30 min, 10 min quick); AUTOBAHN_WRITE_EXPECTED=1 (re)writes the expected file.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ab_parse_args autobahn_client client "$@"
ab_install_traps
limit=$(ab_time_limit)
started=$SECONDS

rm -rf "$AB_DIR"
mkdir -p "$AB_DIR/report"

write_spec() {
    cat >"$AB_DIR/spec.json" <<EOF
{
   "url": "ws://127.0.0.1:$1",
   "options": {"failByDrop": false},
   "outdir": "$AB_DIR/report",
   "cases": ["*"],
   "exclude-cases": $(ab_excludes),
   "exclude-agent-cases": {}
}
EOF
}

# Start the fuzzing server on a free port (its web server off: --webport 0); if another
# process took the port in between, try another.
port=
for attempt in 1 2 3; do
    try_port=$(ab_free_port)
    write_spec "$try_port"
    # The client's run is the time-bounded part; this bound on wstest is only a safety net.
    (cd "$AB_DIR" && PYTHONUNBUFFERED=1 exec timeout -k 10 $((limit + 120)) "$AB_WSTEST" -m fuzzingserver -s spec.json --webport 0) \
        >"$AB_DIR/wstest.log" 2>&1 &
    wstest_pid=$!
    AB_PIDS+=("$wstest_pid")
    rc=0
    ab_wait_listening "$try_port" "$wstest_pid" 60 || rc=$?
    if [ "$rc" -eq 0 ]; then
        port=$try_port
        break
    fi
    ab_stop "$wstest_pid"
    ab_say "attempt $attempt: wstest did not listen on 127.0.0.1:$try_port ($([ "$rc" -eq 2 ] && echo exited || echo 'timed out after 60s')); last lines of its log:"
    tail -5 "$AB_DIR/wstest.log" | sed 's/^/    /'
done
[ -n "$port" ] || ab_die "wstest -m fuzzingserver never came up; see $AB_DIR/wstest.log"
ab_list_cases "$AB_DIR/spec.json"
total=$("$AB_PY3" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$AB_DIR/cases.json")

ab_say "$total cases$([ "$AB_QUICK" -eq 1 ] && echo ' (quick)'), wstest fuzzingserver on 127.0.0.1:$port, time bound ${limit}s"
timeout -k 10 "$limit" "$AB_PROGRAM" "ws://127.0.0.1:$port" --agent "$AB_NAME" >"$AB_DIR/program.log" 2>&1 &
client_pid=$!
AB_PIDS+=("$client_pid")
ab_progress "$AB_DIR/wstest.log" "$total"

status=0
client_rc=0
wait "$client_pid" || client_rc=$?
if [ "$client_rc" -eq 124 ] || [ "$client_rc" -eq 137 ]; then
    ab_say "FAIL: $(basename "$AB_PROGRAM") did not finish within ${limit}s (set AUTOBAHN_TIMEOUT to change); see $AB_DIR/program.log"
    status=1
elif [ "$client_rc" -ne 0 ]; then
    ab_say "FAIL: $(basename "$AB_PROGRAM") exited with status $client_rc; last lines of $AB_DIR/program.log:"
    tail -15 "$AB_DIR/program.log" | sed 's/^/    /'
    status=1
fi
if ! kill -0 "$wstest_pid" 2>/dev/null; then
    ab_say "FAIL: wstest -m fuzzingserver died during the run; last lines of $AB_DIR/wstest.log:"
    tail -15 "$AB_DIR/wstest.log" | sed 's/^/    /'
    status=1
elif [ ! -f "$AB_DIR/report/index.json" ]; then
    # The client never asked for the reports (it died, or skipped updateReports): ask for
    # them ourselves so that the summary shows how far it got. The run still fails below.
    ab_say "FAIL: $(basename "$AB_PROGRAM") did not call updateReports; asking wstest for the reports of the cases it ran"
    ab_request_reports "$port" "$AB_NAME"
    status=1
fi
# The reports are written (wstest writes them before it answers updateReports).
ab_cleanup

if [ -f "$AB_DIR/report/index.json" ]; then
    ab_summarize || status=1
else
    ab_say "FAIL: no report ($AB_DIR/report/index.json is missing): did $(basename "$AB_PROGRAM") call updateReports?"
    status=1
fi
ab_say "$([ "$status" -eq 0 ] && echo PASS || echo FAIL) in $((SECONDS - started))s; HTML report: $AB_DIR/report/index.html"
exit "$status"
