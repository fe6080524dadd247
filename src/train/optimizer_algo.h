/* The interface every optimizer implements (src/train/optim_<name>.c): its
 * state tensors and two update steps built from the backend's fused kernels.
 * optimizer.c owns the state buffers, the parameter ranges and the step
 * counter, and calls these for each range and each sparse table. Adding an
 * optimizer: one optim_<name>.c defining `const cddp_opt_algo cddp_opt_<name>`
 * plus one line in optimizer_list.h (and the kernels it needs in the op list). */
#ifndef CDDP_TRAIN_OPTIMIZER_ALGO_H
#define CDDP_TRAIN_OPTIMIZER_ALGO_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"
#include "train/optimizer.h"

/* One dense update: n consecutive parameters of one group. */
typedef struct {
  float *p;
  const float *g;
  float *state[CDDP_OPT_MAX_STATES]; /* the range's slice of each dense state */
  size_t n;
  float lr, wd;                      /* after the schedule and the no-decay group */
  const int *step;                   /* device: 1-based step count of this update */
  const int *skip;                   /* device: AMP skip flag, or NULL */
  void *half;                        /* AMP copy of p to refresh, or NULL */
  cddp_dtype half_t;
} cddp_opt_dense_args;

/* One sparse-row update of an embedding table [rows, dim] from the averaged
 * global gradient (sorted unique ids, -1 padded to n). */
typedef struct {
  float *table;
  float *state; /* the table's slice of the sparse state, or NULL */
  int dim;
  const int32_t *ids;
  const float *rows;
  int n;
  float lr;
  const int *skip;
} cddp_opt_sparse_args;

struct cddp_opt_algo {
  const char *name;
  /* state tensors per dense parameter, allocated and zeroed by optimizer.c,
   * named as torch.optim's state_dict names them (in checkpoints) */
  int n_states;
  const char *state_names[CDDP_OPT_MAX_STATES];
  /* 0 when the states carry nothing for this configuration and are left out
   * of checkpoints (SGD without momentum); NULL: always saved */
  int (*saves_states)(const cddp_opt_config *c);
  /* name of the element-wise state of sparse tables, or NULL for none */
  const char *sparse_state_name;
  void (*dense_step)(const cddp_backend *be, const cddp_opt_config *c,
                     const cddp_opt_dense_args *a);
  void (*sparse_step)(const cddp_backend *be, const cddp_opt_config *c,
                      const cddp_opt_sparse_args *a);
};

#define CDDP_OPTIMIZER(name) extern const cddp_opt_algo cddp_opt_##name;
#include "train/optimizer_list.h"

/* Row-sparse Adagrad (optim_adagrad.c): also the sparse step of optimizers
 * without a sparse form of their own. */
void cddp_opt_sparse_adagrad(const cddp_backend *be, const cddp_opt_config *c,
                             const cddp_opt_sparse_args *a);

/* The optimizer called `name`; dies with exit 2 listing the known ones. */
const cddp_opt_algo *cddp_optimizer_find(const char *name);

#endif
