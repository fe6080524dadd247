#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void cddp_params_init(cddp_params *ps) { *ps = (cddp_params){0}; }

int cddp_params_add(cddp_params *ps, const char *name, int ndim, const int64_t *shape, int flags) {
  if (ndim < 1 || ndim > 4) cddp_die(CDDP_EXIT_RUNTIME, "parameter %s: ndim %d", name, ndim);
  if (strlen(name) >= sizeof ps->p[0].name)
    cddp_die(CDDP_EXIT_RUNTIME, "parameter name too long: %s", name);
  if (cddp_params_find(ps, name) >= 0)
    cddp_die(CDDP_EXIT_RUNTIME, "parameter %s registered twice", name);
  if (ps->n == ps->cap) {
    ps->cap = ps->cap ? 2 * ps->cap : 64;
    ps->p = realloc(ps->p, ps->cap * sizeof *ps->p);
    if (!ps->p) cddp_die(CDDP_EXIT_RUNTIME, "out of memory registering parameters");
  }
  if (flags & CDDP_PARAM_SHARDED) flags |= CDDP_PARAM_SPARSE;
  if (flags & CDDP_PARAM_SPARSE) flags |= CDDP_PARAM_EMBEDDING;
  cddp_param *p = &ps->p[ps->n];
  *p = (cddp_param){.ndim = ndim, .flags = flags};
  snprintf(p->name, sizeof p->name, "%s", name);
  p->numel = 1;
  for (int i = 0; i < ndim; i++) {
    p->shape[i] = shape[i];
    p->numel *= (size_t)shape[i];
  }
  return ps->n++;
}

void cddp_params_finalize(cddp_params *ps) {
  size_t off = 0;
  for (int i = ps->n - 1; i >= 0; i--) /* dense, reverse registration order */
    if (!(ps->p[i].flags & CDDP_PARAM_SPARSE)) {
      ps->p[i].offset = off;
      off += ps->p[i].numel;
    }
  ps->n_dense = off;
  for (int i = 0; i < ps->n; i++) /* sparse tables after the dense block */
    if ((ps->p[i].flags & (CDDP_PARAM_SPARSE | CDDP_PARAM_SHARDED)) == CDDP_PARAM_SPARSE) {
      ps->p[i].offset = off;
      off += ps->p[i].numel;
    }
  ps->n_replicated = off;
  for (int i = 0; i < ps->n; i++) /* this rank's shards last: their sizes differ per rank */
    if (ps->p[i].flags & CDDP_PARAM_SHARDED) {
      ps->p[i].offset = off;
      off += ps->p[i].numel;
    }
  ps->n_master = off;
}

void cddp_params_alloc(cddp_params *ps, const cddp_backend *be, cddp_dtype half_t) {
  ps->be = be;
  ps->master = be->malloc((ps->n_master ? ps->n_master : 1) * sizeof(float));
  ps->grad = be->malloc((ps->n_dense ? ps->n_dense : 1) * sizeof(float));
  be->memset0(ps->grad, ps->n_dense * sizeof(float), be->compute);
  ps->half_t = half_t;
  if (half_t == CDDP_F16 || half_t == CDDP_BF16)
    ps->half = be->malloc((ps->n_dense ? ps->n_dense : 1) * cddp_dtype_size(half_t));
  else
    ps->half_t = CDDP_F32;
}

void cddp_params_free(cddp_params *ps) {
  if (ps->be) {
    ps->be->free(ps->master);
    ps->be->free(ps->grad);
    if (ps->half) ps->be->free(ps->half);
  }
  free(ps->p);
  *ps = (cddp_params){0};
}

int cddp_params_find(const cddp_params *ps, const char *name) {
  for (int i = 0; i < ps->n; i++)
    if (!strcmp(ps->p[i].name, name)) return i;
  return -1;
}
