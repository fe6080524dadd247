#!/usr/bin/env bash
# An mpirun look-alike for scripts that call `MPIRUN [--oversubscribe] -np N
# PROGRAM ARGS...` (tests/cli/equiv.sh): runs the N ranks on the two namespace
# hosts of netns-hosts.sh (prefix $CDDP_NETNS_PREFIX, hosts already up),
# ceil(N/2) on h1 and the rest on h2, through launch/cddp-mpirun.sh started on
# h1. PROGRAM must be cddp (the launcher's CDDP).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PREFIX=${CDDP_NETNS_PREFIX:?set CDDP_NETNS_PREFIX}
np=""
while [ $# -gt 0 ]; do
  case $1 in
  --oversubscribe) shift ;;
  -np | -n) np=$2; shift 2 ;;
  *) break ;;
  esac
done
[ -n "$np" ] && [ $# -ge 2 ] || { echo "usage: $0 [--oversubscribe] -np N CDDP ARGS..." >&2; exit 2; }
bin=$1
shift
hf=$(mktemp /tmp/cddp_hosts.XXXXXX)
trap 'rm -f "$hf"' EXIT
h1=$(((np + 1) / 2))
echo "$PREFIX-h1 slots=$h1" >"$hf"
[ $((np - h1)) = 0 ] || echo "$PREFIX-h2 slots=$((np - h1))" >>"$hf"
eval "$("$here/netns-hosts.sh" -p "$PREFIX" mpi-env)"
CDDP=$bin "$here/netns-hosts.sh" -p "$PREFIX" exec h1 "$here/../../launch/cddp-mpirun.sh" -n "$np" -H "$hf" "$@"
