#!/usr/bin/env bash
# The CMake package, as a user meets it, from temporary directories:
#   1. `make install PREFIX=<tmp>` lays out tidewire.hpp and lib/cmake/tidewire/;
#   2. a project with only find_package(tidewire CONFIG REQUIRED) and
#      target_link_libraries(app PRIVATE tidewire::tidewire) configures, builds and runs;
#   3. the same project through add_subdirectory(<repo>/bindings/cpp) (cargo builds the library).
# Usage: package_test.sh MAKE RESULT_FILE   (run from the repository root)
set -u
make_cmd=$1
result=$2
repo=$(pwd)
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

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
  $make_cmd --no-print-directory install PREFIX="$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; return 1; }
  [ -f "$prefix/include/tidewire.hpp" ] && [ -f "$prefix/include/tidewire.h" ] &&
    [ -f "$prefix/lib/cmake/tidewire/tidewireConfig.cmake" ] &&
    [ -f "$prefix/lib/cmake/tidewire/tidewireConfigVersion.cmake" ]
}

# Copies the consumer KIND (find_package or add_subdirectory) to a fresh directory, then
# configures with the extra arguments, builds and runs it.
consumer() {
  local kind=$1
  shift
  local src="$tmp/$kind-src" bld="$tmp/$kind-build"
  mkdir -p "$src"
  cp "$repo/bindings/cpp/tests/package/$kind/CMakeLists.txt" "$repo/bindings/cpp/tests/package/main.cpp" "$src/"
  (cd "$tmp" &&
    cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release "$@" >"$tmp/$kind.log" 2>&1 &&
    cmake --build "$bld" >>"$tmp/$kind.log" 2>&1) || { cat "$tmp/$kind.log"; return 1; }
  timeout 20 "$bld/app"
}

# A version newer than the installed one must be refused by the version file.
too_new_refused() {
  local src="$tmp/version-src"
  mkdir -p "$src"
  printf '%s\n' 'cmake_minimum_required(VERSION 3.16)' 'project(v LANGUAGES CXX)' \
    'find_package(tidewire 99.0 CONFIG QUIET)' 'if(tidewire_FOUND)' '  message(FATAL_ERROR "99.0 accepted")' 'endif()' \
    'find_package(tidewire CONFIG REQUIRED)' >"$src/CMakeLists.txt"
  cmake -S "$src" -B "$tmp/version-build" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/version.log" 2>&1 || { cat "$tmp/version.log"; return 1; }
}

check "make install PREFIX=<tmp> adds tidewire.hpp and lib/cmake/tidewire/" installed
check "find_package(tidewire CONFIG REQUIRED) + tidewire::tidewire builds and runs" \
  consumer find_package -DCMAKE_PREFIX_PATH="$prefix"
check "the package version file refuses a newer version" too_new_refused
check "add_subdirectory(bindings/cpp) + tidewire::tidewire builds and runs" \
  consumer add_subdirectory -DTIDEWIRE_SOURCE_DIR="$repo"

echo "$passed passed, $failed failed" | tee "$result"
[ "$failed" -eq 0 ]
