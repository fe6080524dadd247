/* The process group: MPI bootstrap, rank/world numbers, local rank (one GPU
 * per local rank) and the job-wide abort used by every fatal error. */
#ifndef CDDP_DDP_PROCESS_GROUP_H
#define CDDP_DDP_PROCESS_GROUP_H

#include <stddef.h>

typedef struct {
  int rank, world;             /* in MPI_COMM_WORLD */
  int local_rank, local_world; /* among ranks on this host (MPI_COMM_TYPE_SHARED) */
  int owns_mpi;                /* 1 if cddp_pg_init called MPI_Init_thread */
} cddp_pg;

/* MPI_Init_thread (MPI_THREAD_MULTIPLE requested, at least SERIALIZED
 * required), rank numbers, cddp_set_rank(), and an abort hook that makes any
 * cddp_die() end the whole job with MPI_Abort. Works without mpirun (world 1). */
void cddp_pg_init(cddp_pg *pg, int *argc, char ***argv);
void cddp_pg_barrier(const cddp_pg *pg);
/* Collective: rank 0 logs which host (MPI processor name) holds which ranks
 * and their local ranks, one line per host (the first 16 hosts), so that a
 * hostfile or Slurm placement can be checked at a glance. */
void cddp_pg_log_hosts(const cddp_pg *pg);
void cddp_pg_finalize(cddp_pg *pg);

/* For timeline traces (pg_trace.c); main thread, while no cddp_comm exists.
 * Clock alignment, one clock per host: ranks on rank 0's host get offset 0;
 * rank 0 exchanges ping-pongs with the first rank of every other host and
 * keeps the one with the shortest round trip (NTP's estimate, error <= half
 * that trip), which that rank passes to its host's ranks. *offset_s = this rank's now() minus rank 0's at the same instant;
 * *origin_s = rank 0's now() when the exchange ended. */
void cddp_pg_clock_sync(const cddp_pg *pg, double (*now)(void), double *offset_s,
                        double *origin_s);
/* 1 if every rank passed the same flag (an all-reduce of min and max). */
int cddp_pg_all_agree(const cddp_pg *pg, int flag);
/* Every rank's text, concatenated in rank order on rank 0 (NULL, *total 0
 * elsewhere). The caller frees it. */
char *cddp_pg_gather_text(const cddp_pg *pg, const char *text, size_t len, size_t *total);

#endif
