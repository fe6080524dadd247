/* Vision transformer as timm's VisionTransformer (class-token pooling):
 * patch_embed -> [cls ⊕ patches] + pos_embed -> pre-LN blocks -> norm (all
 * tokens) -> head on the cls token -> softmax cross-entropy (label smoothing).
 * Backward order: head, norm, blocks (last first), pos_embed, cls_token,
 * patch_embed.proj — the exact reverse of registration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model_internal.h"

typedef struct {
  const char *name;
  int H, W, C, P, D, depth, heads;
} vit_variant;

static const vit_variant variants[] = {
    {"vit-fmnist", 28, 28, 1, 4, 96, 6, 4},
    {"deit-tiny", 224, 224, 3, 16, 192, 12, 3},
    {"deit-small", 224, 224, 3, 16, 384, 12, 6},
    {"tiny", 8, 8, 1, 4, 16, 2, 2},
};

typedef struct {
  cddp_lctx c;
  cddp_planner pl;
  int D, T, depth, classes;
  cddp_patch_embed pe;
  cddp_block *blocks;
  cddp_layernorm norm;
  cddp_linear head;
  float *dlogits; /* act [B, classes] */
  float *dnorm;   /* scratch [B*T, D] */
  float *dresid;  /* scratch [B*T, D]: the residual stream's gradient */
  int n;
} vit_impl;

static void vit_plan(cddp_model *m, cddp_planner *p) {
  vit_impl *d = m->impl;
  int B = m->cfg.batch, N = B * d->T;
  size_t ND = (size_t)N * d->D * sizeof(float);
  size_t mark = cddp_plan_mark(p);
  d->dnorm = cddp_plan_scratch(p, ND);
  d->dresid = cddp_plan_scratch(p, ND);
  cddp_patch_embed_plan(&d->pe, &d->c, p, B);
  for (int k = 0; k < d->depth; k++) cddp_block_plan(&d->blocks[k], &d->c, p, B, d->T);
  cddp_layernorm_plan(&d->norm, p, N);
  cddp_linear_plan(&d->head, &d->c, p, B, d->T * d->D);
  d->dlogits = cddp_plan_act(p, (size_t)B * d->classes * sizeof(float));
  cddp_plan_release(p, mark);
  m->logits = d->head.y;
}

static void vit_forward(cddp_model *m, const cddp_batch *b, int train, float grad_scale,
                        const float *loss_scale) {
  vit_impl *d = m->impl;
  const cddp_lctx *c = &d->c;
  int n = b->n;
  d->n = n;
  CDDP_FWD("patch_embed", -1, cddp_patch_embed_fwd(&d->pe, c, b->images, n));
  const float *x = d->pe.x;
  for (int k = 0; k < d->depth; k++) {
    CDDP_FWD("blocks.", k, cddp_block_fwd(&d->blocks[k], c, x, n));
    x = d->blocks[k].out;
  }
  CDDP_FWD("norm", -1, cddp_layernorm_fwd(&d->norm, c, x, n * d->T));
  CDDP_FWD("head", -1, cddp_linear_fwd(&d->head, c, d->norm.y, n)); /* cls rows: stride T*D */
  CDDP_FWD("loss", -1,
           cddp_loss_xent(c, m->logits, d->classes, b->labels, n, d->classes,
                          m->cfg.label_smoothing, grad_scale, loss_scale, m->loss_sum, d->dlogits));
}

static void vit_backward(cddp_model *m, const cddp_batch *b, const cddp_ready_hook *h) {
  vit_impl *d = m->impl;
  const cddp_lctx *c = &d->c;
  int n = d->n;
  size_t ND = (size_t)n * d->T * d->D;
  c->be->memset0(d->dnorm, ND * sizeof(float), c->be->compute); /* only cls rows get gradient */
  CDDP_BWD("head", -1, cddp_linear_bwd(&d->head, c, d->dlogits, d->dnorm, d->T * d->D, h));
  CDDP_BWD("norm", -1, cddp_layernorm_bwd(&d->norm, c, d->dnorm, d->dresid, 0, h));
  for (int k = d->depth - 1; k >= 0; k--)
    CDDP_BWD("blocks.", k, cddp_block_bwd(&d->blocks[k], c, d->dresid, h));
  CDDP_BWD("patch_embed", -1, cddp_patch_embed_bwd(&d->pe, c, d->dresid, h));
}

static void vit_destroy(cddp_model *m) {
  vit_impl *d = m->impl;
  cddp_planner_destroy(&d->pl);
  free(d->blocks);
  free(d);
  cddp_model_free_common(m);
}

static const cddp_model_ops vit_ops = {
    .forward = vit_forward, .backward = vit_backward, .destroy = vit_destroy};

static cddp_model *vit_create(const cddp_model_config *cfg, const cddp_data_info *data,
                              const cddp_backend *be, const cddp_model_comm *comm) {
  (void)comm;
  const vit_variant *v = cddp_model_variant(&cddp_model_vit, cfg->variant);
  if (data->height != v->H || data->width != v->W || data->channels != v->C)
    cddp_die(CDDP_EXIT_USAGE,
             "--variant %s expects %dx%dx%d images but the dataset has %dx%dx%d", v->name,
             v->H, v->W, v->C, data->height, data->width, data->channels);
  if (data->num_classes < 2)
    cddp_die(CDDP_EXIT_USAGE, "vit: dataset num_classes %d (need >= 2)", data->num_classes);
  vit_impl *d = cddp_xcalloc(sizeof *d, "vit");
  cddp_model *m = cddp_model_alloc(cfg, data, be, &vit_ops, &d->c);
  m->impl = d;
  d->D = v->D;
  d->depth = v->depth;
  d->classes = data->num_classes;
  cddp_params *ps = &m->params;
  cddp_patch_embed_init(&d->pe, ps, v->H, v->W, v->C, v->P, v->D);
  d->T = d->pe.T;
  d->blocks = cddp_xcalloc((size_t)v->depth * sizeof *d->blocks, "vit blocks");
  for (int k = 0; k < v->depth; k++) {
    char name[64];
    snprintf(name, sizeof name, "blocks.%d", k);
    cddp_block_init(&d->blocks[k], ps, name, v->D, v->heads, 4);
  }
  cddp_layernorm_init(&d->norm, ps, "norm", v->D, 1e-6f);
  cddp_linear_init(&d->head, ps, "head", v->D, d->classes, 1, CDDP_ACT_NONE, 0, NULL, 0);
  cddp_model_alloc_params(m, &d->c);
  cddp_model_plan(m, &d->pl, vit_plan);
  m->out_cols = d->classes;
  /* timm init */
  cddp_patch_embed_init_values(&d->pe, ps, cfg->seed);
  for (int k = 0; k < v->depth; k++) cddp_block_init_values(&d->blocks[k], ps, cfg->seed);
  cddp_layernorm_init_values(&d->norm, ps, cfg->seed);
  cddp_param_init(ps, cfg->seed, d->head.w, CDDP_INIT_TRUNC_NORMAL, 0.02);
  cddp_param_init(ps, cfg->seed, d->head.b, CDDP_INIT_ZERO, 0);
  cddp_params_refresh_half(&m->params);
  return m;
}

const cddp_model_desc cddp_model_vit = {
    .name = "vit",
    CDDP_MODEL_VARIANTS(variants),
    .schema = CDDP_SCHEMA_IMAGE,
    .metric = "accuracy",
    .options = "--label-smoothing --random-crop-pad --random-flip",
    .create = vit_create,
};
