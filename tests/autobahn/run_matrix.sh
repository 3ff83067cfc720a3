#!/usr/bin/env bash
# Runs the Autobahn suite for several faces, both roles of a face side by side (wstest is a
# single-threaded Python 2 process, so two of them use the two cores CI has).
#
#   tests/autobahn/run_matrix.sh BIN_DIR FACE:MODE...      e.g.  build/bin rust:full c:quick
#
# FACE is the program suffix (rust = no suffix, c = _c, py = _py, pysync = _pysync, cpp = _cpp); MODE is full or
# quick (quick leaves out 12.2-12.5 and 13.2-13.7, issue 6). A listed face whose programs are
# missing fails: every face that exists is tested. Each run's table is printed when both roles
# of the face are done; the last line counts the runs.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 2 ] || { echo "usage: $0 BIN_DIR FACE:MODE..." >&2; exit 2; }
bin=$1
shift
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

passed=0 failed=0
for entry in "$@"; do
    face=${entry%%:*} mode=${entry#*:}
    suffix=$([ "$face" = rust ] && echo "" || echo "_$face")
    flags=()
    case $mode in
    full) ;;
    quick) flags=(--quick) ;;
    *) echo "autobahn-matrix: bad mode in '$entry'" >&2; exit 2 ;;
    esac
    start=$(date +%s)
    "$here/run_server.sh" "$bin/echo_server$suffix" "${flags[@]}" > "$logs/server" 2>&1 &
    server=$!
    "$here/run_client.sh" "$bin/autobahn_client$suffix" "${flags[@]}" > "$logs/client" 2>&1 &
    client=$!
    wait "$server"; server_rc=$?
    wait "$client"; client_rc=$?
    for role in server client; do
        cat "$logs/$role"
        rc=$([ $role = server ] && echo $server_rc || echo $client_rc)
        if [ "$rc" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    done
    echo "autobahn-matrix: $face ($mode) both roles in $(( $(date +%s) - start ))s"
done
echo "autobahn-matrix: $passed passed, $failed failed"
[ "$failed" = 0 ]
