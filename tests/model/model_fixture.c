#include "model_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fd_util.h"

void fx_info(const char *arch, cddp_data_info *info) {
  *info = (cddp_data_info){0};
  if (!strcmp(arch, "dlrm")) {
    info->schema = CDDP_SCHEMA_CTR;
    for (int t = 0; t < CDDP_CTR_SPARSE; t++) info->table_sizes[t] = 3 + (t * 7) % 23;
  } else if (!strcmp(arch, "two_tower")) {
    info->schema = CDDP_SCHEMA_TWOTOWER;
    info->hist_len = 4;
    info->num_users = 20;
    info->num_items = 30;
    info->num_cats = 5;
  } else {
    info->schema = CDDP_SCHEMA_IMAGE;
    info->height = info->width = 8;
    info->channels = 1;
    info->num_classes = 5;
  }
}

cddp_model *fx_model(const char *arch, int B, uint64_t seed, int64_t thr, cddp_dtype precision) {
  cddp_data_info info;
  fx_info(arch, &info);
  cddp_model_config cfg = {.arch = arch, .variant = "tiny", .batch = B, .precision = precision,
                           .seed = seed, .dense_embedding_threshold = thr,
                           .label_smoothing = 0.1f, .temperature = 0.2f};
  const cddp_backend *be = cddp_cpu_backend();
  be->set_threads(1);
  return cddp_model_create(&cfg, &info, be, NULL);
}

void fx_batch_make(fx_batch *fb, const char *arch, int B, uint64_t seed) {
  memset(fb, 0, sizeof *fb);
  fx_info(arch, &fb->info);
  const cddp_data_info *in = &fb->info;
  cddp_batch *b = &fb->b;
  b->n = b->cap = B;
  if (in->schema == CDDP_SCHEMA_CTR) {
    b->dense = malloc((size_t)B * 13 * sizeof(float));
    b->sparse = malloc((size_t)B * 26 * sizeof(int32_t));
    b->label = malloc((size_t)B * sizeof(float));
    for (int i = 0; i < B; i++) {
      for (int j = 0; j < 13; j++) b->dense[i * 13 + j] = (float)(3 * tu_unif(&seed));
      for (int t = 0; t < 26; t++)
        b->sparse[i * 26 + t] = (int32_t)(tu_next(&seed) % (uint64_t)in->table_sizes[t]);
      b->label[i] = b->dense[i * 13] + (b->sparse[i * 26] & 1) > 2.0f;
    }
  } else if (in->schema == CDDP_SCHEMA_TWOTOWER) {
    int H = in->hist_len;
    b->user_id = malloc((size_t)B * sizeof(int32_t));
    b->user_hist = malloc((size_t)B * H * sizeof(int32_t));
    b->item_id = malloc((size_t)B * sizeof(int32_t));
    b->item_cat = malloc((size_t)B * sizeof(int32_t));
    for (int i = 0; i < B; i++) {
      b->user_id[i] = (int32_t)(tu_next(&seed) % in->num_users);
      int valid = (int)(tu_next(&seed) % (H + 1)); /* 0..H valid ids, rest -1 */
      for (int k = 0; k < H; k++)
        b->user_hist[i * H + k] = k < valid ? (int32_t)(tu_next(&seed) % in->num_items) : -1;
      /* items related to the user: learnable */
      b->item_id[i] = (int32_t)((b->user_id[i] * 3 + (tu_next(&seed) & 1)) % in->num_items);
      b->item_cat[i] = b->item_id[i] % (int32_t)in->num_cats;
    }
  } else {
    size_t px = (size_t)in->height * in->width * in->channels;
    b->images = malloc((size_t)B * px);
    b->labels = malloc((size_t)B * sizeof(int32_t));
    for (int i = 0; i < B; i++) {
      int y = (int)(tu_next(&seed) % in->num_classes);
      b->labels[i] = y;
      for (size_t k = 0; k < px; k++) /* brightness pattern depends on the class */
        b->images[i * px + k] =
            (uint8_t)((k % in->num_classes == (size_t)y ? 160 : 40) + (tu_next(&seed) % 64));
    }
  }
}

void fx_batch_free(fx_batch *fb) {
  cddp_batch *b = &fb->b;
  free(b->dense);
  free(b->sparse);
  free(b->label);
  free(b->user_id);
  free(b->user_hist);
  free(b->item_id);
  free(b->item_cat);
  free(b->images);
  free(b->labels);
  memset(fb, 0, sizeof *fb);
}

double fx_forward(cddp_model *m, const cddp_batch *b, int train) {
  *m->loss_sum = 0;
  m->ops->forward(m, b, train, 1.0f / b->n, NULL);
  return (double)*m->loss_sum / b->n;
}

void fx_zero_grads(cddp_model *m) {
  memset(m->params.grad, 0, m->params.n_dense * sizeof(float));
}

void fx_sgd(cddp_model *m, float lr) {
  const cddp_backend *be = m->be;
  cddp_params *ps = &m->params;
  be->sgd_update(ps->master, ps->grad, NULL, ps->n_dense, lr, 0, 0, 0, NULL, ps->half, ps->half_t);
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    if (p->flags & CDDP_PARAM_SPARSE)
      be->sparse_sgd(cddp_param_data(ps, i), (int)p->shape[1], p->sp_ids, p->sp_rows, p->sp_cap,
                     lr, NULL);
  }
}

float *fx_sparse_dense(const cddp_model *m, int id) {
  const cddp_param *p = &m->params.p[id];
  int dim = (int)p->shape[1];
  float *d = cddp_xcalloc(p->numel * sizeof(float), "test");
  for (int i = 0; i < p->sp_cap; i++)
    if (p->sp_ids[i] >= 0)
      for (int k = 0; k < dim; k++) d[(size_t)p->sp_ids[i] * dim + k] += p->sp_rows[i * dim + k];
  return d;
}
