#!/usr/bin/env bash
# Runs doctest binaries (each bounded to 5 minutes) and adds up their
# "[doctest] test cases: N | P passed | F failed" lines into one "P passed, F failed".
# Usage: run_doctest.sh RESULT_FILE PROGRAM...
# A program that ends without that line (crash, timeout), or that exits non-zero after all
# passed (a LeakSanitizer report at exit), counts one more failure.
set -u
result=$1
shift
passed=0
failed=0
for prog in "$@"; do
  echo "== $prog"
  out=$(timeout 300 "$prog" 2>&1)
  code=$?
  printf '%s\n' "$out" | tail -n 40
  line=$(printf '%s\n' "$out" | grep -E '^\[doctest\] test cases: ' | tail -n 1)
  if [ -z "$line" ]; then
    echo "   (no doctest summary, exit $code: counted as 1 failure)"
    failed=$((failed + 1))
    continue
  fi
  p=$(printf '%s\n' "$line" | sed -E 's/.*\| *([0-9]+) passed.*/\1/')
  f=$(printf '%s\n' "$line" | sed -E 's/.*\| *([0-9]+) failed.*/\1/')
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$code" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "   (exit $code after all passed: counted as 1 failure)"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed" | tee "$result"
[ "$failed" -eq 0 ]
