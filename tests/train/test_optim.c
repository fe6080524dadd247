/* Optimizer ranges, AdamW/SGD/sparse Adagrad against host references, the
 * learning rate of embeddings, weight decay skipping NO_WD params, global-norm
 * clipping over dense and sparse gradients, and the fp16 loss scaler:
 * an injected inf skips the step (parameters unchanged), halves the scale
 * and does not advance the step counter; the scale doubles after `interval`
 * clean steps. CPU backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "train/amp.h"
#include "train/optimizer.h"

static uint64_t rs;
static float frand(void) {
  rs = rs * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rs >> 40) / 16777216.0) * 2 - 1;
}

typedef struct {
  cddp_params ps;
  int w, b, emb, demb;
} model;

static void build(model *m, const cddp_backend *be, uint64_t seed) {
  rs = seed;
  cddp_params_init(&m->ps);
  int64_t sw[2] = {5, 3}, sb[1] = {5}, se[2] = {10, 4}, sd[2] = {6, 2};
  m->demb = cddp_params_add(&m->ps, "demb.weight", 2, sd, CDDP_PARAM_EMBEDDING);
  m->w = cddp_params_add(&m->ps, "fc.weight", 2, sw, 0);
  m->b = cddp_params_add(&m->ps, "fc.bias", 1, sb, CDDP_PARAM_NO_WD);
  m->emb = cddp_params_add(&m->ps, "emb.weight", 2, se, CDDP_PARAM_SPARSE);
  cddp_params_finalize(&m->ps);
  cddp_params_alloc(&m->ps, be, CDDP_F32);
  for (size_t i = 0; i < m->ps.n_master; i++) m->ps.master[i] = frand();
}

static void fill_grads(model *m, float *g, cddp_sparse_grad *sp, int32_t *ids, float *rows,
                       float mult) {
  for (size_t i = 0; i < m->ps.n_dense; i++) m->ps.grad[i] = g[i] * mult;
  ids[0] = 1, ids[1] = 7, ids[2] = -1;
  for (int i = 0; i < 12; i++) rows[i] = i < 8 ? g[i] * mult : 0;
  sp[m->emb] = (cddp_sparse_grad){ids, rows, 3};
}

static void test_amp_skip_and_growth(void **s) {
  (void)s;
  const cddp_backend *be = cddp_cpu_backend();
  model m;
  build(&m, be, 11);
  cddp_optimizer o;
  cddp_opt_config oc = {.name = "sgd", .lr = 0.1, .emb_lr = 0.1};
  cddp_optimizer_init(&o, &m.ps, be, &oc);
  cddp_amp a;
  cddp_amp_init(&a, be, 1, 1024.0f, 2.0f, 0.5f, 3);
  size_t n = m.ps.n_master;
  float *before = malloc(n * sizeof(float)), g[64];
  for (int i = 0; i < 64; i++) g[i] = frand();
  cddp_sparse_grad sp[4] = {{0}};
  int32_t ids[3];
  float rows[12];
  memcpy(before, m.ps.master, n * sizeof(float));
  fill_grads(&m, g, sp, ids, rows, 1024.0f);
  m.ps.grad[3] = INFINITY; /* the injected overflow */
  cddp_amp_begin_step(&a);
  cddp_amp_unscale_check(&a, &m.ps, sp);
  cddp_optimizer_step(&o, sp, 1.0, cddp_amp_skip(&a));
  cddp_amp_update(&a);
  float scale;
  int tracker, found;
  cddp_amp_get(&a, &scale, &tracker, &found);
  assert_int_equal(found, 1);
  assert_true(scale == 512.0f);
  assert_memory_equal(before, m.ps.master, n * sizeof(float));
  assert_int_equal(*o.step, 0);
  for (int k = 0; k < 3; k++) { /* clean steps with scaled gradients */
    memcpy(before, m.ps.master, n * sizeof(float));
    fill_grads(&m, g, sp, ids, rows, scale);
    cddp_amp_begin_step(&a);
    cddp_amp_unscale_check(&a, &m.ps, sp);
    cddp_optimizer_step(&o, sp, 1.0, cddp_amp_skip(&a));
    cddp_amp_update(&a);
    for (size_t i = 0; i < m.ps.n_dense; i++)
      assert_true(fabsf(m.ps.master[i] - (before[i] - 0.1f * g[i])) < 1e-6f);
    float *tab = m.ps.master + m.ps.p[m.emb].offset, *tb = before + m.ps.p[m.emb].offset;
    for (int d = 0; d < 4; d++) {
      assert_true(fabsf(tab[1 * 4 + d] - (tb[1 * 4 + d] - 0.1f * g[d])) < 1e-6f);
      assert_true(fabsf(tab[7 * 4 + d] - (tb[7 * 4 + d] - 0.1f * g[4 + d])) < 1e-6f);
      assert_true(tab[0 * 4 + d] == tb[0 * 4 + d]);
    }
    cddp_amp_get(&a, &scale, &tracker, &found);
    assert_int_equal(found, 0);
    assert_true(scale == (k < 2 ? 512.0f : 1024.0f));
  }
  assert_int_equal(*o.step, 3);
  cddp_amp_free(&a);
  cddp_optimizer_free(&o);
  cddp_params_free(&m.ps);
  free(before);
}

