/* Layer norm over the last dimension (nn.LayerNorm, elementwise affine). */
#include <stdio.h>

#include "model/layers.h"

void cddp_layernorm_init(cddp_layernorm *ln, cddp_params *ps, const char *prefix, int C, float eps) {
  *ln = (cddp_layernorm){.C = C, .eps = eps};
  char name[96];
  int64_t s[1] = {C};
  snprintf(name, sizeof name, "%s.weight", prefix);
  ln->w = cddp_params_add(ps, name, 1, s, CDDP_PARAM_NO_WD);
  snprintf(name, sizeof name, "%s.bias", prefix);
  ln->b = cddp_params_add(ps, name, 1, s, CDDP_PARAM_NO_WD);
}

void cddp_layernorm_plan(cddp_layernorm *ln, cddp_planner *p, int rows) {
  ln->rows = rows;
  ln->y = cddp_plan_act(p, (size_t)rows * ln->C * sizeof(float));
  ln->mean = cddp_plan_act(p, (size_t)rows * sizeof(float));
  ln->rstd = cddp_plan_act(p, (size_t)rows * sizeof(float));
}

void cddp_layernorm_fwd(cddp_layernorm *ln, const cddp_lctx *c, const float *x, int n) {
  ln->x = x;
  ln->n = n;
  c->be->layernorm_fwd(x, cddp_param_data(c->ps, ln->w), cddp_param_data(c->ps, ln->b), ln->y,
                       ln->mean, ln->rstd, n, ln->C, ln->eps);
}

void cddp_layernorm_bwd(cddp_layernorm *ln, const cddp_lctx *c, const float *dy, float *dx,
                        int accumulate, const cddp_ready_hook *h) {
  c->be->layernorm_bwd(dy, ln->x, cddp_param_data(c->ps, ln->w), ln->mean, ln->rstd, dx,
                       cddp_param_grad(c->ps, ln->w), cddp_param_grad(c->ps, ln->b), ln->n,
                       ln->C, accumulate);
  cddp_mark_ready(h, ln->b);
  cddp_mark_ready(h, ln->w);
}

void cddp_layernorm_init_values(cddp_layernorm *ln, cddp_params *ps, uint64_t seed) {
  cddp_param_init(ps, seed, ln->w, CDDP_INIT_ONE, 0);
  cddp_param_init(ps, seed, ln->b, CDDP_INIT_ZERO, 0);
}
