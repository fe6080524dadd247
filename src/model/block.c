/* Pre-LN transformer block (timm Block): x1 = x + attn(ln1(x));
 * out = x1 + fc2(gelu(fc1(ln2(x1)))). GELU (tanh form) is fused into fc1's
 * GEMM, the residual adds into the GEMMs of attn.proj and fc2; backward keeps
 * the residual stream's gradient in one buffer that the layer norms'
 * backward passes accumulate into. */
#include <stdio.h>

#include "model/layers.h"

void cddp_block_init(cddp_block *b, cddp_params *ps, const char *prefix, int D, int H,
                     int mlp_ratio) {
  *b = (cddp_block){.D = D};
  char name[96];
  snprintf(name, sizeof name, "%s.norm1", prefix);
  cddp_layernorm_init(&b->ln1, ps, name, D, 1e-6f);
  snprintf(name, sizeof name, "%s.attn", prefix);
  cddp_attention_init(&b->attn, ps, name, D, H);
  snprintf(name, sizeof name, "%s.norm2", prefix);
  cddp_layernorm_init(&b->ln2, ps, name, D, 1e-6f);
  snprintf(name, sizeof name, "%s.mlp.fc1", prefix);
  cddp_linear_init(&b->fc1, ps, name, D, mlp_ratio * D, 1, CDDP_ACT_GELU, 0, NULL, 0);
  snprintf(name, sizeof name, "%s.mlp.fc2", prefix);
  cddp_linear_init(&b->fc2, ps, name, mlp_ratio * D, D, 1, CDDP_ACT_NONE, 0, NULL, 0);
}

void cddp_block_plan(cddp_block *b, const cddp_lctx *c, cddp_planner *p, int batch, int T) {
  b->batch = batch;
  b->T = T;
  int N = batch * T, D = b->D;
  size_t mark = cddp_plan_mark(p);
  b->dh = cddp_plan_scratch(p, (size_t)N * D * sizeof(float));
  b->dm = cddp_plan_scratch(p, (size_t)N * b->fc1.out * sizeof(float));
  cddp_layernorm_plan(&b->ln1, p, N);
  cddp_attention_plan(&b->attn, c, p, batch, T);
  cddp_layernorm_plan(&b->ln2, p, N);
  cddp_linear_plan(&b->fc1, c, p, N, D);
  cddp_linear_plan(&b->fc2, c, p, N, b->fc1.out);
  cddp_plan_release(p, mark);
  b->x1 = cddp_attention_out(&b->attn);
  b->out = b->fc2.y;
}

void cddp_block_fwd(cddp_block *b, const cddp_lctx *c, const float *x, int n) {
  int N = n * b->T;
  b->x = x;
  b->n = n;
  cddp_layernorm_fwd(&b->ln1, c, x, N);
  cddp_attention_fwd(&b->attn, c, b->ln1.y, n, x); /* x1 = x + attn */
  cddp_layernorm_fwd(&b->ln2, c, b->x1, N);
  cddp_linear_fwd(&b->fc1, c, b->ln2.y, N);
  cddp_linear_fwd_residual(&b->fc2, c, b->fc1.y, N, b->x1); /* out = x1 + mlp */
}

void cddp_block_bwd(cddp_block *b, const cddp_lctx *c, float *dresid, const cddp_ready_hook *h) {
  cddp_linear_bwd(&b->fc2, c, dresid, b->dm, b->fc1.out, h);
  cddp_linear_bwd(&b->fc1, c, b->dm, b->dh, b->D, h);
  cddp_layernorm_bwd(&b->ln2, c, b->dh, dresid, 1, h); /* d x1 */
  cddp_attention_bwd(&b->attn, c, dresid, b->dh, h);
  cddp_layernorm_bwd(&b->ln1, c, b->dh, dresid, 1, h); /* d x */
}

static void init_linear_timm(const cddp_linear *l, cddp_params *ps, uint64_t seed) {
  cddp_param_init(ps, seed, l->w, CDDP_INIT_TRUNC_NORMAL, 0.02);
  cddp_param_init(ps, seed, l->b, CDDP_INIT_ZERO, 0);
}

void cddp_block_init_values(cddp_block *b, cddp_params *ps, uint64_t seed) {
  cddp_layernorm_init_values(&b->ln1, ps, seed);
  init_linear_timm(&b->attn.qkv, ps, seed);
  init_linear_timm(&b->attn.proj, ps, seed);
  cddp_layernorm_init_values(&b->ln2, ps, seed);
  init_linear_timm(&b->fc1, ps, seed);
  init_linear_timm(&b->fc2, ps, seed);
}