static void test_adamw_groups(void **s) {
  (void)s;
  const cddp_backend *be = cddp_cpu_backend();
  model m;
  build(&m, be, 23);
  cddp_opt_config oc = {.name = "adamw", .lr = 0.01, .emb_lr = 0.05, .weight_decay = 0.1,
                        .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8};
  cddp_optimizer o;
  cddp_optimizer_init(&o, &m.ps, be, &oc);
  /* offsets: fc.bias, fc.weight, demb (reverse registration): three groups */
  assert_int_equal(o.n_ranges, 3);
  size_t n = m.ps.n_dense;
  double *p = malloc(n * sizeof(double)), *mm = calloc(n, sizeof(double)), *vv = calloc(n, sizeof(double));
  for (size_t i = 0; i < n; i++) p[i] = m.ps.master[i];
  size_t nt = (size_t)10 * 4;
  double *tab = malloc(nt * sizeof(double)), *acc = calloc(nt, sizeof(double));
  float *mt = m.ps.master + m.ps.p[m.emb].offset;
  for (size_t i = 0; i < nt; i++) tab[i] = mt[i];
  for (int t = 1; t <= 3; t++) {
    float g[64];
    for (int i = 0; i < 64; i++) g[i] = frand();
    cddp_sparse_grad sp[4] = {{0}};
    int32_t ids[3];
    float rows[12];
    fill_grads(&m, g, sp, ids, rows, 1.0f);
    cddp_optimizer_step(&o, sp, 0.5, NULL); /* lr factor halves both rates */
    for (int pi = 0; pi < m.ps.n; pi++) {
      const cddp_param *q = &m.ps.p[pi];
      if (q->flags & CDDP_PARAM_SPARSE) continue;
      double lr = 0.5 * ((q->flags & CDDP_PARAM_EMBEDDING) ? 0.05 : 0.01);
      double wd = (q->flags & CDDP_PARAM_NO_WD) ? 0 : 0.1;
      for (size_t i = q->offset; i < q->offset + q->numel; i++) {
        p[i] *= 1 - lr * wd;
        mm[i] = 0.9 * mm[i] + 0.1 * g[i];
        vv[i] = 0.99 * vv[i] + 0.01 * (double)g[i] * g[i];
        double mh = mm[i] / (1 - pow(0.9, t)), vh = vv[i] / (1 - pow(0.99, t));
        p[i] -= lr * mh / (sqrt(vh) + 1e-8);
      }
    }
    for (int r = 0; r < 2; r++) /* sparse rows: Adagrad with the embedding lr */
      for (int d = 0; d < 4; d++) {
        size_t k = (size_t)ids[r] * 4 + d;
        double gv = rows[r * 4 + d];
        acc[k] += gv * gv;
        tab[k] -= 0.5 * 0.05 * gv / (sqrt(acc[k]) + 1e-8);
      }
  }
  for (size_t i = 0; i < n; i++)
    if (fabs(m.ps.master[i] - p[i]) > 1e-5) fail_msg("param %zu: %g vs %g", i, m.ps.master[i], p[i]);
  for (size_t i = 0; i < nt; i++) assert_true(fabs(mt[i] - tab[i]) < 1e-5);
  cddp_optimizer_free(&o);
  cddp_params_free(&m.ps);
  free(p), free(mm), free(vv), free(tab), free(acc);
}

static void test_clip(void **s) {
  (void)s;
  const cddp_backend *be = cddp_cpu_backend();
  model m;
  build(&m, be, 37);
  cddp_opt_config oc = {.name = "sgd", .lr = 0.1, .emb_lr = 0.1};
  cddp_optimizer o;
  cddp_optimizer_init(&o, &m.ps, be, &oc);
  float g[64];
  for (int i = 0; i < 64; i++) g[i] = frand() * 3;
  cddp_sparse_grad sp[4] = {{0}};
  int32_t ids[3];
  float rows[12];
  fill_grads(&m, g, sp, ids, rows, 1.0f);
  double ss = 0;
  for (size_t i = 0; i < m.ps.n_dense; i++) ss += (double)g[i] * g[i];
  for (int i = 0; i < 8; i++) ss += (double)g[i] * g[i];
  double norm = sqrt(ss), maxn = norm / 4, f = maxn / (norm + 1e-6);
  cddp_optimizer_clip(&o, sp, maxn);
  for (size_t i = 0; i < m.ps.n_dense; i++) assert_true(fabs(m.ps.grad[i] - g[i] * f) < 1e-5);
  for (int i = 0; i < 8; i++) assert_true(fabs(rows[i] - g[i] * f) < 1e-5);
  fill_grads(&m, g, sp, ids, rows, 1.0f);
  cddp_optimizer_clip(&o, sp, norm * 2); /* below the limit: unchanged */
  for (size_t i = 0; i < m.ps.n_dense; i++) assert_true(fabs(m.ps.grad[i] - g[i]) < 1e-6);
  cddp_optimizer_free(&o);
  cddp_params_free(&m.ps);
}

