#!/usr/bin/env bash
# A real two-node Slurm cluster on one machine: Debian's slurm-wlm (slurmctld,
# slurmd) and munge, the nodes being the two network-namespace hosts of
# netns-hosts.sh (slurmctld and the first slurmd on PREFIX-h1, the second
# slurmd on PREFIX-h2, NodeAddr = their veth addresses). Everything lives in
# one state directory: slurm.conf, a private munged (own key and socket),
# spool, logs. Needs root and the packages slurm-wlm and munge.
#
#   slurm-cluster.sh [-p PREFIX] [-d DIR] up      hosts (if not up), munged, slurmctld, 2 slurmd
#   slurm-cluster.sh [-p PREFIX] [-d DIR] down    stop the daemons, remove the hosts
#   slurm-cluster.sh [-p PREFIX] [-d DIR] run CMD...   CMD on PREFIX-h1 with SLURM_CONF set
#                                                 (sbatch, squeue, scancel, sacct, scontrol)
# DIR defaults to /tmp/cddp-slurm-PREFIX. Each node offers CPUS (default 2)
# CPUs whatever the machine has (SlurmdParameters=config_overrides).
# Exit codes: 0 ok, 2 usage, 77 the machine refuses a step or lacks Slurm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PREFIX=${CDDP_NETNS_PREFIX:-cddp}
D=""
while [ $# -gt 0 ]; do
  case $1 in
  -p) PREFIX=$2; shift 2 ;;
  -d) D=$2; shift 2 ;;
  *) break ;;
  esac
done
D=${D:-/tmp/cddp-slurm-$PREFIX}
NH=("$here/netns-hosts.sh" -p "$PREFIX")
CPUS=${CPUS:-2}
refused() { echo "slurm-cluster: $*" >&2; exit 77; }

conf() {
  cat <<EOF
ClusterName=cddp
SlurmctldHost=$PREFIX-h1(10.77.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool-%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd-%n.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=3600
NodeName=$PREFIX-h1 NodeAddr=10.77.0.1 CPUs=$CPUS State=UNKNOWN
NodeName=$PREFIX-h2 NodeAddr=10.77.0.2 CPUs=$CPUS State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# on HOST CMD...: a daemon in HOST's network and UTS namespaces but the
# machine's mount namespace (`ip netns exec` remounts /sys, hiding the cgroup
# file system slurmd needs)
on() {
  local ns=$PREFIX-$1
  shift
  nsenter --net="/run/netns/$ns" --uts="/run/cddp-netns/$ns.uts" -- "$@"
}

# kill_pidfile FILE: ends the daemon whose pid the file holds
kill_pidfile() {
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}

down() {
  kill_pidfile "$D/slurmd-$PREFIX-h2.pid"
  kill_pidfile "$D/slurmd-$PREFIX-h1.pid"
  kill_pidfile "$D/slurmctld.pid"
  kill_pidfile "$D/munge/munged.pid"
  "${NH[@]}" down
}

up() {
  [ "$(id -u)" = 0 ] || refused "needs root"
  for b in slurmctld slurmd sbatch munged; do
    command -v $b >/dev/null || refused "$b not installed (apt-get install slurm-wlm munge)"
  done
  down
  "${NH[@]}" up || exit $?
  rm -rf "$D"
  mkdir -p "$D/state" "$D/munge"
  chmod 700 "$D/munge"
  conf >"$D/slurm.conf"
  # a private munged: its own key and socket, so a system munge is neither
  # needed nor touched
  dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$D/munge/munge.key"
  munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" \
    --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
    --seed-file="$D/munge/munged.seed" || refused "munged did not start ($D/munge/munged.log)"
  export SLURM_CONF=$D/slurm.conf
  on h1 slurmctld || refused "slurmctld did not start ($D/slurmctld.log)"
  for i in 1 2; do
    mkdir -p "$D/spool-$PREFIX-h$i"
    on h$i slurmd -N "$PREFIX-h$i" || refused "slurmd on $PREFIX-h$i did not start ($D/slurmd-$PREFIX-h$i.log)"
  done
  # both nodes idle within 30 s
  for _ in $(seq 60); do
    if [ "$("${NH[@]}" exec h1 sinfo -h -N -o '%t' | grep -c idle)" = 2 ]; then
      echo "slurm: nodes $PREFIX-h1 and $PREFIX-h2 idle (SLURM_CONF=$SLURM_CONF)"
      return 0
    fi
    sleep 0.5
  done
  "${NH[@]}" exec h1 sinfo -N >&2 || true
  tail -5 "$D/slurmctld.log" >&2 || true
  refused "the nodes did not come up"
}

cmd=${1:-}
[ -n "$cmd" ] || { sed -n '2,16p' "$0" >&2; exit 2; }
shift
case $cmd in
up) up ;;
down) down ;;
run) SLURM_CONF=$D/slurm.conf exec "${NH[@]}" exec h1 "$@" ;;
*) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
