#!/usr/bin/env bash
# Creates the Python 3 virtualenv of the stand-in peers (the `websockets` package), used to
# self-test the Autobahn harness without the project's own programs. Idempotent: skipped when
# the venv already has the pinned version.
#   AUTOBAHN_STANDIN_VENV   default: <repo>/build/autobahn-standin-venv
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
VENV=${AUTOBAHN_STANDIN_VENV:-$ROOT/build/autobahn-standin-venv}
PY3=${PYTHON3:-python3}
PIN=websockets==15.0.1

say() { printf 'autobahn stand-in setup: %s\n' "$*"; }
die() {
    printf 'autobahn stand-in setup: ERROR: %s\n' "$*" >&2
    exit 1
}

if [ -x "$VENV/bin/python" ] &&
    [ "$("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)' 2>/dev/null)" = "${PIN#*==}" ]; then
    say "skip: $VENV has $PIN"
    exit 0
fi
rm -rf "$VENV"
say "+ $PY3 -m venv $VENV"
timeout 300 "$PY3" -m venv "$VENV" || die "could not create $VENV with '$PY3 -m venv' (on Debian: apt-get install python3-venv)"
say "+ $VENV/bin/python -m pip install $PIN"
timeout 600 "$VENV/bin/python" -m pip install --quiet "$PIN" || die "pip could not install $PIN into $VENV"
say "ready: $VENV ($PIN)"
