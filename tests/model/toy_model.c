/* A test-only model, registered the way a shipped one is: this file plus one
 * table line (CDDP_TEST_MODELS=CDDP_MODEL(toy) for the test build, read by
 * model_list.h). Softmax regression on cddp.image.v1 images: every image is
 * one patch (patchify with P = H), then one linear layer and cross-entropy. */
#include <stdlib.h>

#include "core/error.h"
#include "model/model_internal.h"

typedef struct {
  const char *name;
  float mean, std; /* pixel normalisation */
} toy_variant;

static const toy_variant variants[] = {{"default", 0.5f, 0.25f}, {"raw", 0.0f, 1.0f}};

typedef struct {
  cddp_lctx c;
  cddp_planner pl;
  const toy_variant *v;
  int H, W, C, classes;
  cddp_linear head;
  float *x, *dlogits; /* act [B, H*W*C], [B, classes] */
  float *dmean, *dstd; /* act [3] each: patchify's per-channel normalisation */
} toy_impl;

static void toy_plan(cddp_model *m, cddp_planner *p) {
  toy_impl *d = m->impl;
  int B = m->cfg.batch, in = d->H * d->W * d->C;
  d->x = cddp_plan_act(p, (size_t)B * in * sizeof(float));
  d->dlogits = cddp_plan_act(p, (size_t)B * d->classes * sizeof(float));
  d->dmean = cddp_plan_act(p, 3 * sizeof(float));
  d->dstd = cddp_plan_act(p, 3 * sizeof(float));
  cddp_linear_plan(&d->head, &d->c, p, B, in);
  m->logits = d->head.y;
}

static void toy_forward(cddp_model *m, const cddp_batch *b, int train, float grad_scale,
                        const float *loss_scale) {
  toy_impl *d = m->impl;
  const cddp_lctx *c = &d->c;
  c->be->patchify(b->images, b->n, d->H, d->W, d->C, d->H, d->dmean, d->dstd, d->x);
  cddp_linear_fwd(&d->head, c, d->x, b->n);
  (void)train; /* the gradient of the logits is cheap: written either way */
  cddp_loss_xent(c, m->logits, d->classes, b->labels, b->n, d->classes, 0.0f, grad_scale,
                 loss_scale, m->loss_sum, d->dlogits);
}

static void toy_backward(cddp_model *m, const cddp_batch *b, const cddp_ready_hook *h) {
  (void)b;
  toy_impl *d = m->impl;
  cddp_linear_bwd(&d->head, &d->c, d->dlogits, NULL, 0, h);
}

static void toy_destroy(cddp_model *m) {
  toy_impl *d = m->impl;
  cddp_planner_destroy(&d->pl);
  free(d);
  cddp_model_free_common(m);
}

static const cddp_model_ops toy_ops = {
    .forward = toy_forward, .backward = toy_backward, .destroy = toy_destroy};

static cddp_model *toy_create(const cddp_model_config *cfg, const cddp_data_info *data,
                              const cddp_backend *be, const cddp_model_comm *comm) {
  (void)comm;
  if (data->height != data->width)
    cddp_die(CDDP_EXIT_USAGE, "toy: square images only (got %dx%d)", data->height, data->width);
  toy_impl *d = cddp_xcalloc(sizeof *d, "toy");
  cddp_model *m = cddp_model_alloc(cfg, data, be, &toy_ops, &d->c);
  m->impl = d;
  d->v = cddp_model_variant(&cddp_model_toy, cfg->variant);
  d->H = data->height, d->W = data->width, d->C = data->channels, d->classes = data->num_classes;
  cddp_linear_init(&d->head, &m->params, "head", d->H * d->W * d->C, d->classes, 1,
                   CDDP_ACT_NONE, 0, NULL, 0);
  cddp_model_alloc_params(m, &d->c);
  cddp_model_plan(m, &d->pl, toy_plan);
  m->out_cols = d->classes;
  float mean[3] = {d->v->mean, d->v->mean, d->v->mean}, std[3] = {d->v->std, d->v->std, d->v->std};
  be->memcpy_h2d(d->dmean, mean, sizeof mean, be->compute);
  be->memcpy_h2d(d->dstd, std, sizeof std, be->compute);
  cddp_param_init(&m->params, cfg->seed, d->head.w, CDDP_INIT_UNIFORM, 0.01);
  cddp_params_refresh_half(&m->params);
  return m;
}

const cddp_model_desc cddp_model_toy = {
    .name = "toy",
    CDDP_MODEL_VARIANTS(variants),
    .schema = CDDP_SCHEMA_IMAGE,
    .metric = "accuracy",
    .options = "",
    .create = toy_create,
};
