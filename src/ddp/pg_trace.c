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

void cddp_pg_clock_sync(const cddp_pg *pg, double (*now)(void), double *offset_s,
                        double *origin_s) {
  double off = 0;
  mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
  for (int r = 1; r < pg->world; r++) {
    if (pg->rank == 0) {
      double best_rtt = 1e30, best = 0;
      for (int k = 0; k < PINGS; k++) {
        double t0 = now(), tr;
        mpiCheck(MPI_Send(&t0, 1, MPI_DOUBLE, r, TAG, MPI_COMM_WORLD));
        mpiCheck(MPI_Recv(&tr, 1, MPI_DOUBLE, r, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        double t1 = now();
        if (t1 - t0 < best_rtt) best_rtt = t1 - t0, best = tr - 0.5 * (t0 + t1);
      }
      mpiCheck(MPI_Send(&best, 1, MPI_DOUBLE, r, TAG, MPI_COMM_WORLD));
    } else if (pg->rank == r) {
      for (int k = 0; k < PINGS; k++) {
        double t0;
        mpiCheck(MPI_Recv(&t0, 1, MPI_DOUBLE, 0, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        double tr = now();
        mpiCheck(MPI_Send(&tr, 1, MPI_DOUBLE, 0, TAG, MPI_COMM_WORLD));
      }
      mpiCheck(MPI_Recv(&off, 1, MPI_DOUBLE, 0, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    }
  }
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
