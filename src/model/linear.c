/* Linear layer y = act(x W^T + b), W [out, in] (PyTorch layout).
 * Under AMP the GEMM inputs are half precision (x and dy cast into planned
 * half buffers, W from the parameters' half copy) with fp32 accumulation. */
#include <stdio.h>

#include "core/error.h"
#include "model/layers.h"

void cddp_linear_init(cddp_linear *l, cddp_params *ps, const char *prefix, int in, int out,
                      int bias, cddp_act act, int flags, const int64_t *wshape, int wndim) {
  *l = (cddp_linear){.in = in, .out = out, .act = act, .b = -1};
  char name[96];
  int64_t shape[2] = {out, in};
  if (!wshape) {
    wshape = shape;
    wndim = 2;
  }
  int64_t numel = 1;
  for (int i = 0; i < wndim; i++) numel *= wshape[i];
  if (numel != (int64_t)in * out)
    cddp_die(CDDP_EXIT_RUNTIME, "%s.weight: shape has %lld elements, expected %d x %d", prefix,
             (long long)numel, out, in);
  snprintf(name, sizeof name, "%s.weight", prefix);
  l->w = cddp_params_add(ps, name, wndim, wshape, flags);
  if (bias) {
    snprintf(name, sizeof name, "%s.bias", prefix);
    int64_t bs[1] = {out};
    l->b = cddp_params_add(ps, name, 1, bs, flags | CDDP_PARAM_NO_WD);
  }
}

void cddp_linear_plan(cddp_linear *l, const cddp_lctx *c, cddp_planner *p, int rows, int ldx) {
  l->rows = rows;
  l->ldx = ldx;
  size_t ro = (size_t)rows * l->out;
  l->y = cddp_plan_act(p, ro * sizeof(float));
  /* ReLU's backward reads its output (y > 0 exactly where pre > 0): only GELU
   * keeps the pre-activation */
  l->pre = l->act == CDDP_ACT_GELU ? cddp_plan_act(p, ro * sizeof(float)) : NULL;
  l->xh = c->amp != CDDP_F32 ? cddp_plan_act(p, (size_t)rows * ldx * cddp_dtype_size(c->amp)) : NULL;
  size_t mark = cddp_plan_mark(p);
  l->dpre = l->act != CDDP_ACT_NONE ? cddp_plan_scratch(p, ro * sizeof(float)) : NULL;
  l->dyh = c->amp != CDDP_F32 ? cddp_plan_scratch(p, ro * cddp_dtype_size(c->amp)) : NULL;
  cddp_plan_release(p, mark);
}

/* Elements spanned by n rows of width w at row stride ld. */
static size_t span(int n, int w, int ld) { return n ? (size_t)(n - 1) * ld + w : 0; }

static void linear_fwd(cddp_linear *l, const cddp_lctx *c, const float *x, int n,
                       const float *res) {
  const cddp_backend *be = c->be;
  l->x = x;
  l->n = n;
  const void *A = x, *B = cddp_param_data(c->ps, l->w);
  if (c->amp != CDDP_F32) {
    be->cast(l->xh, c->amp, x, CDDP_F32, span(n, l->in, l->ldx));
    A = l->xh;
    B = cddp_param_half(c->ps, l->w);
  }
  cddp_gemm_args g = {.transa = 0, .transb = 1, .m = n, .n = l->out, .k = l->in,
                      .alpha = 1.0f, .beta = 0.0f, .ab_type = c->amp,
                      .A = A, .lda = l->ldx, .B = B, .ldb = l->in,
                      .C = l->y, .ldc = l->out,
                      .bias = l->b >= 0 ? cddp_param_data(c->ps, l->b) : NULL,
                      .act = l->act, .pre_act = l->pre, .residual = res};
  be->gemm(&g);
}

void cddp_linear_fwd(cddp_linear *l, const cddp_lctx *c, const float *x, int n) {
  linear_fwd(l, c, x, n, NULL);
}

void cddp_linear_fwd_residual(cddp_linear *l, const cddp_lctx *c, const float *x, int n,
                              const float *res) {
  if (l->act != CDDP_ACT_NONE)
    cddp_die(CDDP_EXIT_RUNTIME, "linear: a residual is added after an activation only (act none)");
  linear_fwd(l, c, x, n, res);
}

void cddp_linear_bwd(cddp_linear *l, const cddp_lctx *c, const float *dy, float *dx, int lddx,
                     const cddp_ready_hook *h) {
  const cddp_backend *be = c->be;
  int n = l->n;
  float *db = l->b >= 0 ? cddp_param_grad(c->ps, l->b) : NULL;
  if (l->act != CDDP_ACT_NONE) { /* the bias gradient comes with the activation's */
    const float *pre = l->act == CDDP_ACT_RELU ? l->y : l->pre;
    be->act_bias_bwd(l->act, pre, dy, l->dpre, n, l->out, db);
    dy = l->dpre;
  } else if (db) {
    be->bias_grad(dy, n, l->out, l->out, db);
  }
  const void *dyA = dy, *xB = l->x, *wB = cddp_param_data(c->ps, l->w);
  if (c->amp != CDDP_F32) {
    be->cast(l->dyh, c->amp, dy, CDDP_F32, (size_t)n * l->out);
    dyA = l->dyh;
    xB = l->xh;
    wB = cddp_param_half(c->ps, l->w);
  }
  if (db) cddp_mark_ready(h, l->b);
  /* dW[out, in] += dy^T x */
  cddp_gemm_args gw = {.transa = 1, .transb = 0, .m = l->out, .n = l->in, .k = n,
                       .alpha = 1.0f, .beta = 1.0f, .ab_type = c->amp,
                       .A = dyA, .lda = l->out, .B = xB, .ldb = l->ldx,
                       .C = cddp_param_grad(c->ps, l->w), .ldc = l->in};
  be->gemm(&gw);
  cddp_mark_ready(h, l->w);
  if (dx) { /* dx[n, in] = dy W */
    cddp_gemm_args gx = {.transa = 0, .transb = 0, .m = n, .n = l->in, .k = l->out,
                         .alpha = 1.0f, .beta = 0.0f, .ab_type = c->amp,
                         .A = dyA, .lda = l->out, .B = wB, .ldb = l->in,
                         .C = dx, .ldc = lddx};
    be->gemm(&gx);
  }
}
