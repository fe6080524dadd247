#!/bin/sh
# expect_fail.sh STATUS SECONDS REGEX COMMAND...
# Runs COMMAND; passes if it ends within SECONDS with exit status STATUS
# ("nonzero" accepts any failure) and its output matches the extended REGEX.
want=$1 limit=$2 regex=$3
shift 3
out=$(timeout -k 5 "$limit" "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "expect_fail: FAILED: still running after $limit s (a hang)"; exit 1
fi
if [ "$want" = nonzero ]; then
  [ "$rc" -ne 0 ] || { echo "expect_fail: FAILED: exit status 0, wanted a failure"; exit 1; }
elif [ "$rc" -ne "$want" ]; then
  echo "expect_fail: FAILED: exit status $rc, wanted $want"; exit 1
fi
printf '%s\n' "$out" | grep -Eq -- "$regex" || { echo "expect_fail: FAILED: no line matches /$regex/"; exit 1; }
echo "expect_fail: ok (status $rc, message found)"
