#!/usr/bin/env bash
# Two hosts on one machine (netns-hosts.sh): launch/cddp-mpirun.sh with a
# hostfile of both hosts places ranks per host with per-host local ranks, the
# ranks' traffic crosses the veth (byte counters), and training across the
# hosts equals training on one rank:
#  - 1 rank on h1 + 2 on h2: the start-up placement lines, bytes both ways
#    over the veth, and the final parameters equal 1 rank x 3B;
#  - control: 2 ranks both on h1 send (almost) nothing over the veth;
#  - tests/cli/equiv.sh dlrm with its mpirun replaced by mpirun-hosts.sh: every
#    equivalence case on 2 (1+1) and 4 (2+2) ranks across the hosts.
# Exit 77 (skip) when the machine refuses namespaces, veth or tc, with the reason.
# usage: test_two_hosts.sh CDDP CKPT_COMPARE
set -u
CDDP=$1 CMP=$2
here=$(cd "$(dirname "$0")" && pwd)
NH=$here/netns-hosts.sh
export CDDP_NETNS_PREFIX=cddp$$
W=$(mktemp -d /tmp/cddp_two_hosts.XXXXXX)
"$NH" up
rc=$?
if [ $rc != 0 ]; then rm -rf "$W"; exit $rc; fi
trap '"$NH" down; rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
P=$CDDP_NETNS_PREFIX
eval "$("$NH" mpi-env)"
export CDDP

"$CDDP" gen ctr "$W/d.h5" --rows 1200 --seed 2 --table-size 40 --quiet || exit 1
K=10
TRAIN=(train --model dlrm --variant tiny --train "$W/d.h5" --seed 7 --lr 0.1 --max-steps $K
       --threads 1 --progress plain --log-every 1000)
CK=$(printf 'ckpt-%010d.h5' $K)

# hosts FILE H1_SLOTS H2_SLOTS: an Open MPI hostfile (0 slots: host left out)
hosts() {
  : >"$1"
  [ "$2" = 0 ] || echo "$P-h1 slots=$2" >>"$1"
  [ "$3" = 0 ] || echo "$P-h2 slots=$3" >>"$1"
}
# on_hosts NAME NP HOSTFILE ARGS...: cddp on the hosts, log in $W/NAME.log
on_hosts() {
  local name=$1 np=$2 hf=$3
  shift 3
  "$NH" exec h1 "$here/../../launch/cddp-mpirun.sh" -n "$np" -H "$hf" "${TRAIN[@]}" "$@" \
    --checkpoint-dir "$W/$name" >"$W/$name.log" 2>&1 ||
    { fail "$name: exit $?"; tail -5 "$W/$name.log"; return 1; }
}
sent() { "$NH" bytes; }

# 1 + 2 ranks
hosts "$W/h12.hosts" 1 2
read -r a0 b0 < <(sent)
on_hosts h12 3 "$W/h12.hosts" --batch 32
read -r a1 b1 < <(sent)
grep -qx "host $P-h1: rank 0 (local 0); 1 rank" "$W/h12.log" &&
  grep -qx "host $P-h2: rank 1 (local 0), rank 2 (local 1); 2 ranks" "$W/h12.log" &&
  echo "ok: placement: $(grep '^host ' "$W/h12.log" | tr '\n' ' ')" ||
  { fail "placement lines"; grep '^host ' "$W/h12.log"; }
# rank 0 (h1) broadcasts the initial parameters to h2; h2's ranks send their
# gradient contributions back every step.
params=$(sed -n 's/.* \([0-9]*\) parameters$/\1/p' "$W/h12.log" | head -1)
up=$((a1 - a0)) down=$((b1 - b0))
if [ -n "$params" ] && [ $up -ge $((4 * params)) ] && [ $down -ge $((K * 4096)) ]; then
  echo "ok: veth carried $up bytes h1->h2, $down bytes h2->h1 ($params parameters, $K steps)"
else
  fail "veth carried $up bytes h1->h2 (want >= 4 x ${params:-?} parameters), $down h2->h1 (want >= $((K * 4096)))"
fi
"$CDDP" "${TRAIN[@]}" --batch 96 --checkpoint-dir "$W/ref3" >"$W/ref3.log" 2>&1 || fail "1 rank x 96: exit $?"
out=$("$CMP" "$W/ref3/$CK" "$W/h12/$CK" 1e-5 2>&1) && echo "ok: 1+2 ranks x 32 vs 1 rank x 96: $out" ||
  fail "1+2 ranks x 32 vs 1 rank x 96: $out"

# control: both ranks on h1, nothing for the veth to carry but noise
hosts "$W/h1only.hosts" 2 0
read -r a0 b0 < <(sent)
on_hosts h1only 2 "$W/h1only.hosts" --batch 32
read -r a1 b1 < <(sent)
[ $((a1 - a0 + b1 - b0)) -lt 65536 ] && echo "ok: 2 ranks on h1: $((a1 - a0 + b1 - b0)) bytes over the veth" ||
  fail "2 ranks on h1 sent $((a1 - a0 + b1 - b0)) bytes over the veth"

# every equivalence case of tests/cli/equiv.sh across the two hosts
bash "$here/../cli/equiv.sh" "$CDDP" "$CMP" "$here/mpirun-hosts.sh" dlrm >"$W/equiv.log" 2>&1 &&
  echo "ok: equiv.sh dlrm across two hosts: $(grep -c '^ok:' "$W/equiv.log") comparisons" ||
  { fail "equiv.sh dlrm across two hosts"; grep -v '^ok:' "$W/equiv.log" | tail -20; }
echo "$fails failure(s)"
[ $fails = 0 ]
