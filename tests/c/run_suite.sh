#!/usr/bin/env bash
# Runs C test programs and adds up their "N passed, M failed" lines.
# Usage: run_suite.sh RESULT_FILE PROGRAM...
# A program that ends without that line (crash, sanitizer abort) counts as one failure.
# Writes the total to RESULT_FILE and prints it last; exits non-zero on any failure.
set -u
result=$1
shift
passed=0
failed=0
for prog in "$@"; do
  echo "== $prog"
  out=$("$prog" 2>&1)
  code=$?
  printf '%s\n' "$out"
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  if [ -z "$line" ]; then
    echo "   (no summary line, exit $code: counted as 1 failure)"
    failed=$((failed + 1))
    continue
  fi
  p=${line%% passed*}
  f=${line#*, }
  f=${f%% failed*}
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$code" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "   (exit $code after all passed: counted as 1 failure)"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed" > "$result"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
