/* MLP: a stack of linears with the bias+ReLU fused into the GEMM epilogue,
 * named like nn.Sequential(Linear, ReLU, Linear, ...): Linears at even indices. */
#include <math.h>
#include <stdio.h>

#include "core/error.h"
#include "model/layers.h"

void cddp_mlp_init(cddp_mlp *m, cddp_params *ps, const char *prefix, const int *dims, int nl,
                   int last_relu) {
  if (nl < 1 || nl > CDDP_MLP_MAX) cddp_die(CDDP_EXIT_RUNTIME, "%s: %d layers", prefix, nl);
  m->nl = nl;
  for (int i = 0; i < nl; i++) {
    char name[96];
    snprintf(name, sizeof name, "%s.%d", prefix, 2 * i);
    cddp_act act = (i < nl - 1 || last_relu) ? CDDP_ACT_RELU : CDDP_ACT_NONE;
    cddp_linear_init(&m->l[i], ps, name, dims[i], dims[i + 1], 1, act, 0, NULL, 0);
  }
}

void cddp_mlp_plan(cddp_mlp *m, const cddp_lctx *c, cddp_planner *p, int rows, int ldx) {
  size_t mark = cddp_plan_mark(p);
  for (int i = 0; i < m->nl - 1; i++) /* ours first: the linears' scratch sits above */
    m->d[i] = cddp_plan_scratch(p, (size_t)rows * m->l[i].out * sizeof(float));
  for (int i = 0; i < m->nl; i++) cddp_linear_plan(&m->l[i], c, p, rows, i ? m->l[i - 1].out : ldx);
  cddp_plan_release(p, mark);
}

void cddp_mlp_fwd(cddp_mlp *m, const cddp_lctx *c, const float *x, int n) {
  for (int i = 0; i < m->nl; i++) {
    cddp_linear_fwd(&m->l[i], c, x, n);
    x = m->l[i].y;
  }
}

void cddp_mlp_bwd(cddp_mlp *m, const cddp_lctx *c, const float *dy, float *dx, int lddx,
                  const cddp_ready_hook *h) {
  for (int i = m->nl - 1; i >= 0; i--) {
    float *dxi = i ? m->d[i - 1] : dx;
    int ld = i ? m->l[i - 1].out : lddx;
    cddp_linear_bwd(&m->l[i], c, dy, dxi, ld, h);
    dy = dxi;
  }
}

void cddp_mlp_init_dlrm(cddp_mlp *m, cddp_params *ps, uint64_t seed) {
  for (int i = 0; i < m->nl; i++) {
    const cddp_linear *l = &m->l[i];
    cddp_param_init(ps, seed, l->w, CDDP_INIT_NORMAL, sqrt(2.0 / (l->in + l->out)));
    cddp_param_init(ps, seed, l->b, CDDP_INIT_NORMAL, sqrt(1.0 / l->out));
  }
}
