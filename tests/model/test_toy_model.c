/* The test-only model of toy_model.c, registered from tests/ with one table
 * line: the descriptor table finds it, cddp_model_create builds it (its
 * default variant, its schema checked), and a few SGD steps on a separable
 * image set lower its loss; a dataset of another schema is refused (exit 2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "model/model.h"
#include "train/train_child.h"

enum { B = 24, H = 4, C = 3 };

static const cddp_data_info g_images = {.schema = CDDP_SCHEMA_IMAGE, .rows = B, .height = H,
                                        .width = H, .channels = 1, .num_classes = C};

static void test_registered(void **s) {
  (void)s;
  const cddp_model_desc *d = cddp_model_find("toy");
  assert_ptr_equal(d, &cddp_model_toy);
  assert_string_equal(cddp_model_variant_name(d, 0), "default");
  assert_string_equal(cddp_model_variant_name(d, 1), "raw");
  assert_null(cddp_model_variant_name(d, 2));
  int n = 0;
  while (cddp_model_at(n)) n++;
  assert_int_equal(n, 4); /* dlrm, two_tower, vit and the toy */
}

static float loss_of(cddp_model *m, const cddp_batch *b, int train) {
  const cddp_backend *be = m->be;
  be->memset0(m->loss_sum, sizeof(float), be->compute);
  m->ops->forward(m, b, train, 1.0f / (float)b->n, NULL);
  float l;
  be->memcpy_d2h(&l, m->loss_sum, sizeof l, be->compute);
  return l / (float)b->n;
}

static void test_trains(void **s) {
  (void)s;
  const cddp_backend *be = cddp_cpu_backend();
  cddp_model_config cfg = {.arch = "toy", .batch = B, .precision = CDDP_F32, .seed = 3};
  cddp_model *m = cddp_model_create(&cfg, &g_images, be, NULL);
  assert_int_equal(m->out_cols, C);
  /* class k: row k of the image bright, the rest dark */
  uint8_t img[B * H * H];
  int32_t lab[B];
  for (int i = 0; i < B; i++) {
    lab[i] = i % C;
    for (int p = 0; p < H * H; p++) img[i * H * H + p] = p / H == lab[i] ? 200 + i : 10 + i;
  }
  cddp_batch b = {.n = B, .cap = B, .images = img, .labels = lab};
  float first = loss_of(m, &b, 0);
  cddp_params *ps = &m->params;
  for (int step = 0; step < 20; step++) {
    be->memset0(ps->grad, ps->n_dense * sizeof(float), be->compute);
    loss_of(m, &b, 1);
    m->ops->backward(m, &b, &(cddp_ready_hook){0});
    be->axpy(ps->master, ps->grad, ps->n_dense, -0.5f);
  }
  float last = loss_of(m, &b, 0);
  if (!(last < 0.5f * first)) fail_msg("loss %g -> %g after 20 steps", first, last);
  cddp_model_destroy(m);
}

static void create_on_ctr(void *arg) {
  (void)arg;
  cddp_data_info ctr = {.schema = CDDP_SCHEMA_CTR, .rows = B};
  cddp_model_config cfg = {.arch = "toy", .batch = B, .precision = CDDP_F32};
  cddp_model_create(&cfg, &ctr, cddp_cpu_backend(), NULL);
}

static void test_wrong_schema(void **s) {
  (void)s;
  char err[4096];
  assert_int_equal(run_child(create_on_ctr, NULL, err, sizeof err), 2);
  if (!strstr(err, "--model toy needs a cddp.image.v1 dataset")) fail_msg("stderr: %s", err);
}

int main(void) {
  cddp_log_set_quiet(1);
  const struct CMUnitTest t[] = {cmocka_unit_test(test_registered), cmocka_unit_test(test_trains),
                                 cmocka_unit_test(test_wrong_schema)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
