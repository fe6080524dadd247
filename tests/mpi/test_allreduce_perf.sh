#!/bin/sh
# bench/allreduce_perf on 2 ranks: the table in nccl-tests' format, back to
# back and spaced (--gap): every size present with 0 wrong elements, and a
# spaced time that does not include the 0.2 s of silence before each
# all-reduce; a bad --gap is a usage error (exit 2).
# usage: test_allreduce_perf.sh ALLREDUCE_PERF MPIRUN
set -u
perf=$1 mpirun=$2
fail() { echo "FAIL: $*"; exit 1; }
for gap in 0 200000; do
  out=$("$mpirun" --oversubscribe -np 2 "$perf" -b 4K -e 64K -f 4 -w 1 -n 3 --gap $gap) ||
    fail "--gap $gap exited $?"
  echo "$out"
  echo "$out" | grep -q "nRanks 2 .* gap_us: $gap\$" || fail "--gap $gap: header"
  rows=$(echo "$out" | awk '!/^#/ && NF == 9 && $9 == 0 && $6 > 0 && $6 < 200000 { n++ } END { print n + 0 }')
  [ "$rows" = 3 ] || fail "--gap $gap: $rows of 3 sizes with a time under 0.2 s and 0 wrong"
  echo "$out" | grep -q "Out of bounds values : 0 OK" || fail "--gap $gap: summary"
done
"$mpirun" --oversubscribe -np 2 "$perf" --gap -1 >/dev/null 2>&1
[ $? = 2 ] || fail "--gap -1 is not a usage error"
echo PASS
