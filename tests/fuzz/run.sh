#!/usr/bin/env bash
# Runs one libFuzzer target of tests/fuzz on a seed corpus built here from
# cddp's own writers (so the seeds follow the formats as they are today).
#
#   run.sh FUZZER CDDP WORKDIR ci
#       CI: replays the seeds, then FUZZ_RUNS (default 4000) new inputs from
#       the fixed seed 1 in a fresh corpus: bounded (not bit-reproducible:
#       libFuzzer's schedule also depends on execution times).
#   run.sh FUZZER CDDP WORKDIR local [SECONDS]
#       Longer local run (default 600 s) that keeps its corpus in
#       WORKDIR/corpus between runs, e.g. from the build directory of
#       scripts/test-sanitizers.sh:
#         bash tests/fuzz/run.sh build-sanitize/tests/fuzz/fuzz_dataset \
#           build-sanitize/cddp /tmp/fuzz-dataset local 3600
#
# tests/fuzz/regressions/TARGET-*: inputs that crashed a reader before a fix;
# they join the seeds. tests/fuzz/hdf5-defects/: inputs that crash HDF5 1.10
# itself (see classify below), kept for reproduction, not seeds.
# A finding (crash, sanitizer report, timeout, allocation over the limit)
# leaves WORKDIR/crash-*, leak-*, timeout-* or oom-* with the input; replay it
# with `FUZZER FILE`. Leak detection is off: rejecting an input ends in
# cddp_die, which the targets turn into a longjmp; fuzz_reclaim.c releases
# what cddp's code held, but HDF5's and libc's internals may keep a little.
set -euo pipefail
FUZZER=$1 CDDP=$2 W=$3 MODE=$4 SECONDS_LOCAL=${5:-600}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
# A damaged HDF5 header can make HDF5 itself ask for terabytes: such an
# allocation fails (NULL) and HDF5 reports an error, as it does without ASan;
# resident memory past 2 GB (-rss_limit_mb) is still a finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
name=$(basename "$FUZZER")
name=${name#fuzz_}
mkdir -p "$W"
S=$W/seeds
rm -rf "$S"
mkdir -p "$S"

# contiguous copy of an HDF5 file (cddp's writers chunk by 10k rows, far too
# big a seed for a fuzzer): h5repack keeps every attribute
small_h5() { h5repack -l CONTI "$1" "$2"; }

case $name in
criteo)
  sample=$SRC/tests/data/criteo-sample-1999.tsv
  head -n 3 "$sample" >"$S/three-lines.tsv"
  sed -n 10p "$sample" >"$S/one-line.tsv"
  sed -n 20,24p "$sample" | gzip -c >"$S/five-lines.tsv.gz"
  # empty fields, negative integers, CRLF, a short line, a stray label
  printf '1\t\t-1\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\r\n0\t1\t2\n2\n' \
    >"$S/edge.tsv" ;;
idx)
  # IDX images [N=3, 4, 2] + labels [3]; the target's input is a 2-byte
  # big-endian length of the images file, then the images, then the labels.
  idx_pair() {
    local out=$1 img=$2 lab=$3
    local n
    n=$(stat -c %s "$img")
    printf "\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))" >"$out"
    cat "$img" "$lab" >>"$out"
  }
  printf '\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x04\x00\x00\x00\x02' >"$W/img.idx"
  printf '\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0\xff\x01\x02\x03\x04\x05\x06\x07' >>"$W/img.idx"
  printf '\x00\x00\x08\x01\x00\x00\x00\x03\x00\x01\x02' >"$W/lab.idx"
  idx_pair "$S/plain" "$W/img.idx" "$W/lab.idx"
  gzip -c "$W/img.idx" >"$W/img.idx.gz"
  gzip -c "$W/lab.idx" >"$W/lab.idx.gz"
  idx_pair "$S/gzip" "$W/img.idx.gz" "$W/lab.idx.gz"
  rm -f "$W"/img.idx* "$W"/lab.idx* ;;
