/* ViT input: patchify (normalise + unfold) -> Linear with the Conv2d weight
 * [D, C, P, P] -> prepend cls token, add position embedding. */
#include <math.h>

#include "core/error.h"
#include "model/layers.h"

void cddp_patch_embed_init(cddp_patch_embed *pe, cddp_params *ps, int H, int W, int C, int P,
                           int D) {
  *pe = (cddp_patch_embed){.H = H, .W = W, .C = C, .P = P, .D = D};
  if (H % P || W % P) cddp_die(CDDP_EXIT_USAGE, "image %dx%d is not a multiple of patch %d", H, W, P);
  pe->nP = (H / P) * (W / P);
  pe->T = pe->nP + 1;
  if (C == 1) { /* Fashion-MNIST statistics */
    pe->mean[0] = 0.2860f;
    pe->std[0] = 0.3530f;
  } else if (C == 3) { /* ImageNet statistics */
    const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
    for (int i = 0; i < 3; i++) {
      pe->mean[i] = m[i];
      pe->std[i] = s[i];
    }
  } else {
    cddp_die(CDDP_EXIT_USAGE, "vit: images with %d channels (1 or 3 supported)", C);
  }
  int64_t ws[4] = {D, C, P, P};
  cddp_linear_init(&pe->proj, ps, "patch_embed.proj", C * P * P, D, 1, CDDP_ACT_NONE, 0, ws, 4);
  int64_t cs[3] = {1, 1, D}, ts[3] = {1, pe->T, D};
  pe->cls = cddp_params_add(ps, "cls_token", 3, cs, CDDP_PARAM_NO_WD);
  pe->pos = cddp_params_add(ps, "pos_embed", 3, ts, CDDP_PARAM_NO_WD);
}

void cddp_patch_embed_plan(cddp_patch_embed *pe, const cddp_lctx *c, cddp_planner *p, int batch) {
  pe->batch = batch;
  int K = pe->C * pe->P * pe->P;
  pe->patches = cddp_plan_act(p, (size_t)batch * pe->nP * K * sizeof(float));
  pe->x = cddp_plan_act(p, (size_t)batch * pe->T * pe->D * sizeof(float));
  /* ops.h arrays are device pointers: mean/std go to the device once here */
  pe->dmean = cddp_plan_act(p, 3 * sizeof(float));
  pe->dstd = cddp_plan_act(p, 3 * sizeof(float));
  if (pe->dmean) {
    c->be->memcpy_h2d(pe->dmean, pe->mean, 3 * sizeof(float), c->be->compute);
    c->be->memcpy_h2d(pe->dstd, pe->std, 3 * sizeof(float), c->be->compute);
    c->be->stream_sync(c->be->compute);
  }
  size_t mark = cddp_plan_mark(p);
  pe->dpatch = cddp_plan_scratch(p, (size_t)batch * pe->nP * pe->D * sizeof(float));
  cddp_linear_plan(&pe->proj, c, p, batch * pe->nP, K);
  cddp_plan_release(p, mark);
}

void cddp_patch_embed_fwd(cddp_patch_embed *pe, const cddp_lctx *c, const uint8_t *img, int n) {
  pe->n = n;
  c->be->patchify(img, n, pe->H, pe->W, pe->C, pe->P, pe->dmean, pe->dstd, pe->patches);
  cddp_linear_fwd(&pe->proj, c, pe->patches, n * pe->nP);
  c->be->vit_tokens_fwd(pe->proj.y, cddp_param_data(c->ps, pe->cls),
                        cddp_param_data(c->ps, pe->pos), pe->x, n, pe->nP, pe->D);
}

void cddp_patch_embed_bwd(cddp_patch_embed *pe, const cddp_lctx *c, const float *dx,
                          const cddp_ready_hook *h) {
  c->be->vit_tokens_bwd(dx, pe->dpatch, cddp_param_grad(c->ps, pe->cls),
                        cddp_param_grad(c->ps, pe->pos), pe->n, pe->nP, pe->D);
  cddp_mark_ready(h, pe->pos);
  cddp_mark_ready(h, pe->cls);
  cddp_linear_bwd(&pe->proj, c, pe->dpatch, NULL, 0, h);
}

void cddp_patch_embed_init_values(cddp_patch_embed *pe, cddp_params *ps, uint64_t seed) {
  /* Conv2d default (kaiming_uniform a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
  double bound = 1.0 / sqrt((double)pe->C * pe->P * pe->P);
  cddp_param_init(ps, seed, pe->proj.w, CDDP_INIT_UNIFORM, bound);
  cddp_param_init(ps, seed, pe->proj.b, CDDP_INIT_UNIFORM, bound);
  cddp_param_init(ps, seed, pe->cls, CDDP_INIT_NORMAL, 1e-6);
  cddp_param_init(ps, seed, pe->pos, CDDP_INIT_TRUNC_NORMAL, 0.02);
}
