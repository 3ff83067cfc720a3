#!/usr/bin/env bash
# Installs the Autobahn|Testsuite (`wstest`) on a Debian bookworm machine, from the package
# registries only (issue 6). wstest 0.8.2 runs only on Python 2.7, which bookworm no longer
# ships, so:
#   1. a Debian bullseye apt source (same URI and keyring as the bookworm one) gives python2.7
#      and python2.7-dev;
#   2. Python 3's pip downloads the last Python-2 wheels of pip/setuptools/wheel/virtualenv and
#      Python 2 installs them with --user (virtualenv's own dependencies come from PyPI);
#   3. a Python 2.7 virtualenv gets autobahntestsuite and the pins of requirements-wstest.txt.
# Every step checks first and is skipped when already done, so a re-run takes about 2 s.
#
# Where things go (override with the environment variables):
#   AUTOBAHN_VENV       the virtualenv           default: <repo>/build/autobahn-venv
#   AUTOBAHN_BOOTSTRAP  the bootstrap wheels     default: <repo>/build/autobahn-bootstrap
# The apt packages and the --user pip are machine-wide; the venv lives in build/ (git-ignored)
# so a fresh clone rebuilds only the venv, mostly from pip's wheel cache.
#
# Needs root for step 1 (CI runs as root). Prints every command it runs; exits non-zero with
# an "ERROR:" line saying which step failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${AUTOBAHN_VENV:-$ROOT/build/autobahn-venv}
WHEELS=${AUTOBAHN_BOOTSTRAP:-$ROOT/build/autobahn-bootstrap}
REQS=$HERE/requirements-wstest.txt
PY2=/usr/bin/python2.7 # Debian's, never a pyenv shim of the same name
PY3=${PYTHON3:-python3}
APT_SOURCE=/etc/apt/sources.list.d/tidewire-bullseye.sources
STEP_TIMEOUT=${AUTOBAHN_SETUP_STEP_TIMEOUT:-1200} # seconds, per network step

BOOT_PIP=pip==20.3.4
BOOT_PINS=(pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 virtualenv==20.15.1)
PIP_WHEEL=pip-20.3.4-py2.py3-none-any.whl

# A stray PYTHONPATH/PYTHONHOME (pyenv, a Python 3 venv) would break the Python 2 interpreter.
unset PYTHONPATH PYTHONHOME PIP_REQUIRE_VIRTUALENV || true
export DEBIAN_FRONTEND=noninteractive

say() { printf 'autobahn setup: %s\n' "$*"; }
die() {
    printf 'autobahn setup: ERROR: %s\n' "$*" >&2
    exit 1
}
# run STEP-NAME CMD...: print, run under the step time bound, die naming the step on failure.
run() {
    local step=$1
    shift
    say "+ $*"
    local rc=0
    timeout "$STEP_TIMEOUT" "$@" || rc=$?
    if [ "$rc" -eq 124 ]; then
        die "$step: timed out after ${STEP_TIMEOUT}s: $*"
    elif [ "$rc" -ne 0 ]; then
        die "$step: command failed (exit $rc): $*"
    fi
}

started=$(date +%s)
mkdir -p "$ROOT/build"
# Two runners may call setup at once (make -j); the second waits for the first.
exec 9>"$ROOT/build/.autobahn-setup.lock"
flock -w 3600 9 || die "another setup.sh holds $ROOT/build/.autobahn-setup.lock for an hour"

# ---- step 1: python2.7 and python2.7-dev from Debian bullseye -------------------------------

python2_present() {
    [ -x "$PY2" ] && [ -f /usr/include/python2.7/Python.h ] && "$PY2" -c 'import ssl, zlib' 2>/dev/null
}

# True when some enabled apt source already lists the suite "bullseye" (not -security etc.).
bullseye_source_present() {
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    grep -sqE '^[[:space:]]*Suites:(.*[[:space:]])?bullseye([[:space:]]|$)|^[[:space:]]*deb[[:space:]].*[[:space:]]bullseye([[:space:]]|$)' \
        "${files[@]}"
}

# Prints "URI KEYRING" of the enabled bookworm source (deb822 or one-line format).
bookworm_uri_and_keyring() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas are separated by blank lines; find one whose Suites has "bookworm".
        awk -v RS= '
            /(^|\n)Suites:([^\n]*[ \t])?bookworm([ \t]|\n|$)/ && /(^|\n)Types:[^\n]*deb([ \t]|\n|$)/ {
                uri = ""; key = ""
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", lines[i]); split(lines[i], u, /[ \t]+/); uri = u[1] }
                    if (lines[i] ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", lines[i]); key = lines[i] }
                }
                if (uri != "") { print uri, (key == "" ? "-" : key); exit }
            }' "$f" | grep . && return 0
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [signed-by=K] URI bookworm main
        sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[([^]]*)\][[:space:]]+)?([^[:space:]]+)[[:space:]]+bookworm[[:space:]].*/\3 \2/p' "$f" |
            awk '{ key = "-"; if (match($0, /signed-by=[^ ]+/)) key = substr($0, RSTART + 10, RLENGTH - 10); print $1, key; exit }' |
            grep . && return 0
    done
    return 1
}

if python2_present; then
    say "step 1: skip: $PY2 and its headers are installed"
