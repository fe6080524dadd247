#!/usr/bin/env bash
# Checkpoint faults: an unusable --checkpoint-dir is refused at start-up (exit
# 2, the OS reason, before any step); a full disk fails the write with "No
# space left on device" and leaves no temporary file; links planted at the
# temporary or final name are never followed; a corrupted checkpoint (one
# flipped byte inside /model) is refused by its checksum (exit 3) and
# --resume auto falls back to the previous one; checkpoints without checksums
# (older cddp) still load; a --metrics-out write failure gives exit 1.
# The read-only and full-disk cases mount small tmpfs file systems; where the
# sandbox refuses the mount, those cases are reported as not run.
# usage: test_ckpt_faults.sh CDDP CKPT_CORRUPT
set -u
CDDP=$1 CORRUPT=$2
W=$(mktemp -d /tmp/cddp_ckpt_faults.XXXXXX)
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
"$CDDP" gen ctr "$W/ctr.h5" --rows 1200 --seed 2 --table-size 40 --quiet || exit 1
RUN=(train --model dlrm --variant tiny --train "$W/ctr.h5" --batch 32 --lr 0.1 --threads 1
     --progress plain --log-every 10)

# expect NAME RC REGEX cddp-args...: exit status and a matching line
expect() {
  local name=$1 want=$2 re=$3
  shift 3
  local out
  out=$("$CDDP" "$@" 2>&1)
  local rc=$?
  if [ $rc = "$want" ] && grep -Eq -- "$re" <<<"$out"; then ok "$name"
  else fail "$name: rc $rc (want $want), no /$re/ in:"; head -n 8 <<<"$out"; fi
  LAST=$out
}

# ---- start-up check of --checkpoint-dir ------------------------------------------
expect "dir under /proc" 2 "checkpoint-dir /proc/x/ck: cannot create /proc/x: No such file or directory" \
  "${RUN[@]}" --max-steps 5 --checkpoint-dir /proc/x/ck
grep -q "^step" <<<"$LAST" && fail "dir under /proc: trained before refusing"
touch "$W/afile"
expect "dir under a file" 2 "cannot create .*afile/ck: Not a directory" "${RUN[@]}" --max-steps 5 \
  --checkpoint-dir "$W/afile/ck"
try_mount() { # DIR OPTIONS
  mkdir -p "$1" && mount -t tmpfs -o "$2" tmpfs "$1" 2>"$W/mount.err" && mounts+=("$1")
}
if try_mount "$W/ro" size=1m,ro; then
  expect "read-only dir" 2 "checkpoint-dir .*/ro: cannot write a file there: Read-only file system" \
    "${RUN[@]}" --max-steps 5 --checkpoint-dir "$W/ro"
else
  echo "not run: read-only dir (mount refused: $(cat "$W/mount.err"))"
fi

# ---- a full disk -------------------------------------------------------------------
if try_mount "$W/full" size=16k; then
  expect "full disk" 1 "checkpoint .*ckpt-0000000005.h5: .* failed: No space left on device" \
    "${RUN[@]}" --max-steps 5 --checkpoint-dir "$W/full"
  [ -z "$(ls -A "$W/full")" ] && ok "full disk: nothing left behind" ||
    fail "full disk left: $(ls -A "$W/full")"
else
  echo "not run: full disk (mount refused: $(cat "$W/mount.err"))"
fi

# ---- planted links -----------------------------------------------------------------
mkdir -p "$W/links"
echo precious >"$W/target"
ln -s ../target "$W/links/.ckpt-0000000005.h5.tmp"
ln -s ../target "$W/links/ckpt-0000000005.h5"
expect "planted links" 0 "^done:" "${RUN[@]}" --max-steps 5 --checkpoint-dir "$W/links"
if [ "$(cat "$W/target")" = precious ] && [ -f "$W/links/ckpt-0000000005.h5" ] &&
   [ ! -L "$W/links/ckpt-0000000005.h5" ]; then ok "planted links: target intact, real file written"
else fail "planted links: target '$(head -c 20 "$W/target")', $(ls -la "$W/links")"; fi

# ---- checksums -------------------------------------------------------------------
C=$W/sums
expect "checkpoints 20 40" 0 "^done:" "${RUN[@]}" --max-steps 40 --checkpoint-every 20 --checkpoint-dir "$C"
"$CORRUPT" "$C/ckpt-0000000040.h5" /model/top_l.0.weight >/dev/null || fail "corrupt tool"
expect "explicit corrupt resume: exit 3" 3 "ckpt-0000000040.h5: /model/top_l.0.weight: checksum mismatch" \
  "${RUN[@]}" --max-steps 60 --resume "$C/ckpt-0000000040.h5"
expect "cddp eval of a corrupt checkpoint: exit 3" 3 "checksum mismatch" \
  eval --checkpoint "$C/ckpt-0000000040.h5" --data "$W/ctr.h5" --threads 1
expect "resume auto falls back" 0 "ckpt-0000000040.h5 is unusable \(/model/top_l.0.weight: checksum mismatch.*falling back" \
  "${RUN[@]}" --max-steps 60 --checkpoint-every 20 --checkpoint-dir "$C" --resume auto
grep -q "resumed from .*ckpt-0000000020.h5: step 20" <<<"$LAST" && ok "resumed from step 20" ||
  fail "fallback did not resume from step 20"
# a checkpoint of an older cddp: no checksum filter, contiguous datasets
if command -v h5repack >/dev/null; then
  h5repack -f NONE -l CONTI "$C/ckpt-0000000060.h5" "$W/old.h5" &&
    expect "checkpoint without checksums loads" 0 "no checksums \(written by an older cddp\): loaded without verification" \
      eval --checkpoint "$W/old.h5" --data "$W/ctr.h5" --threads 1
else
  echo "not run: old-format checkpoint (no h5repack)"
fi

# ---- metrics write failure ---------------------------------------------------------
expect "metrics to /dev/full: exit 1" 1 "metrics-out /dev/full: write failed: No space left on device" \
  "${RUN[@]}" --max-steps 20 --metrics-out /dev/full
[ "$(grep -c "write failed" <<<"$LAST")" = 1 ] && ok "reported once" || fail "reported $(grep -c "write failed" <<<"$LAST") times"

echo "$fails failure(s)"
[ $fails = 0 ]
