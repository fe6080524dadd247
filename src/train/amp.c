#include "train/amp.h"

void cddp_amp_init(cddp_amp *a, const cddp_backend *be, int enabled, float init_scale,
                   float growth, float backoff, int interval) {
  *a = (cddp_amp){.be = be, .enabled = enabled, .growth = growth, .backoff = backoff,
                  .interval = interval};
  a->scale = be->malloc(sizeof(float));
  a->tracker = be->malloc(sizeof(int));
  a->found_inf = be->malloc(sizeof(int));
  be->memset0(a->found_inf, sizeof(int), be->compute);
  cddp_amp_set(a, enabled ? init_scale : 1.0f, 0);
}

void cddp_amp_free(cddp_amp *a) {
  if (!a->be) return;
  a->be->free(a->scale);
  a->be->free(a->tracker);
  a->be->free(a->found_inf);
  *a = (cddp_amp){0};
}

const float *cddp_amp_loss_scale(const cddp_amp *a) { return a->enabled ? a->scale : NULL; }
const int *cddp_amp_skip(const cddp_amp *a) { return a->enabled ? a->found_inf : NULL; }

void cddp_amp_begin_step(cddp_amp *a) {
  if (a->enabled) a->be->memset0(a->found_inf, sizeof(int), a->be->compute);
}

void cddp_amp_unscale_check(cddp_amp *a, cddp_params *ps, const cddp_sparse_grad *sparse) {
  if (!a->enabled) return;
  const cddp_backend *be = a->be;
  if (ps->n_dense) be->amp_unscale_check(ps->grad, ps->n_dense, a->scale, a->found_inf);
  for (int i = 0; i < ps->n; i++)
    if ((ps->p[i].flags & CDDP_PARAM_SPARSE) && sparse && sparse[i].n)
      be->amp_unscale_check(sparse[i].rows, (size_t)sparse[i].n * ps->p[i].shape[1], a->scale,
                            a->found_inf);
}

void cddp_amp_update(cddp_amp *a) {
  if (!a->enabled) return;
  a->be->amp_update_scale(a->scale, a->tracker, a->found_inf, a->growth, a->backoff, a->interval);
}

void cddp_amp_get(const cddp_amp *a, float *scale, int *tracker, int *found_inf) {
  const cddp_backend *be = a->be;
  float s;
  int t, f;
  be->memcpy_d2h(&s, a->scale, sizeof s, be->compute);
  be->memcpy_d2h(&t, a->tracker, sizeof t, be->compute);
  be->memcpy_d2h(&f, a->found_inf, sizeof f, be->compute);
  be->stream_sync(be->compute);
  if (scale) *scale = s;
  if (tracker) *tracker = t;
  if (found_inf) *found_inf = f;
}

void cddp_amp_set(cddp_amp *a, float scale, int tracker) {
  const cddp_backend *be = a->be;
  be->memcpy_h2d(a->scale, &scale, sizeof scale, be->compute);
  be->memcpy_h2d(a->tracker, &tracker, sizeof tracker, be->compute);
  be->stream_sync(be->compute); /* the host values go out of scope */
}