else
    [ "$(id -u)" -eq 0 ] || die "step 1: $PY2 (with python2.7-dev) is missing and installing it needs root; run this script as root"
    command -v apt-get >/dev/null || die "step 1: $PY2 is missing and there is no apt-get (this recipe is for Debian bookworm)"
    if bullseye_source_present; then
        say "step 1: skip adding an apt source: a bullseye source is already configured"
    else
        read -r uri keyring < <(bookworm_uri_and_keyring) ||
            die "step 1: found no bookworm apt source to copy the URI and keyring from (looked in /etc/apt/sources.list{,.d/})"
        say "step 1: adding $APT_SOURCE (bullseye, main, $uri, keyring $keyring)"
        {
            echo "# Added by tidewire tests/autobahn/setup.sh: python2.7 for the Autobahn|Testsuite."
            echo "Types: deb"
            echo "URIs: $uri"
            echo "Suites: bullseye"
            echo "Components: main"
            [ "$keyring" = "-" ] || echo "Signed-By: $keyring"
        } >"$APT_SOURCE"
    fi
    apt_install=(apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends -t bullseye python2.7 python2.7-dev)
    if ! apt-cache madison python2.7 2>/dev/null | grep bullseye >/dev/null; then
        run "step 1 (apt-get update)" apt-get -o DPkg::Lock::Timeout=600 update
        run "step 1 (apt-get install python2.7)" "${apt_install[@]}"
    else
        say "+ ${apt_install[*]}"
        if ! timeout "$STEP_TIMEOUT" "${apt_install[@]}"; then
            # The package lists may be stale (files gone from the mirror): refresh, try again.
            run "step 1 (apt-get update)" apt-get -o DPkg::Lock::Timeout=600 update
            run "step 1 (apt-get install python2.7)" "${apt_install[@]}"
        fi
    fi
    python2_present || die "step 1: apt-get finished but $PY2 with ssl/zlib and Python.h is still not usable"
fi

# ---- step 2: pip and virtualenv for Python 2 -----------------------------------------------

# (virtualenv prints its version on stderr, pip on stdout)
pip2_present() { [[ $("$PY2" -m pip --version 2>&1) == "pip 20.3.4 "* ]]; }
virtualenv2_present() { [[ $("$PY2" -m virtualenv --version 2>&1) == "virtualenv 20.15.1 "* ]]; }

if pip2_present && virtualenv2_present; then
    say "step 2: skip: pip 20.3.4 and virtualenv 20.15.1 are installed for $PY2"
else
    have_all=1
    for w in "$PIP_WHEEL" setuptools-44.1.1-py2.py3-none-any.whl wheel-0.37.1-py2.py3-none-any.whl virtualenv-20.15.1-py2.py3-none-any.whl; do
        [ -f "$WHEELS/$w" ] || have_all=0
    done
    if [ "$have_all" -eq 1 ]; then
        say "step 2: skip download: the bootstrap wheels are in $WHEELS"
    else
        "$PY3" -m pip --version >/dev/null 2>&1 || die "step 2: '$PY3 -m pip' does not work; set PYTHON3 to a Python 3 that has pip"
        mkdir -p "$WHEELS"
        run "step 2 (download bootstrap wheels)" "$PY3" -m pip download --no-deps --only-binary=:all: \
            --dest "$WHEELS" "${BOOT_PINS[@]}"
    fi
    if ! pip2_present; then
        # A wheel is a zip that Python can run pip from: the classic way to get pip without pip.
        run "step 2 (pip for Python 2)" "$PY2" "$WHEELS/$PIP_WHEEL/pip" install --no-index --find-links "$WHEELS" \
            --user --no-warn-script-location "$BOOT_PIP" setuptools==44.1.1 wheel==0.37.1
    fi
    # virtualenv's own dependencies (filelock, platformdirs, distlib, importlib-metadata, ...)
    # come from PyPI; pip 20.3.4 picks the releases that still support Python 2.
    run "step 2 (virtualenv for Python 2)" "$PY2" -m pip install --user --no-warn-script-location \
        --find-links "$WHEELS" virtualenv==20.15.1
    pip2_present || die "step 2: pip 20.3.4 is still not importable by $PY2"
    virtualenv2_present || die "step 2: virtualenv 20.15.1 is still not importable by $PY2"
fi

# ---- step 3: the virtualenv with wstest ----------------------------------------------------

reqs_hash=$(sha256sum "$REQS" | cut -d' ' -f1)
stamp=$VENV/.tidewire-requirements.sha256

venv_ready() {
    [ -x "$VENV/bin/wstest" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs_hash" ] &&
        "$VENV/bin/python" -c 'import autobahntestsuite' 2>/dev/null
}

if venv_ready; then
    say "step 3: skip: $VENV has wstest with the pins of $(basename "$REQS")"
else
    if [ -e "$VENV" ]; then
        say "step 3: $VENV is incomplete or has other pins; recreating it"
        rm -rf "$VENV"
    fi
    run "step 3 (create virtualenv)" "$PY2" -m virtualenv --no-periodic-update "$VENV"
    run "step 3 (install wstest)" "$VENV/bin/python" -m pip install -r "$REQS"
    "$VENV/bin/wstest" --help >/dev/null 2>&1 || die "step 3: $VENV/bin/wstest was installed but does not start; try: $VENV/bin/wstest --help"
    # Anything pip added beyond the pins is worth knowing about (it could change under us).
    extras=$("$VENV/bin/python" -m pip freeze --all 2>/dev/null |
        awk -F'==' 'function norm(s) { s = tolower(s); gsub(/[-_.]+/, "-", s); return s }
                    NR == FNR { if ($0 !~ /^#/ && NF) pinned[norm($1)] = 1; next }
                    /^[-#]/ { next } !(norm($1) in pinned) && norm($1) !~ /^(pip|setuptools|wheel)$/ { print }' \
            "$REQS" - | tr '\n' ' ')
    [ -z "$extras" ] || say "step 3: note: pip also installed (not pinned): $extras"
    echo "$reqs_hash" >"$stamp"
fi

say "ready: $VENV/bin/wstest ($(($(date +%s) - started))s)"
