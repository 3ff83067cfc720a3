# shellcheck shell=bash
# Shared by run_server.sh and run_client.sh (sourced, not run). Bash only.
# Everything here is loopback-only, time-bounded, and cleans up the processes it starts.

AB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AB_ROOT=$(cd "$AB_HERE/../.." && pwd)
AB_VENV=${AUTOBAHN_VENV:-$AB_ROOT/build/autobahn-venv}
AB_OUT=${AUTOBAHN_OUT:-$AB_ROOT/build/autobahn}
AB_PY3=${PYTHON3:-python3}
AB_WSTEST=$AB_VENV/bin/wstest

# The permessage-deflate sub-groups that only re-run the same engine code with other data or
# parameters (issue 6): left out by --quick, for every face but Rust.
AB_QUICK_EXCLUDES='"12.2.*", "12.3.*", "12.4.*", "12.5.*", "13.2.*", "13.3.*", "13.4.*", "13.5.*", "13.6.*", "13.7.*"'

# Processes to stop on exit (pids of processes this script started, nothing else).
AB_PIDS=()
AB_TAG=autobahn

ab_say() { printf '%s: %s\n' "$AB_TAG" "$*"; }
ab_die() {
    printf '%s: ERROR: %s\n' "$AB_TAG" "$*" >&2
    exit 2
}

# Stops one process we started: SIGTERM, then SIGKILL after 5 s. Prints nothing.
ab_stop() {
    local pid=$1 _
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

ab_cleanup() {
    local pid
    for pid in "${AB_PIDS[@]}"; do ab_stop "$pid"; done
    AB_PIDS=()
}

ab_install_traps() {
    trap ab_cleanup EXIT
    trap 'ab_say "interrupted"; exit 130' INT
    trap 'ab_say "terminated"; exit 143' TERM
}

# ab_parse_args PREFIX ROLE "$@": sets AB_PROGRAM, AB_QUICK, AB_FACE, AB_NAME (FACE-ROLE), AB_DIR.
# The face comes from the program's name: PREFIX -> rust, PREFIX_c -> c, PREFIX_py -> py, ...
ab_parse_args() {
    local prefix=$1 role=$2
    shift 2
    AB_PROGRAM=
    AB_QUICK=0
    AB_FACE=
    while [ $# -gt 0 ]; do
        case $1 in
        --quick) AB_QUICK=1 ;;
        --face)
            [ $# -ge 2 ] || ab_die "--face needs a value"
            AB_FACE=$2
            shift
            ;;
        -h | --help)
            # The script's header comment is its help.
            awk 'NR > 1 { if ($0 !~ /^#/) exit; if ($0 ~ /^# shellcheck/) next; sub(/^# ?/, ""); print }' "$0"
            exit 0
            ;;
        -*) ab_die "unknown option $1 (try --help)" ;;
        *)
            [ -z "$AB_PROGRAM" ] || ab_die "one PROGRAM only (got '$AB_PROGRAM' and '$1')"
            AB_PROGRAM=$1
            ;;
        esac
        shift
    done
    [ -n "$AB_PROGRAM" ] || ab_die "usage: $(basename "$0") PROGRAM [--quick] [--face NAME]"
    { [ -f "$AB_PROGRAM" ] && [ -x "$AB_PROGRAM" ]; } || ab_die "$AB_PROGRAM is not an executable file (build it first: make examples)"
    AB_PROGRAM=$(cd "$(dirname "$AB_PROGRAM")" && pwd)/$(basename "$AB_PROGRAM")
    if [ -z "$AB_FACE" ]; then
        local base
        base=$(basename "$AB_PROGRAM")
        case $base in
        "$prefix") AB_FACE=rust ;;
        "${prefix}_"*) AB_FACE=${base#"${prefix}_"} ;;
        *) ab_die "cannot tell the face from the name '$base' (expected $prefix or ${prefix}_FACE); pass --face NAME" ;;
        esac
    fi
    [[ $AB_FACE =~ ^[a-z0-9]+$ ]] || ab_die "face '$AB_FACE' must be lowercase letters and digits"
    AB_NAME=$AB_FACE-$role
    AB_DIR=$AB_OUT/$AB_NAME
    AB_TAG="autobahn $AB_NAME"
    [ -x "$AB_WSTEST" ] || ab_die "$AB_WSTEST is missing: run tests/autobahn/setup.sh first"
    command -v "$AB_PY3" >/dev/null || ab_die "no $AB_PY3 (needed by summarize.py); set PYTHON3"
}

