#!/usr/bin/env bash
# Two "hosts" on one Linux machine: network namespaces PREFIX-h1 and PREFIX-h2
# joined by a veth pair (10.77.0.1 <-> 10.77.0.2, interface veth0 in each),
# each with its own hostname (a persistent UTS namespace) and an /etc/hosts
# that names both. Open MPI starts its daemons on the other host through the
# `rsh` subcommand below (plm_rsh_agent) instead of ssh, and its TCP traffic is
# kept on the veth, so bytes between ranks on different hosts really cross the
# link, whose rate can be limited with tc's token bucket filter (tbf; this
# needs no netem). Needs root, iproute2 (ip, tc) and util-linux (nsenter,
# unshare).
#
#   netns-hosts.sh [-p PREFIX] up [RATE]   create both hosts; RATE as tc writes it
#                                          (1gbit, 100mbit; default: unlimited)
#   netns-hosts.sh [-p PREFIX] down        remove them (kills what still runs there)
#   netns-hosts.sh [-p PREFIX] rate RATE|off     change the limit (both directions)
#   netns-hosts.sh [-p PREFIX] exec HOST CMD...  run CMD on HOST (h1 or PREFIX-h1)
#   netns-hosts.sh [-p PREFIX] bytes       bytes sent h1->h2 and h2->h1 so far
#   netns-hosts.sh [-p PREFIX] mpi-env     the OMPI_MCA_* settings, for `eval`
#   netns-hosts.sh rsh HOST CMD...         Open MPI's launch agent (see mpi-env)
#
# Typical use (a hostfile names PREFIX-h1 and PREFIX-h2):
#   tests/multihost/netns-hosts.sh up 1gbit
#   eval "$(tests/multihost/netns-hosts.sh mpi-env)"
#   tests/multihost/netns-hosts.sh exec h1 launch/cddp-mpirun.sh -n 3 -H hosts train ...
#   tests/multihost/netns-hosts.sh down
# Several PREFIXes can coexist (each pair is isolated; all use 10.77.0.0/24).
# Exit codes: 0 ok, 2 usage, 77 the sandbox refuses a step (the message says which).
set -euo pipefail
SELF=$(readlink -f "$0")
PREFIX=${CDDP_NETNS_PREFIX:-cddp}
if [ "${1:-}" = "-p" ]; then PREFIX=$2; shift 2; fi
NET=10.77.0
STATE=/run/cddp-netns

usage() { sed -n '2,29p' "$SELF" >&2; exit 2; }
# host NAME: h1/h2 or the full namespace name -> namespace name
host() { case $1 in h1 | h2) echo "$PREFIX-$1" ;; *) echo "$1" ;; esac; }
refused() { echo "netns-hosts: refused by this machine: $*" >&2; exit 77; }

# Runs CMD inside a host: its network namespace (ip netns exec also mounts
# /etc/netns/NS/hosts over /etc/hosts) and its UTS namespace (hostname).
in_host() {
  local ns
  ns=$(host "$1")
  shift
  exec ip netns exec "$ns" nsenter --uts="$STATE/$ns.uts" -- "$@"
}

set_rate() {
  local rate=$1 i
  for i in 1 2; do
    if [ "$rate" = off ]; then
      ip -n "$PREFIX-h$i" link set veth0 up
      tc -n "$PREFIX-h$i" qdisc del dev veth0 root 2>/dev/null || true
    else
      # burst: 2 ms of traffic (at least 32 KiB) so the kernel's timer tick
      # does not cap the rate; latency bounds the queue.
      local bits
      bits=$(tc_bits "$rate")
      local burst=$((bits / 8 / 500))
      [ $burst -ge 32768 ] || burst=32768
      tc -n "$PREFIX-h$i" qdisc replace dev veth0 root tbf rate "$rate" burst "$burst" latency 50ms ||
        refused "tc qdisc tbf on veth0 of $PREFIX-h$i"
    fi
  done
}
# tc_bits RATE: bits per second of a tc rate (kbit, mbit, gbit; bit suffix only)
tc_bits() {
  local r=${1,,} m=1
  case $r in
  *gbit) m=1000000000 r=${r%gbit} ;;
  *mbit) m=1000000 r=${r%mbit} ;;
  *kbit) m=1000 r=${r%kbit} ;;
  *bit) r=${r%bit} ;;
  *) echo "netns-hosts: rate '$1': use kbit, mbit or gbit" >&2; exit 2 ;;
  esac
  [[ $r =~ ^[0-9]+$ ]] || { echo "netns-hosts: rate '$1' is not a number" >&2; exit 2; }
  echo $((r * m))
}