/* Adagrad, dense (L2 decay, per-group lr) and sparse, against a host loop. */
static void test_adagrad(void **s) {
  (void)s;
  const cddp_backend *be = cddp_cpu_backend();
  model m;
  build(&m, be, 41);
  cddp_opt_config oc = {.name = "adagrad", .lr = 0.1, .emb_lr = 0.2, .weight_decay = 0.01,
                        .eps = 1e-10};
  cddp_optimizer o;
  cddp_optimizer_init(&o, &m.ps, be, &oc);
  size_t n = m.ps.n_dense, nt = (size_t)10 * 4;
  double *p = malloc(n * sizeof(double)), *acc = calloc(n, sizeof(double));
  double *tab = malloc(nt * sizeof(double)), *tacc = calloc(nt, sizeof(double));
  float *mt = m.ps.master + m.ps.p[m.emb].offset;
  for (size_t i = 0; i < n; i++) p[i] = m.ps.master[i];
  for (size_t i = 0; i < nt; i++) tab[i] = mt[i];
  for (int t = 1; t <= 3; t++) {
    float g[64];
    for (int i = 0; i < 64; i++) g[i] = frand();
    cddp_sparse_grad sp[4] = {{0}};
    int32_t ids[3];
    float rows[12];
    fill_grads(&m, g, sp, ids, rows, 1.0f);
    cddp_optimizer_step(&o, sp, 1.0, NULL);
    for (int pi = 0; pi < m.ps.n; pi++) {
      const cddp_param *q = &m.ps.p[pi];
      if (q->flags & CDDP_PARAM_SPARSE) continue;
      double lr = (q->flags & CDDP_PARAM_EMBEDDING) ? 0.2 : 0.1;
      double wd = (q->flags & CDDP_PARAM_NO_WD) ? 0 : 0.01;
      for (size_t i = q->offset; i < q->offset + q->numel; i++) {
        double gv = g[i] + wd * p[i];
        acc[i] += gv * gv;
        p[i] -= lr * gv / (sqrt(acc[i]) + 1e-10);
      }
    }
    for (int r = 0; r < 2; r++)
      for (int d = 0; d < 4; d++) {
        size_t k = (size_t)ids[r] * 4 + d;
        double gv = rows[r * 4 + d];
        tacc[k] += gv * gv;
        tab[k] -= 0.2 * gv / (sqrt(tacc[k]) + 1e-10);
      }
  }
  for (size_t i = 0; i < n; i++)
    if (fabs(m.ps.master[i] - p[i]) > 1e-5) fail_msg("param %zu: %g vs %g", i, m.ps.master[i], p[i]);
  for (size_t i = 0; i < nt; i++) assert_true(fabs(mt[i] - tab[i]) < 1e-5);
  cddp_optimizer_free(&o);
  cddp_params_free(&m.ps);
  free(p), free(acc), free(tab), free(tacc);
}

/* The state each optimizer exposes to checkpoints, with torch.optim's names. */
static void test_state_names(void **s) {
  (void)s;
  const cddp_backend *be = cddp_cpu_backend();
  model m;
  build(&m, be, 43);
  static const struct {
    const char *opt;
    double momentum;
    int n_dense, n_sparse;
    const char *dense[2], *sparse;
  } cases[] = {{"sgd", 0, 0, 0, {NULL, NULL}, NULL},
               {"sgd", 0.9, 1, 0, {"momentum_buffer", NULL}, NULL},
               {"adamw", 0, 2, 1, {"exp_avg", "exp_avg_sq"}, "sum"},
               {"adagrad", 0, 1, 1, {"sum", NULL}, "sum"}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    cddp_opt_config oc = {.name = cases[c].opt, .lr = 0.1, .emb_lr = 0.1,
                          .momentum = cases[c].momentum, .eps = 1e-8};
    cddp_optimizer o;
    cddp_optimizer_init(&o, &m.ps, be, &oc);
    const char *names[CDDP_OPT_MAX_STATES];
    float *ptrs[CDDP_OPT_MAX_STATES];
    int nd = cddp_optimizer_param_states(&o, m.w, names, ptrs);
    assert_int_equal(nd, cases[c].n_dense);
    for (int k = 0; k < nd; k++) {
      assert_string_equal(names[k], cases[c].dense[k]);
      assert_ptr_equal(ptrs[k], o.dense_state[k] + m.ps.p[m.w].offset);
    }
    int ns = cddp_optimizer_param_states(&o, m.emb, names, ptrs);
    assert_int_equal(ns, cases[c].n_sparse);
    if (ns) assert_string_equal(names[0], cases[c].sparse);
    assert_int_equal(cddp_optimizer_states_per_param(&oc), strcmp(cases[c].opt, "adamw") ? 1 : 2);
    cddp_optimizer_free(&o);
  }
  cddp_params_free(&m.ps);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_amp_skip_and_growth),
                                 cmocka_unit_test(test_adamw_groups), cmocka_unit_test(test_adagrad),
                                 cmocka_unit_test(test_state_names), cmocka_unit_test(test_clip)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