# Time bound of one wstest run, in seconds: AUTOBAHN_TIMEOUT, else 30 min full / 10 min quick.
ab_time_limit() {
    if [ -n "${AUTOBAHN_TIMEOUT:-}" ]; then
        echo "$AUTOBAHN_TIMEOUT"
    elif [ "$AB_QUICK" -eq 1 ]; then
        echo 600
    else
        echo 1800
    fi
}

# JSON list of the case patterns to exclude.
ab_excludes() {
    if [ "$AB_QUICK" -eq 1 ]; then echo "[$AB_QUICK_EXCLUDES]"; else echo "[]"; fi
}

# A loopback TCP port that is free right now (the kernel picks it). The caller still checks
# that its listener came up, since another process may take the port in between.
ab_free_port() {
    "$AB_PY3" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# ab_wait_listening PORT PID SECONDS: 0 once something listens on 127.0.0.1:PORT, 1 on
# timeout, 2 if PID exited first.
ab_wait_listening() {
    local port=$1 pid=$2 deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$pid" 2>/dev/null || return 2
        if command -v ss >/dev/null; then
            [ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] || return 0
        elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Writes $AB_DIR/cases.json: the case ids the spec selects (resolved by the suite's own code,
# so that a case without a result is noticed) and the titles of the groups.
ab_list_cases() {
    local spec=$1
    "$AB_VENV/bin/python" -W ignore - "$spec" >"$AB_DIR/cases.json" 2>"$AB_DIR/cases.err" <<'EOF' ||
import json, sys
from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, CaseSetname, CaseBasename
from autobahntestsuite.caseset import CaseSet
spec = json.load(open(sys.argv[1]))
case_set = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
json.dump({"cases": case_set.parseSpecCases(spec),
           "categories": CaseCategories,
           "subcategories": CaseSubCategories}, sys.stdout, indent=1, sort_keys=True)
EOF
        ab_die "could not list the cases of $spec with the suite: $(tail -3 "$AB_DIR/cases.err")"
}

# ab_progress LOG TOTAL: prints a line every 30 s while the run goes on (CI logs stay alive
# and show where a slow run is). Runs in the background; its pid joins AB_PIDS.
ab_progress() {
    local log=$1 total=$2 start=$SECONDS main=$$
    (
        # `sleep & wait` so that the TERM of ab_stop ends the sleep too (no orphan holding stdout).
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        while :; do
            sleep 30 &
            sleeper=$!
            wait "$sleeper"
            kill -0 "$main" 2>/dev/null || exit 0 # the runner was killed (SIGKILL): stop too
            n=$(grep -c '^Running test case ID' "$log" 2>/dev/null || true)
            last=$(grep '^Running test case ID' "$log" 2>/dev/null | tail -1 | awk '{print $5}')
            printf '%s: ... %s/%s cases started, now %s (%ss)\n' "$AB_TAG" "${n:-0}" "$total" "${last:--}" $((SECONDS - start))
        done
    ) &
    AB_PIDS+=($!)
}

# ab_request_reports PORT AGENT: asks a running fuzzing server for its reports the way a test
# client does (an upgrade request to /updateReports), so that a client that died half-way
# still leaves a report of the cases it ran. Best effort, 60 s at most.
ab_request_reports() {
    timeout 60 "$AB_PY3" - "$1" "$2" <<'EOF' || true
import base64, os, socket, sys
from urllib.parse import quote
port, agent = int(sys.argv[1]), sys.argv[2]
key = base64.b64encode(os.urandom(16)).decode()
try:
    with socket.create_connection(("127.0.0.1", port), timeout=55) as s:
        s.sendall((f"GET /updateReports?agent={quote(agent)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        while s.recv(65536):  # the server writes the reports, then closes
            pass
except OSError:
    pass  # it closes without waiting for our close frame; the reports are written by then
EOF
}

# ab_summarize: runs summarize.py on the report; returns its status.
ab_summarize() {
    local expected=$AB_HERE/expected-$AB_NAME.json
    "$AB_PY3" "$AB_HERE/summarize.py" "$AB_DIR/report/index.json" \
        --cases "$AB_DIR/cases.json" --expected "$expected" --name "$AB_NAME" \
        ${AUTOBAHN_WRITE_EXPECTED:+--write-expected}
}
