/* Communication backends behind one interface (DESIGN §4): MPI on host
 * buffers (a communication thread owns every MPI call while it runs) and NCCL
 * on device buffers (its own stream, waiting on an event recorded on the
 * compute stream). Every collective is asynchronous and returns a handle. */
#ifndef CDDP_DDP_COMM_H
#define CDDP_DDP_COMM_H

#include <stddef.h>

#include "core/dtype.h"
#include "core/ops.h"
#include "ddp/process_group.h"

typedef struct cddp_comm cddp_comm;
typedef struct cddp_comm_handle cddp_comm_handle;

typedef enum { CDDP_RED_SUM = 0, CDDP_RED_AVG } cddp_reduce_op;

/* kind: "mpi" (any backend; device buffers are staged through host memory if
 * the backend is a device) or "nccl" (CUDA backend only). timeout_s > 0: a
 * wait that stalls longer aborts the job with a message naming the
 * collective. */
cddp_comm *cddp_comm_create(const cddp_pg *pg, const cddp_backend *be, const char *kind,
                            double timeout_s);
void cddp_comm_destroy(cddp_comm *c);
int cddp_comm_rank(const cddp_comm *c);
int cddp_comm_world(const cddp_comm *c);

/* In place. dtype F32, F16 or BF16 (sums of halves accumulate as the library does). */
cddp_comm_handle *cddp_allreduce(cddp_comm *c, void *buf, size_t count, cddp_dtype t,
                                 cddp_reduce_op op);
cddp_comm_handle *cddp_broadcast(cddp_comm *c, void *buf, size_t bytes, int root);
/* recv holds world * bytes; rank r's send lands at recv + r*bytes */
cddp_comm_handle *cddp_allgather(cddp_comm *c, const void *send, void *recv, size_t bytes);
/* recv_counts/displs in bytes, one per rank */
cddp_comm_handle *cddp_allgatherv(cddp_comm *c, const void *send, size_t send_bytes, void *recv,
                                  const size_t *recv_bytes, const size_t *displs);
/* send and recv hold world * bytes; block r of send goes to rank r */
cddp_comm_handle *cddp_alltoall(cddp_comm *c, const void *send, void *recv, size_t bytes);
/* Bytes per rank: send_bytes[r] at send + send_displs[r] go to rank r;
 * rank r's block lands at recv + recv_displs[r] (recv_bytes[r] long). The
 * count arrays must stay valid until the wait (the collective runs later). */
cddp_comm_handle *cddp_alltoallv(cddp_comm *c, const void *send, const size_t *send_bytes,
                                 const size_t *send_displs, void *recv, const size_t *recv_bytes,
                                 const size_t *recv_displs);
cddp_comm_handle *cddp_barrier(cddp_comm *c);
/* Waits for the collective (host waits for MPI; for NCCL the compute stream
 * waits on the collective's event and the host does not) and frees the handle. */
void cddp_comm_wait(cddp_comm *c, cddp_comm_handle *h);

/* Blocking collectives on host arrays (statistics, flags, small state) that
 * take the same path as every other collective (MPI or NCCL, --timeout
 * applies). cddp_comm_sum_host: in-place sum of count elements of t (F32,
 * F64, U64); with a device backend the values travel through dev_scratch
 * (count elements, allocated at set-up), and the call synchronises the
 * compute stream. cddp_comm_allgather_host: recv (world * bytes) gets every
 * rank's send in rank order; with a device backend it allocates a device
 * buffer for the call (set-up or checkpoint time only). */
void cddp_comm_sum_host(cddp_comm *c, void *host, size_t count, cddp_dtype t, void *dev_scratch);
void cddp_comm_allgather_host(cddp_comm *c, const void *send, void *recv, size_t bytes);

/* cddp_comm_wait_timed: as cddp_comm_wait, and *done_s (if not NULL) gets the
 * CLOCK_MONOTONIC second at which the collective completed (MPI: when the
 * communication thread finished it; NCCL: when the host waited, since the
 * host never blocks on the GPU there).
 * cddp_comm_reserve: set-up only. With a device backend under "mpi",
 * collectives are staged through pinned host memory; each caller reserves the
 * bytes of the collectives it may keep in flight at once (the reducer: a
 * step's buckets and sparse gathers; the sharded embeddings: their largest
 * all-to-all), and the pool holds the sum of the reservations (it also grows
 * for a collective that finds nothing else in flight).
 * No effect for host buffers or NCCL.
 * cddp_comm_kind: "mpi" or "nccl". */
void cddp_comm_wait_timed(cddp_comm *c, cddp_comm_handle *h, double *done_s);
void cddp_comm_reserve(cddp_comm *c, size_t bytes);
const char *cddp_comm_kind(const cddp_comm *c);

#endif
