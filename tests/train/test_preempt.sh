#!/usr/bin/env bash
# Pre-emption: a stop signal during training makes every rank stop at the next
# step boundary, write a checkpoint of that step and exit 75 ("stopped,
# resumable"); --resume auto then continues bit-exactly (same parameters as a
# run that never stopped). Cases: SIGTERM to a single process; SIGUSR1 to
# mpirun (which forwards it to every rank); SIGTERM to one rank of two only.
# usage: test_preempt.sh CDDP CKPT_HASH MPIRUN
set -u
CDDP=$1 HASH=$2 MPIRUN=$3
W=$(mktemp -d /tmp/cddp_preempt.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

"$CDDP" gen ctr "$W/ctr.h5" --rows 2000 --seed 2 --table-size 40 --quiet || exit 1
# long enough (1000 epochs of 31 steps) that it is still running when signalled
RUN=(train --model dlrm --variant tiny --train "$W/ctr.h5" --batch 32 --lr 0.1 --momentum 0.9
     --max-steps 31000 --schedule cosine --threads 1 --progress plain --log-every 5)

# waits until FILE has a metrics line (training is under way), at most 60 s
wait_training() {
  for _ in $(seq 600); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

# case NAME NP TARGET SIGNAL: TARGET is "main" (the launched process) or "rank1"
preempt_case() {
  local name=$1 np=$2 target=$3 sig=$4 d=$W/${1// /_}
  local L=()
  [ "$np" = 2 ] && L=("$MPIRUN" --oversubscribe -np 2)
  mkdir -p "$d"
  "${L[@]}" "$CDDP" "${RUN[@]}" --checkpoint-dir "$d/a" --metrics-out "$d/m.jsonl" \
    >"$d/out" 2>&1 &
  local pid=$!
  wait_training "$d/m.jsonl" || { fail "$name: no training progress"; kill -KILL $pid; return; }
  if [ "$target" = rank1 ]; then
    # one of the ranks mpirun started (its children here); the other rank
    # gets nothing and must still stop at the same step
    local child=$(pgrep -P $pid | tail -n 1)
    kill -"$sig" "$child"
  else
    kill -"$sig" $pid
  fi
  wait $pid
  local rc=$?
  local step=$(sed -n 's/.*stopped by .* after step \([0-9]*\), checkpoint written.*/\1/p' "$d/out" | head -n 1)
  local f=$(printf 'ckpt-%010d.h5' "${step:-0}")
  local told=$(grep -c "SIG[A-Z0-9]*: stopping at the next step boundary" "$d/out")
  local want_told=$np
  [ "$target" = rank1 ] && want_told=1
  if [ $rc = 75 ] && [ -n "$step" ] && [ -f "$d/a/$f" ] && [ "$(ls "$d/a" | wc -l)" = 1 ] &&
     [ "$told" = "$want_told" ]; then
    ok "$name: exit 75, checkpoint of step $step"
  else
    fail "$name: rc $rc, step '${step}', $told rank(s) signalled, files: $(ls "$d/a" | tr '\n' ' ')"
    tail -n 15 "$d/out"; return
  fi
  # resume to step + 40 and compare with a run that never stopped
  local k=$((step + 40)) g=$(printf 'ckpt-%010d.h5' $((step + 40)))
  "${L[@]}" "$CDDP" "${RUN[@]}" --checkpoint-dir "$d/a" --resume auto --stop-after $k --quiet \
    >"$d/out.b" 2>&1 || { fail "$name: resume"; tail -n 15 "$d/out.b"; return; }
  "${L[@]}" "$CDDP" "${RUN[@]}" --checkpoint-dir "$d/c" --stop-after $k --quiet \
    >"$d/out.c" 2>&1 || { fail "$name: straight run"; tail -n 15 "$d/out.c"; return; }
  local hb=$("$HASH" "$d/a/$g") hc=$("$HASH" "$d/c/$g") hs=$("$HASH" "$d/a/$f")
  if [ -n "$hb" ] && [ "$hb" = "$hc" ] && [ "$hb" != "$hs" ]; then
    ok "$name: resume bit-exact at step $k ($hb)"
  else
    fail "$name: resumed $hb, straight $hc (at the signal: $hs)"
  fi
}

preempt_case "1 rank SIGTERM" 1 main TERM
preempt_case "2 ranks SIGUSR1 to mpirun" 2 main USR1
preempt_case "2 ranks SIGTERM to one rank" 2 rank1 TERM

# without --checkpoint-dir: stops at a step boundary, says nothing was saved, 128 + 15
"$CDDP" "${RUN[@]}" --metrics-out "$W/n.jsonl" >"$W/n.out" 2>&1 &
pid=$!
wait_training "$W/n.jsonl"
kill -TERM $pid
wait $pid
rc=$?
if [ $rc = 143 ] && grep -q "no --checkpoint-dir, so nothing was saved" "$W/n.out"; then
  ok "no checkpoint dir: exit 143"
else
  fail "no checkpoint dir: rc $rc"; tail -n 5 "$W/n.out"
fi

echo "$fails failure(s)"
[ $fails = 0 ]
