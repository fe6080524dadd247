/* The parameter registry: names, shapes and places in the flat buffers.
 *
 * Layers register their parameters in FORWARD order. cddp_params_finalize()
 * lays dense parameters out in REVERSE registration order, which is the order
 * backward produces their gradients, so every DDP bucket is a contiguous slice
 * of `grad` (DESIGN §2). `master[0..n_dense)` and `grad[0..n_dense)` share
 * offsets (one fused optimizer pass covers both); sparse embedding tables come
 * after the dense block in `master` and have no dense gradient: their gradient
 * is the (ids, rows) pair filled by backward.
 *
 * Names and layouts follow the PyTorch references (Linear weight [out, in]). */
#ifndef CDDP_MODEL_PARAMS_H
#define CDDP_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/ops.h"

enum {
  CDDP_PARAM_NO_WD = 1 << 0,     /* biases, norms, pos_embed, cls_token (timm convention) */
  CDDP_PARAM_EMBEDDING = 1 << 1, /* embedding table: embedding learning rate */
  CDDP_PARAM_SPARSE = 1 << 2,    /* gradient is sparse rows (implies EMBEDDING) */
  /* an embedding table split across ranks (implies SPARSE): this rank holds
   * rows [row_offset, row_offset + shape[0]) of a [global_rows, shape[1]]
   * table; its gradient comes from the owners' all-to-all, not the reducer */
  CDDP_PARAM_SHARDED = 1 << 3,
};

typedef struct {
  char name[96];
  int ndim;
  int64_t shape[4];
  size_t numel;
  int flags;
  size_t offset;      /* into master (floats) */
  /* sparse parameters only: the gradient of the last backward, written by the
   * model (device memory): sp_ids[sp_cap] sorted unique, -1 padded, and
   * sp_rows[sp_cap * shape[1]] */
  int32_t *sp_ids;
  float *sp_rows;
  int sp_cap;
  int sp_n;             /* sharded: valid entries of sp_ids after the last backward */
  int64_t global_rows;  /* sharded: rows of the whole table */
  int64_t row_offset;   /* sharded: first global row held here */
} cddp_param;

typedef struct {
  cddp_param *p;
  int n, cap;
  size_t n_dense;    /* floats in the dense block (== gradient buffer length) */
  size_t n_master;   /* floats in master (dense block + sparse tables + shards) */
  size_t n_replicated; /* floats of master that every rank holds (all but the shards, which come last) */
  const cddp_backend *be;
  float *master;     /* device, n_master */
  float *grad;       /* device, n_dense */
  void *half;        /* device, n_dense elements of half_t (AMP), or NULL */
  cddp_dtype half_t; /* CDDP_F32 when there is no half copy */
} cddp_params;

void cddp_params_init(cddp_params *ps);
/* Registers a parameter; returns its id (registration index). */
int cddp_params_add(cddp_params *ps, const char *name, int ndim, const int64_t *shape, int flags);
/* Assigns offsets; after this no parameter may be added. */
void cddp_params_finalize(cddp_params *ps);
/* Allocates master, grad (zeroed) and, if half_t is F16/BF16, the half copy. */
void cddp_params_alloc(cddp_params *ps, const cddp_backend *be, cddp_dtype half_t);
void cddp_params_free(cddp_params *ps);

static inline float *cddp_param_data(const cddp_params *ps, int id) {
  return ps->master + ps->p[id].offset;
}
/* Dense gradient of a dense parameter (NULL for sparse ones). */
static inline float *cddp_param_grad(const cddp_params *ps, int id) {
  return (ps->p[id].flags & CDDP_PARAM_SPARSE) ? NULL : ps->grad + ps->p[id].offset;
}
/* Half-precision copy of a dense parameter (NULL without AMP). */
static inline void *cddp_param_half(const cddp_params *ps, int id) {
  if (!ps->half || (ps->p[id].flags & CDDP_PARAM_SPARSE)) return NULL;
  return (char *)ps->half + ps->p[id].offset * cddp_dtype_size(ps->half_t);
}
/* Shape as the checkpoint and the other ranks see it (a shard: the whole table). */
static inline int64_t cddp_param_global_dim0(const cddp_param *p) {
  return (p->flags & CDDP_PARAM_SHARDED) ? p->global_rows : p->shape[0];
}
/* Finds a parameter by name; -1 if absent. */
int cddp_params_find(const cddp_params *ps, const char *name);

#endif
