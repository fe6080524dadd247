/* Multi-head self-attention as timm's Attention: qkv Linear (D -> 3D, output
 * [B,T,3,H,hd]), scaled dot-product attention (be->attention_*), proj Linear. */
#include <stdio.h>

#include "model/layers.h"

void cddp_attention_init(cddp_attention *a, cddp_params *ps, const char *prefix, int D, int H) {
  *a = (cddp_attention){.D = D, .H = H};
  char name[96];
  snprintf(name, sizeof name, "%s.qkv", prefix);
  cddp_linear_init(&a->qkv, ps, name, D, 3 * D, 1, CDDP_ACT_NONE, 0, NULL, 0);
  snprintf(name, sizeof name, "%s.proj", prefix);
  cddp_linear_init(&a->proj, ps, name, D, D, 1, CDDP_ACT_NONE, 0, NULL, 0);
}

void cddp_attention_plan(cddp_attention *a, const cddp_lctx *c, cddp_planner *p, int batch, int T) {
  a->batch = batch;
  a->T = T;
  int N = batch * T, hd = a->D / a->H;
  a->o = cddp_plan_act(p, (size_t)N * a->D * sizeof(float));
  a->aws = cddp_plan_act(p, c->be->attention_ws_bytes(batch, T, a->H, hd));
  size_t mark = cddp_plan_mark(p);
  a->dqkv = cddp_plan_scratch(p, (size_t)N * 3 * a->D * sizeof(float));
  a->do_ = cddp_plan_scratch(p, (size_t)N * a->D * sizeof(float));
  cddp_linear_plan(&a->qkv, c, p, N, a->D);
  cddp_linear_plan(&a->proj, c, p, N, a->D);
  cddp_plan_release(p, mark);
}

void cddp_attention_fwd(cddp_attention *a, const cddp_lctx *c, const float *x, int n,
                        const float *residual) {
  a->n = n;
  int N = n * a->T;
  cddp_linear_fwd(&a->qkv, c, x, N);
  c->be->attention_fwd(a->qkv.y, a->o, a->aws, n, a->T, a->H, a->D / a->H, c->amp);
  if (residual)
    cddp_linear_fwd_residual(&a->proj, c, a->o, N, residual);
  else
    cddp_linear_fwd(&a->proj, c, a->o, N);
}

void cddp_attention_bwd(cddp_attention *a, const cddp_lctx *c, const float *dy, float *dx,
                        const cddp_ready_hook *h) {
  cddp_linear_bwd(&a->proj, c, dy, a->do_, a->D, h);
  c->be->attention_bwd(a->do_, a->qkv.y, a->o, a->aws, a->dqkv, a->n, a->T, a->H, a->D / a->H,
                       c->amp);
  cddp_linear_bwd(&a->qkv, c, a->dqkv, dx, a->D, h);
}