down() {
  local i ns pids
  for i in 1 2; do
    ns=$PREFIX-h$i
    if [ -e "/run/netns/$ns" ]; then
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
      ip netns del "$ns" 2>/dev/null || true
    fi
    if [ -e "$STATE/$ns.uts" ]; then umount "$STATE/$ns.uts" 2>/dev/null || true; rm -f "$STATE/$ns.uts"; fi
    rm -rf "/etc/netns/$ns"
  done
}

up() {
  local rate=${1:-} i ns
  [ "$(id -u)" = 0 ] || refused "not root"
  command -v ip >/dev/null && command -v tc >/dev/null || refused "ip/tc missing (install iproute2)"
  command -v nsenter >/dev/null && command -v unshare >/dev/null || refused "nsenter/unshare missing"
  [ -z "$rate" ] || tc_bits "$rate" >/dev/null
  down
  mkdir -p "$STATE"
  for i in 1 2; do
    ns=$PREFIX-h$i
    ip netns add "$ns" || refused "ip netns add $ns"
    ip -n "$ns" link set lo up
    touch "$STATE/$ns.uts"
    unshare --uts="$STATE/$ns.uts" hostname "$ns" || { down; refused "unshare --uts (hostname of $ns)"; }
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n%s.1 %s-h1\n%s.2 %s-h2\n' "$NET" "$PREFIX" "$NET" "$PREFIX" \
      >"/etc/netns/$ns/hosts"
  done
  ip link add veth0 netns "$PREFIX-h1" type veth peer name veth0 netns "$PREFIX-h2" ||
    { down; refused "ip link add ... type veth"; }
  for i in 1 2; do
    ip -n "$PREFIX-h$i" addr add "$NET.$i/24" dev veth0
    ip -n "$PREFIX-h$i" link set veth0 up
  done
  # Reachability without ping: a TCP connect to a closed port of h2 is
  # answered at once with "Connection refused"; a dead link times out.
  local probe
  probe=$(ip netns exec "$PREFIX-h1" timeout 3 bash -c "exec 3<>/dev/tcp/$NET.2/9" 2>&1 || true)
  case $probe in
  *refused*) ;;
  *) down; refused "no answer from $PREFIX-h2 over the veth ($probe)" ;;
  esac
  [ -z "$rate" ] || set_rate "$rate"
  echo "hosts $PREFIX-h1 ($NET.1) and $PREFIX-h2 ($NET.2) up${rate:+, link $rate}"
}

bytes() {
  local a b
  a=$(ip netns exec "$PREFIX-h1" cat /sys/class/net/veth0/statistics/tx_bytes)
  b=$(ip netns exec "$PREFIX-h2" cat /sys/class/net/veth0/statistics/tx_bytes)
  echo "$a $b"
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case $cmd in
up) up "${1:-}" ;;
down) down ;;
rate) [ $# = 1 ] || usage; set_rate "$1" ;;
exec) [ $# -ge 2 ] || usage; in_host "$@" ;;
bytes) bytes ;;
mpi-env)
  # Daemons start through `rsh`; out-of-band and MPI TCP traffic stay on the
  # veth subnet; ranks on one host use shared memory, across hosts TCP.
  echo "export OMPI_MCA_plm_rsh_agent='$SELF rsh'"
  echo "export OMPI_MCA_oob_tcp_if_include=$NET.0/24 OMPI_MCA_btl_tcp_if_include=$NET.0/24"
  echo "export OMPI_MCA_btl=self,vader,tcp" ;;
rsh)
  # Open MPI calls the agent as ssh: HOST then the words of a shell command.
  [ $# -ge 2 ] || usage
  h=$1
  shift
  in_host "$h" sh -c "$*" ;;
*) usage ;;
esac
