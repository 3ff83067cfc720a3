#!/usr/bin/env bash
# Warnings as users may see them: the programs (examples, tools, the package consumer) under a
# strict warning set, as C++17 and C++20, with g++ and, when installed, clang++ (which also
# checks the test files). Syntax only: the suite and the examples are built elsewhere.
# Usage: compilers_test.sh RESULT_FILE TEST_DATA_DEFINE   (env: CXX, CLANGXX)
set -u
result=$1
data_define=$2
cxx=${CXX:-g++}
clangxx=${CLANGXX:-clang++}
passed=0
failed=0
inc=(-Iinclude -Ibindings/cpp/include)
warn=(-Wall -Wextra -Wpedantic -Werror)
strict=("${warn[@]}" -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast -Wnon-virtual-dtor
  -Woverloaded-virtual -Wnull-dereference -Wcast-align)
programs=(examples/cpp/*.cpp bindings/cpp/tests/tools/*.cpp bindings/cpp/tests/package/main.cpp)
tests=(bindings/cpp/tests/*.cpp)

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

each() { # compiler, flags..., --, files...
  local compiler=$1 flags=() f
  shift
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done
  shift
  for f in "$@"; do "$compiler" "${flags[@]}" "${inc[@]}" "$data_define" -fsyntax-only "$f" || return 1; done
}

for std in c++17 c++20; do
  check "$cxx -std=$std, strict warnings: examples and tools" each "$cxx" -std=$std "${strict[@]}" -- "${programs[@]}"
done
if command -v "$clangxx" >/dev/null 2>&1; then
  for std in c++17 c++20; do
    check "$clangxx -std=$std, strict warnings: examples and tools" each "$clangxx" -std=$std "${strict[@]}" -- "${programs[@]}"
    check "$clangxx -std=$std ${warn[*]}: the test files" each "$clangxx" -std=$std "${warn[@]}" -- "${tests[@]}"
  done
else
  echo "$clangxx is not installed: the clang++ checks are skipped"
fi

echo "$passed passed, $failed failed" | tee "$result"
[ "$failed" -eq 0 ]
