/* Private: what a communication backend (MPI, NCCL) provides behind the
 * cddp_comm interface. comm.c dispatches; comm_mpi.c and cuda/comm_nccl.c
 * implement. Not for use outside src/ddp. */
#ifndef CDDP_DDP_COMM_IMPL_H
#define CDDP_DDP_COMM_IMPL_H

#include "ddp/comm.h"

typedef enum {
  CDDP_COLL_ALLREDUCE = 0,
  CDDP_COLL_BROADCAST,
  CDDP_COLL_ALLGATHER,
  CDDP_COLL_ALLGATHERV,
  CDDP_COLL_ALLTOALL,
  CDDP_COLL_BARRIER,
  CDDP_COLL_ALLTOALLV,
} cddp_coll_kind;

/* One collective as the caller described it. */
typedef struct {
  cddp_coll_kind kind;
  void *buf;             /* allreduce, broadcast: in place */
  const void *send;      /* allgather(v), alltoall */
  void *recv;
  size_t count;          /* allreduce: elements; others: bytes (per rank) */
  cddp_dtype dtype;
  cddp_reduce_op op;
  int root;
  const size_t *recv_bytes, *displs; /* allgatherv, alltoallv (receive side) */
  const size_t *send_bytes, *send_displs; /* alltoallv */
} cddp_coll;

typedef struct {
  const char *kind;
  cddp_comm_handle *(*post)(cddp_comm *c, const cddp_coll *coll);
  void (*wait)(cddp_comm *c, cddp_comm_handle *h, double *done_s);
  void (*reserve)(cddp_comm *c, size_t bytes);
  void (*destroy)(cddp_comm *c);
} cddp_comm_vtable;

/* Every backend's comm struct starts with this header. */
struct cddp_comm {
  const cddp_comm_vtable *vt;
  const cddp_backend *be;
  int rank, world;
  double timeout_s;
};

const char *cddp_coll_name(cddp_coll_kind k);
/* Bytes this rank sends in the collective (traces, benchmarks). */
long long cddp_coll_bytes(const cddp_coll *k, int world);
double cddp_now_s(void); /* CLOCK_MONOTONIC seconds */

cddp_comm *cddp_comm_mpi_create(const cddp_pg *pg, const cddp_backend *be, double timeout_s);
#ifdef CDDP_HAVE_CUDA
cddp_comm *cddp_comm_nccl_create(const cddp_pg *pg, const cddp_backend *be, double timeout_s);
#endif

#endif
