/* What a timeline trace needs from MPI: one clock across ranks and the
 * gathering of every rank's events on rank 0. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/check_mpi.h"
#include "core/error.h"
#include "ddp/process_group.h"

#define PINGS 8
#define TAG 7701

/* Rank 0 and peer exchange ping-pongs; rank 0 keeps the one with the
 * shortest round trip and sends the peer its offset (NTP's estimate). */
static double ping_pong(int rank, int peer, double (*now)(void)) {
  double off = 0;
  if (rank == 0) {
    double best_rtt = 1e30;
    for (int k = 0; k < PINGS; k++) {
      double t0 = now(), tr;
      mpiCheck(MPI_Send(&t0, 1, MPI_DOUBLE, peer, TAG, MPI_COMM_WORLD));
      mpiCheck(MPI_Recv(&tr, 1, MPI_DOUBLE, peer, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      double t1 = now();
      if (t1 - t0 < best_rtt) best_rtt = t1 - t0, off = tr - 0.5 * (t0 + t1);
    }
    mpiCheck(MPI_Send(&off, 1, MPI_DOUBLE, peer, TAG, MPI_COMM_WORLD));
  } else {
    for (int k = 0; k < PINGS; k++) {
      double t0;
      mpiCheck(MPI_Recv(&t0, 1, MPI_DOUBLE, 0, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      double tr = now();
      mpiCheck(MPI_Send(&tr, 1, MPI_DOUBLE, 0, TAG, MPI_COMM_WORLD));
    }
    mpiCheck(MPI_Recv(&off, 1, MPI_DOUBLE, 0, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
  }
  return off;
}

/* One clock per host: the ranks of a host read the same CLOCK_MONOTONIC, so
 * only each host's first rank is aligned with rank 0 (ranks on rank 0's host
 * get exactly 0) and passes its offset to the ranks of its host. Aligning
 * every rank separately would add each ping-pong's error (up to half its
 * round trip, milliseconds on a loaded machine) between ranks of one host. */
void cddp_pg_clock_sync(const cddp_pg *pg, double (*now)(void), double *offset_s,
                        double *origin_s) {
  MPI_Comm local;
  mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, pg->rank, MPI_INFO_NULL,
                               &local));
  int leader = pg->local_rank == 0, host0 = pg->rank == 0;
  mpiCheck(MPI_Bcast(&host0, 1, MPI_INT, 0, local)); /* 1 on rank 0's host */
  int *peers = NULL;
  int me = leader && !host0 ? pg->rank : -1;
  if (pg->rank == 0) peers = cddp_xmalloc(sizeof *peers * (size_t)pg->world, "clock peers");
  mpiCheck(MPI_Gather(&me, 1, MPI_INT, peers, 1, MPI_INT, 0, MPI_COMM_WORLD));
  double off = 0;
  mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
  if (pg->rank == 0) {
    for (int r = 0; r < pg->world; r++)
      if (peers[r] >= 0) ping_pong(0, peers[r], now);
    free(peers);
  } else if (me >= 0) {
    off = ping_pong(pg->rank, 0, now);
  }
  mpiCheck(MPI_Bcast(&off, 1, MPI_DOUBLE, 0, local));
  mpiCheck(MPI_Comm_free(&local));
  double origin = now();
  mpiCheck(MPI_Bcast(&origin, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  *offset_s = off;
  *origin_s = origin;
}

int cddp_pg_all_agree(const cddp_pg *pg, int flag) {
  int in[2] = {flag, -flag}, out[2];
  mpiCheck(MPI_Allreduce(in, out, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  return out[0] == -out[1];
}

char *cddp_pg_gather_text(const cddp_pg *pg, const char *text, size_t len, size_t *total) {
  long long mine = (long long)len, *lens = NULL;
  if (pg->rank == 0) lens = cddp_xmalloc(sizeof *lens * (size_t)pg->world, "gather lengths");
  mpiCheck(MPI_Gather(&mine, 1, MPI_LONG_LONG, lens, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
  int *counts = NULL, *displs = NULL;
  char *all = NULL;
  *total = 0;
  int too_big = 0;
  if (pg->rank == 0) {
    counts = cddp_xmalloc(sizeof(int) * (size_t)pg->world, "gather counts");
    displs = cddp_xmalloc(sizeof(int) * (size_t)pg->world, "gather displs");
    long long sum = 0;
    for (int r = 0; r < pg->world; r++) {
      counts[r] = (int)lens[r];
      displs[r] = (int)sum;
      sum += lens[r];
    }
    too_big = sum >= INT_MAX;
    *total = (size_t)sum;
  }
  /* every rank learns whether the gather can run, so none is left waiting */
  mpiCheck(MPI_Bcast(&too_big, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (too_big)
    cddp_die(CDDP_EXIT_RUNTIME, "trace: the ranks' events exceed 2 GB of JSON; trace fewer "
             "steps (--trace-steps)");
  if (pg->rank == 0) all = cddp_xmalloc(*total + 1, "gathered trace");
  mpiCheck(MPI_Gatherv(text, (int)len, MPI_CHAR, all, counts, displs, MPI_CHAR, 0,
                       MPI_COMM_WORLD));
  if (all) all[*total] = 0;
  free(lens);
  free(counts);
  free(displs);
  return all;
}
