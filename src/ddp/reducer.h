/* The gradient reducer (DESIGN §4): buckets over the flat gradient buffer in
 * gradient-ready order, launched the moment their last parameter is marked
 * ready, and the sparse exchange of embedding-table gradients. Knows no
 * model: it sees named flat slices and sparse (ids, rows) tables. */
#ifndef CDDP_DDP_REDUCER_H
#define CDDP_DDP_REDUCER_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "ddp/comm.h"

/* One parameter as the reducer sees it, indexed by the model's param id. */
typedef struct {
  const char *name;
  size_t offset, numel; /* dense: slice of the flat gradient buffer (floats) */
  int sparse;           /* 1: gradient is (ids, rows) below, not a slice */
  int local;            /* 1: not communicated here (its owner exchanges it); only marked */
  int dim;              /* sparse: row width */
  const int32_t *ids;   /* sparse: [cap] sorted unique, -1 padded (device) */
  const float *rows;    /* sparse: [cap * dim] (device) */
  int cap;
} cddp_reducer_param;

typedef struct {
  size_t bucket_bytes;       /* --bucket-mb, default 25 MB */
  size_t first_bucket_bytes; /* default 1 MB */
  int overlap;               /* 0: every bucket launched by finish() (--no-overlap) */
  cddp_dtype compress;       /* F32 (none), F16 or BF16 on the wire */
  /* The most micro-steps per optimizer step (--grad-accum);
   * 0 means 1. Sparse gradients are overwritten by every backward, so with
   * accumulation the reducer keeps each micro-step's (ids, rows) in its own
   * slot and exchanges all slots on the communicating micro-step. */
  int accum_steps;
} cddp_reducer_opts;

typedef struct {
  double backward_ms;        /* begin() to the last mark_ready() */
  double comm_ms;            /* sum over buckets of launch-to-complete time */
  double exposed_ms;         /* time finish() waited after backward ended */
  size_t bytes_sent;         /* payload bytes this rank contributed */
  int buckets;
} cddp_reducer_stats;

typedef struct cddp_reducer cddp_reducer;

cddp_reducer *cddp_reducer_create(cddp_comm *c, const cddp_backend *be, float *grad,
                                  size_t n_grad, const cddp_reducer_param *params, int n_params,
                                  const cddp_reducer_opts *opts);
void cddp_reducer_destroy(cddp_reducer *r);
/* Start of a micro-step's backward. communicate = 0 for the micro-steps of
 * gradient accumulation that only accumulate locally (PyTorch's no_sync). */
void cddp_reducer_begin(cddp_reducer *r, int communicate);
/* The model's ready hook: matches cddp_ready_hook.fn with ctx = reducer. */
void cddp_reducer_mark_ready(void *reducer, int param_id);
/* Waits until every bucket is averaged and every sparse table exchanged.
 * A parameter never marked ready is a fatal error naming it. */
void cddp_reducer_finish(cddp_reducer *r);
/* After finish(): the averaged, coalesced global sparse gradient of a sparse
 * parameter (device memory, sorted unique ids, -1 padded to *n). */
void cddp_reducer_sparse_result(const cddp_reducer *r, int param_id, const int32_t **ids,
                                const float **rows, int *n);
const cddp_reducer_stats *cddp_reducer_last_stats(const cddp_reducer *r);
/* The bucket layout, for logs and tests. Bucket b covers
 * grad[*offset, *offset + *numel) and holds *n_params parameters. */
int cddp_reducer_n_buckets(const cddp_reducer *r);
void cddp_reducer_bucket(const cddp_reducer *r, int b, size_t *offset, size_t *numel, int *n_params);

/* Start-up checks (DESIGN §4): all ranks hold the same description (a
 * string naming every parameter's name/shape/dtype and the data schema);
 * on mismatch every rank dies with exit code 2 naming the first difference.
 * Then rank 0's parameters (n floats) are broadcast to all ranks. */
void cddp_ddp_check_same(cddp_comm *c, const char *description);
void cddp_ddp_broadcast_params(cddp_comm *c, float *master, size_t n);
/* Replica check: hashes the n parameters at `master` (FNV-1a of their bytes;
 * device memory is copied to the host) and all-gathers the hashes: a mismatch
 * dies (exit 1) naming both ranks; otherwise rank 0 logs the hash and `steps`
 * (the steps trained since start-up). Collective: every rank must call it.
 * The trainer calls it at the end of training when CDDP_CHECK_REPLICAS=1 is
 * set in the environment (tests/cli). */
void cddp_ddp_check_replicas(cddp_comm *c, const float *master, size_t n, long long steps);

#endif
