#!/usr/bin/env bash
# `cddp train --trace` end to end: dlrm and vit (tiny variants) on 1 and 2
# ranks, with many small buckets, --no-overlap and --grad-accum 2; each trace
# must pass trace_check (valid JSON via json-c, tracks per rank, every bucket
# launched after its last ready parameter and completed after its launch,
# one clock across ranks). Bad --trace-steps, an unwritable --trace path and
# --trace on one rank only are usage errors (exit 2).
# With DEVICE=cuda (the emulated CUDA backend) every run uses --device cuda
# --comm nccl and the traces must carry device-timed GPU spans too.
# usage: test_trace.sh CDDP TRACE_CHECK MPIRUN [cpu|cuda]
set -u
CDDP=$1 CHECK=$2 MPIRUN=$3 DEVICE=${4:-cpu}
W=$(mktemp -d /tmp/cddp_trace.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$CDDP" gen ctr "$W/c.h5" --rows 1200 --seed 2 --table-size 40 --quiet || exit 1
"$CDDP" gen images "$W/i.h5" --rows 600 --seed 1 --height 8 --width 8 --quiet || exit 1
COMMON=(--max-steps 7 --threads 1 --batch 16 --progress plain --log-every 1000 --trace-steps 2:6
        --device "$DEVICE")
GPU=()
[ "$DEVICE" = cuda ] && GPU=(--gpu)
SMALL=(--bucket-mb 0.0005 --first-bucket-mb 0.0001)

# case NAME NP ARGS...
case_() {
  local name=$1 np=$2
  shift 2
  local out="$W/$name.json"
  if ! timeout 120 "$MPIRUN" --oversubscribe -np "$np" "$CDDP" train "${COMMON[@]}" \
      --trace "$out" "$@" > "$W/$name.log" 2>&1; then
    fail "$name: cddp train failed"; cat "$W/$name.log"; return
  fi
  grep -q "trace: $out" "$W/$name.log" || fail "$name: no 'trace:' line"
  echo "== $name"
  "$CHECK" "$out" "$np" 5 "${GPU[@]}" || fail "$name: trace_check"
}
DLRM=(--model dlrm --variant tiny --train "$W/c.h5")
VIT=(--model vit --variant tiny --train "$W/i.h5")
case_ dlrm_np1 1 "${DLRM[@]}" "${SMALL[@]}"
case_ dlrm_np2 2 "${DLRM[@]}" "${SMALL[@]}"
case_ vit_np2 2 "${VIT[@]}" "${SMALL[@]}"
case_ vit_np2_default 2 "${VIT[@]}"
case_ vit_np2_no_overlap 2 "${VIT[@]}" "${SMALL[@]}" --no-overlap
case_ dlrm_np2_accum 2 "${DLRM[@]}" "${SMALL[@]}" --grad-accum 2 --batch 8

# negative control: the checker rejects a trace whose bucket launches before its last ready
python3 - "$W/dlrm_np2.json" "$W/bad.json" <<'PY' || fail "could not build the negative control"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
ars = [e for e in ev if e.get("name") == "all-reduce" and e["pid"] == 1 and e["tid"] >= 1000]
for ar in ars:  # the first one launched after two or more ready parameters
    r = sorted(e["ts"] for e in ev if e.get("ph") == "i" and e["pid"] == 1 and
               e["tid"] == ar["tid"] and e["ts"] <= ar["ts"])
    if len(r) >= 2 and r[-2] < r[-1]:
        ar["ts"] = 0.5 * (r[-2] + r[-1])
        break
else:
    sys.exit(1)
json.dump(d, open(sys.argv[2], "w"))
PY
if "$CHECK" "$W/bad.json" 2 5 > "$W/bad.log" 2>&1; then fail "negative control passed"
else grep -q "before its last ready parameter" "$W/bad.log" || { fail "negative control: wrong message"; cat "$W/bad.log"; }; fi
if "$CHECK" "$W/dlrm_np2.json" 2 4 > /dev/null 2>&1; then fail "wrong step count accepted"; fi

# usage errors
"$CDDP" train "${DLRM[@]}" "${COMMON[@]}" --trace "$W/x.json" --trace-steps 5:3 > "$W/u1.log" 2>&1
rc=$?; [ $rc -eq 2 ] && grep -q -- "--trace-steps 5:3" "$W/u1.log" || fail "--trace-steps 5:3: exit $rc"
"$CDDP" train "${DLRM[@]}" "${COMMON[@]}" --trace "$W/no/such/dir/x.json" > "$W/u2.log" 2>&1
rc=$?; [ $rc -eq 2 ] && grep -q "cannot open for writing" "$W/u2.log" || fail "unwritable --trace: exit $rc"

# --trace on rank 1 only: a usage error on every rank, not a hang in the clock exchange
cat > "$W/rank1.sh" <<SH
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "\$@" --trace "$W/r1.json"; else exec "\$@"; fi
SH
timeout 60 "$MPIRUN" --oversubscribe -np 2 sh "$W/rank1.sh" "$CDDP" train "${DLRM[@]}" "${COMMON[@]}" \
  > "$W/u3.log" 2>&1
rc=$?; [ $rc -eq 2 ] && grep -q -- "--trace is given on some ranks only" "$W/u3.log" ||
  { fail "--trace on one rank: exit $rc"; cat "$W/u3.log"; }

[ $fails -eq 0 ] && echo "test_trace: all passed" || echo "test_trace: $fails failures"
exit $((fails > 0))