dataset)
  "$CDDP" gen ctr "$W/ctr.h5" --rows 6 --seed 1 --table-size 40 --quiet
  "$CDDP" gen twotower "$W/tt.h5" --rows 6 --seed 1 --num-users 5 --num-items 60 --num-cats 3 \
    --hist-len 2 --quiet
  "$CDDP" gen images "$W/img.h5" --rows 6 --seed 1 --height 4 --width 4 --num-classes 3 --quiet
  for f in ctr tt img; do small_h5 "$W/$f.h5" "$S/$f.h5"; done
  # chunked by two rows, gzip: the HDF5 (not mmap) read path
  h5repack -l images:CHUNK=2x4x4x1 -l labels:CHUNK=2 -f GZIP=1 "$S/img.h5" "$S/img-gzip.h5"
  rm -f "$W"/ctr.h5 "$W"/tt.h5 "$W"/img.h5 ;;
checkpoint)
  # the target's model: dlrm tiny, 26 tables of 40 rows (hashing gives every
  # table exactly --table-size rows), SGD with momentum
  "$CDDP" convert criteo "$SRC/tests/data/criteo-sample-1999.tsv" "$W/c.h5" --table-size 40 --quiet
  rm -rf "$W/ck"
  "$CDDP" train --model dlrm --variant tiny --train "$W/c.h5" --batch 16 --max-steps 2 --momentum 0.9 \
    --threads 1 --quiet --checkpoint-dir "$W/ck" >/dev/null
  cp "$W"/ck/ckpt-*.h5 "$S/"
  rm -rf "$W/ck" "$W/c.h5" ;;
*) echo "run.sh: no seeds for target '$name'" >&2; exit 2 ;;
esac

# inputs that once crashed a target stay in its seeds
for f in "$SRC/tests/fuzz/regressions/$name"-*; do [ -e "$f" ] && cp "$f" "$S/"; done

opts=(-close_fd_mask=3 -detect_leaks=0 -rss_limit_mb=2048 -malloc_limit_mb=1048576 -timeout=20 -artifact_prefix="$W/")
# HDF5 1.10 trusts the messages of an object header, so a damaged header can
# crash it inside calls cddp makes correctly (H5Aexists, H5Dread); cddp's
# readers validate what HDF5 leaves to them (src/data/dataset.c), the rest
# belongs to HDF5. A finding whose innermost frame outside libc and the
# sanitizer's interceptors is in libhdf5 is reported as an HDF5 defect and
# does not fail the run; any other finding does.
classify() {
  awk '/^ *#[0-9]+ / && !done {
         if ($0 ~ /in (__interceptor_|__asan_|__ubsan_|__sanitizer_)/ || $0 ~ /in (strdup|strlen|memcpy|memmove|memset|strcmp|malloc|calloc|realloc|free) \(/) next
         if ($0 ~ /libc\.so|sysdeps\//) next
         done = 1; print ($0 ~ /libhdf5/ ? "hdf5" : "cddp") }
       END { if (!done) print "cddp" }' "$1"
}
log=$W/fuzz.log
rc=0
if [ "$MODE" = ci ]; then
  rm -rf "$W/corpus"
  mkdir -p "$W/corpus"
  "$FUZZER" "${opts[@]}" -seed=1 -runs="${FUZZ_RUNS:-4000}" "$W/corpus" "$S" >"$log" 2>&1 || rc=$?
else
  mkdir -p "$W/corpus"
  "$FUZZER" "${opts[@]}" -max_total_time="$SECONDS_LOCAL" -print_final_stats=1 "$W/corpus" "$S" >"$log" 2>&1 || rc=$?
fi
grep -v '^#[0-9]' "$log" | tail -60
# scratch files of a target that crashed (it cleans up after every input it survives)
for f in /dev/shm/cddp-fuzz-*; do
  pid=${f#/dev/shm/cddp-fuzz-}
  pid=${pid%%-*}
  [ -e "$f" ] && ! kill -0 "$pid" 2>/dev/null && rm -f "$f"
done
if [ $rc != 0 ] && [ "$(classify "$log")" = hdf5 ]; then
  echo "fuzz $name: a defect inside HDF5 (not cddp's code), input: $(ls "$W"/crash-* "$W"/oom-* 2>/dev/null | tail -1)"
  exit 0
fi
exit $rc
