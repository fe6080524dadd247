/* MPI bootstrap (DESIGN §4). Threading contract: once a cddp_comm exists its
 * communication thread issues every MPI collective; the main thread only
 * calls MPI before the comm is created, after it is destroyed, and in
 * MPI_Abort (which is why MPI_THREAD_MULTIPLE is requested). */
#include "ddp/process_group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check_mpi.h"
#include "core/error.h"
#include "core/log.h"

/* Any cddp_die ends the whole job, not just this rank (DESIGN §8). */
static void pg_abort(int code) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

void cddp_pg_init(cddp_pg *pg, int *argc, char ***argv) {
  int init = 0, provided = 0;
  mpiCheck(MPI_Initialized(&init));
  pg->owns_mpi = !init;
  if (!init) {
    /* The comm thread waits inside blocking MPI calls while the compute thread
     * runs backward; Open MPI's progress loop spins there, taking CPU from the
     * compute threads whenever ranks share cores. Yielding when idle raised
     * dlrm's 2-rank weak scaling on 2 cores from 87.2 % to 93.7 %
     * (bench/RESULTS.md). A setting of the user's (mpirun --mca
     * mpi_yield_when_idle 0) is kept. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    mpiCheck(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  } else {
    mpiCheck(MPI_Query_thread(&provided));
  }
  /* Errors come back as codes so that mpiCheck can name the call. */
  mpiCheck(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &pg->rank));
  mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &pg->world));
  cddp_set_rank(pg->rank);
  cddp_set_abort_hook(pg_abort);
  if (provided < MPI_THREAD_SERIALIZED)
    cddp_die(CDDP_EXIT_RUNTIME,
             "MPI provides thread level %d; cddp needs at least MPI_THREAD_SERIALIZED "
             "(its communication thread issues the collectives)", provided);
  if (provided < MPI_THREAD_MULTIPLE)
    cddp_log_warn("MPI provides MPI_THREAD_SERIALIZED only: an abort raised on one thread while "
                  "another is inside MPI may not be clean");

  MPI_Comm local;
  mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, pg->rank, MPI_INFO_NULL,
                               &local));
  mpiCheck(MPI_Comm_rank(local, &pg->local_rank));
  mpiCheck(MPI_Comm_size(local, &pg->local_world));
  mpiCheck(MPI_Comm_free(&local));
}

typedef struct {
  char host[MPI_MAX_PROCESSOR_NAME];
  int local_rank;
} pg_place;

enum { PG_LOG_MAX_HOSTS = 16 };

void cddp_pg_log_hosts(const cddp_pg *pg) {
  pg_place me = {.local_rank = pg->local_rank};
  int len = 0;
  mpiCheck(MPI_Get_processor_name(me.host, &len));
  pg_place *all = NULL;
  if (pg->rank == 0) {
    all = calloc((size_t)pg->world, sizeof *all);
    if (!all) cddp_die(CDDP_EXIT_RUNTIME, "out of memory gathering the host names of %d ranks", pg->world);
  }
  mpiCheck(MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD));
  if (pg->rank != 0) return;
  /* Hosts in order of their first rank; a rank is listed once, under its host. */
  char *done = calloc((size_t)pg->world, 1);
  if (!done) cddp_die(CDDP_EXIT_RUNTIME, "out of memory listing the hosts of %d ranks", pg->world);
  int hosts = 0;
  for (int r = 0; r < pg->world; r++) {
    if (done[r]) continue;
    char line[1024];
    size_t n = (size_t)snprintf(line, sizeof line, "host %s:", all[r].host);
    int count = 0;
    for (int q = r; q < pg->world; q++) {
      if (done[q] || strcmp(all[q].host, all[r].host)) continue;
      done[q] = 1;
      if (n < sizeof line)
        n += (size_t)snprintf(line + n, sizeof line - n, "%s rank %d (local %d)", count ? "," : "", q,
                              all[q].local_rank);
      count++;
    }
    if (hosts++ < PG_LOG_MAX_HOSTS) cddp_log_info("%s; %d rank%s", line, count, count > 1 ? "s" : "");
  }
  if (hosts > PG_LOG_MAX_HOSTS) cddp_log_info("... %d hosts in all", hosts);
  free(done);
  free(all);
}

void cddp_pg_barrier(const cddp_pg *pg) { mpiCheck(MPI_Barrier(MPI_COMM_WORLD)); }

void cddp_pg_finalize(cddp_pg *pg) {
  int fin = 0;
  MPI_Finalized(&fin);
  cddp_set_abort_hook(NULL);
  if (pg->owns_mpi && !fin) mpiCheck(MPI_Finalize());
}
