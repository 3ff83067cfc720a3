#!/usr/bin/env bash
# `make install` into a temporary prefix, then a program built with
#   cc prog.c $(pkg-config --cflags --libs tidewire)            (shared)
#   cc prog.c $(pkg-config --cflags --libs --static tidewire)   (static, -static)
# and run. Usage: install_test.sh MAKE RESULT_FILE   (run from the repository root)
set -u
make_cmd=$1
result=$2
passed=0
failed=0
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

check() {
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

installed() {
  $make_cmd --no-print-directory install PREFIX="$prefix" >"$prefix/install.log" 2>&1 || { cat "$prefix/install.log"; return 1; }
  [ -f "$prefix/include/tidewire.h" ] && [ -f "$prefix/lib/libtidewire.a" ] &&
    [ -f "$prefix/lib/pkgconfig/tidewire.pc" ] &&
    [ "$(readlink "$prefix/lib/libtidewire.so")" = libtidewire.so.0 ] &&
    [ -f "$prefix/lib/$(readlink "$prefix/lib/libtidewire.so.0")" ] &&
    readelf -d "$prefix/lib/libtidewire.so.0" | grep -q 'SONAME.*\[libtidewire\.so\.0\]'
}

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

shared() {
  # shellcheck disable=SC2046  # pkg-config output is meant to be split
  cc tests/c/install_prog.c -o "$prefix/prog_shared" $(pkg-config --cflags --libs tidewire) || return 1
  LD_LIBRARY_PATH="$prefix/lib" ldd "$prefix/prog_shared" | grep -q "libtidewire.so.0 => $prefix/lib/" || return 1
  LD_LIBRARY_PATH="$prefix/lib" timeout 20 "$prefix/prog_shared"
}

static() {
  # shellcheck disable=SC2046
  cc tests/c/install_prog.c -o "$prefix/prog_static" $(pkg-config --cflags --libs --static tidewire) -static \
    2>"$prefix/static.log" || { cat "$prefix/static.log"; return 1; }
  # Fully static: no libtidewire.so needed (nor any other shared library).
  ! ldd "$prefix/prog_static" 2>/dev/null | grep -q libtidewire || return 1
  timeout 20 "$prefix/prog_static"
}

check "make install PREFIX=<tmp> lays out libs, header, tidewire.pc" installed
check "a program built with pkg-config --libs tidewire runs (shared)" shared
check "a program built with pkg-config --libs --static tidewire runs (static)" static

echo "$passed passed, $failed failed" | tee "$result"
[ "$failed" -eq 0 ]
