/* Optimizers over the flat parameter buffers (DESIGN §2, §5).
 *
 * Dense parameters are updated by the backend's fused kernels over ranges of
 * the flat buffer; a range is a run of consecutive dense parameters (in
 * offset order) with the same (no-weight-decay, embedding-lr) group, built
 * once at set-up. Sparse embedding tables are updated row-wise from the
 * reducer's averaged (ids, rows). What an optimizer computes and which state
 * it keeps is its descriptor's business (optimizer_algo.h, optim_<name>.c,
 * listed in optimizer_list.h): sgd keeps momentum_buffer (row-wise SGD on
 * sparse tables), adamw exp_avg and exp_avg_sq (row-wise Adagrad `sum` on
 * sparse tables), adagrad sum (dense and sparse). State lives in device
 * buffers allocated here. The device step counter is advanced (unless
 * skipped) before the update, so AdamW's bias correction sees the 1-based
 * step. */
#ifndef CDDP_TRAIN_OPTIMIZER_H
#define CDDP_TRAIN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"
#include "model/params.h"

/* The most state tensors per dense parameter an optimizer may keep. */
#define CDDP_OPT_MAX_STATES 2

typedef struct cddp_opt_algo cddp_opt_algo; /* optimizer_algo.h */

/* The global gradient of one sparse table for this step (device memory;
 * sorted unique ids, -1 padded to n). rows is writable so that the AMP
 * unscale and clipping work in place. */
typedef struct {
  const int32_t *ids;
  float *rows;
  int n;
} cddp_sparse_grad;

typedef struct {
  size_t off, n;
  int no_wd, emb;
} cddp_opt_range;

typedef struct {
  const char *name; /* --optimizer: sgd, adamw, adagrad (optimizer_list.h) */
  double lr, emb_lr, momentum, weight_decay, beta1, beta2, eps;
  int nesterov;
} cddp_opt_config;

typedef struct {
  const cddp_backend *be;
  cddp_params *ps;
  cddp_opt_config cfg;
  const cddp_opt_algo *algo;
  cddp_opt_range *ranges;
  int n_ranges;
  float *dense_state[CDDP_OPT_MAX_STATES]; /* device, n_dense each (NULL if unused) */
  float *sparse_state; /* device, n_master - n_dense (sparse tables' state), or NULL */
  int *step;             /* device: optimizer steps taken (1-based during the update) */
  float *sumsq;          /* device scratch for clipping */
  float *shard_sumsq;    /* device scratch: this rank's shards' part of the norm */
  /* Sharded tables: each rank holds other rows, so clipping sums their part
   * of the squared norm over the ranks with this (host float, in place);
   * set by the trainer, NULL without shards. */
  void (*sum_ranks)(void *ctx, float *x);
  void *sum_ctx;
} cddp_optimizer;

/* Allocates all state (zeroed); dies with exit 2 on an unknown cfg->name. */
void cddp_optimizer_init(cddp_optimizer *o, cddp_params *ps, const cddp_backend *be,
                         const cddp_opt_config *cfg);
void cddp_optimizer_free(cddp_optimizer *o);
/* Number of state floats per dense parameter (for the memory report). */
int cddp_optimizer_states_per_param(const cddp_opt_config *cfg);

/* Global-norm clipping over the dense gradient and the sparse rows
 * (sparse[i] used for sparse params i; may be NULL without sparse params). */
void cddp_optimizer_clip(cddp_optimizer *o, const cddp_sparse_grad *sparse, double max_norm);
/* One update with learning rates multiplied by lr_factor. skip: device flag
 * (AMP found_inf) or NULL. Refreshes the half copy when there is one. */
void cddp_optimizer_step(cddp_optimizer *o, const cddp_sparse_grad *sparse, double lr_factor,
                         const int *skip);

/* State of a parameter for checkpoints: names of its states and device
 * pointers to them (numel floats each). Returns the number of states
 * (0..CDDP_OPT_MAX_STATES). */
int cddp_optimizer_param_states(const cddp_optimizer *o, int param_id, const char **names,
                                float **ptrs);

#endif
