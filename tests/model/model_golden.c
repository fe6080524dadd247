/* cddp against PyTorch: tests/golden/{dlrm,two_tower,vit}_tiny.h5 (written by
 * bench/pytorch/make_golden.py; format in tests/golden/README.md). For each
 * file: load the initial weights, forward + backward on the stored batch,
 * compare loss, logits and every gradient, then run the file's SGD steps on
 * the same batch and compare every step's loss and the final parameters.
 * fp32; per tensor: max|a-b| / max(max|b|, 1e-6) <= 1e-4. Embedding tables
 * are run both as sparse and as dense parameters. Exit 77 when no file exists. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "core/check_hdf5.h"
#include "core/log.h"
#include "model/logq.h"
#include "model_fixture.h"

#define TOL 1e-4

static char *path_of(const char *arch) {
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s/%s_tiny.h5", CDDP_GOLDEN_DIR, arch);
  return buf;
}

static int64_t attr_i64(hid_t f, const char *name) {
  int64_t v = 0;
  hid_t a = h5Check(H5Aopen(f, name, H5P_DEFAULT), CDDP_EXIT_DATA, name);
  h5Check(H5Aread(a, H5T_NATIVE_INT64, &v), CDDP_EXIT_DATA, name);
  H5Aclose(a);
  return v;
}

static double attr_f64(hid_t f, const char *name) {
  double v = 0;
  hid_t a = h5Check(H5Aopen(f, name, H5P_DEFAULT), CDDP_EXIT_DATA, name);
  h5Check(H5Aread(a, H5T_NATIVE_DOUBLE, &v), CDDP_EXIT_DATA, name);
  H5Aclose(a);
  return v;
}

static size_t ds_numel(hid_t f, const char *name) {
  hid_t d = h5Check(H5Dopen2(f, name, H5P_DEFAULT), CDDP_EXIT_DATA, name);
  hid_t s = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(s);
  H5Sclose(s);
  H5Dclose(d);
  return (size_t)n;
}

/* Reads a whole dataset converted to `type`; its size must be `n` elements. */
static void ds_read(hid_t f, const char *name, hid_t type, void *buf, size_t n) {
  if (ds_numel(f, name) != n) fail_msg("%s: %zu elements, expected %zu", name, ds_numel(f, name), n);
  hid_t d = h5Check(H5Dopen2(f, name, H5P_DEFAULT), CDDP_EXIT_DATA, name);
  h5Check(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), CDDP_EXIT_DATA, name);
  H5Dclose(d);
}

static double rel_err(const float *a, const float *b, size_t n) {
  double emax = 0, bmax = 0;
  for (size_t i = 0; i < n; i++) {
    emax = fmax(emax, fabs((double)a[i] - b[i]));
    bmax = fmax(bmax, fabs(b[i]));
  }
  return emax / fmax(bmax, 1e-6);
}

static double worst; /* largest relative error seen in one file, reported */

static int compare(const char *what, const char *name, const float *ours, const float *ref,
                   size_t n) {
  double e = rel_err(ours, ref, n);
  worst = fmax(worst, e);
  if (e > TOL) {
    fprintf(stderr, "  %s %s: relative error %.3g > %.0e\n", what, name, e, TOL);
    return 1;
  }
  return 0;
}

/* Compares every parameter's gradient (group "grads") or value ("after"). */
static int compare_params(hid_t f, cddp_model *m, const char *group, int grads) {
  cddp_params *ps = &m->params;
  int bad = 0;
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    char name[160];
    snprintf(name, sizeof name, "/%s/%s", group, p->name);
    float *ref = malloc(p->numel * sizeof(float));
    ds_read(f, name, H5T_NATIVE_FLOAT, ref, p->numel);
    const float *ours;
    float *tmp = NULL;
    if (!grads) ours = cddp_param_data(ps, i);
    else if (p->flags & CDDP_PARAM_SPARSE) ours = tmp = fx_sparse_dense(m, i);
    else ours = cddp_param_grad(ps, i);
    bad += compare(group, p->name, ours, ref, p->numel);
    free(ref);
    free(tmp);
  }
  return bad;
}

static void load_batch(hid_t f, const char *arch, const cddp_data_info *in, int B, cddp_batch *b) {
  memset(b, 0, sizeof *b);
  b->n = b->cap = B;
  if (!strcmp(arch, "dlrm")) {
    b->dense = malloc((size_t)B * 13 * 4);
    b->sparse = malloc((size_t)B * 26 * 4);
    b->label = malloc((size_t)B * 4);
    ds_read(f, "/batch/dense", H5T_NATIVE_FLOAT, b->dense, (size_t)B * 13);
    ds_read(f, "/batch/sparse", H5T_NATIVE_INT32, b->sparse, (size_t)B * 26);
    ds_read(f, "/batch/label", H5T_NATIVE_FLOAT, b->label, B); /* u8 -> float */
  } else if (!strcmp(arch, "two_tower")) {
    b->user_id = malloc((size_t)B * 4);
    b->user_hist = malloc((size_t)B * in->hist_len * 4);
    b->item_id = malloc((size_t)B * 4);
    b->item_cat = malloc((size_t)B * 4);
    ds_read(f, "/batch/user_id", H5T_NATIVE_INT32, b->user_id, B);
    ds_read(f, "/batch/user_hist", H5T_NATIVE_INT32, b->user_hist, (size_t)B * in->hist_len);
    ds_read(f, "/batch/item_id", H5T_NATIVE_INT32, b->item_id, B);
    ds_read(f, "/batch/item_cat", H5T_NATIVE_INT32, b->item_cat, B);
  } else {
    size_t px = (size_t)in->height * in->width * in->channels;
    b->images = malloc(B * px);
    b->labels = malloc((size_t)B * 4);
    ds_read(f, "/batch/images", H5T_NATIVE_UINT8, b->images, B * px);
    ds_read(f, "/batch/labels", H5T_NATIVE_INT32, b->labels, B);
  }
}

static void free_batch(cddp_batch *b) {
  fx_batch fb = {.b = *b};
  fx_batch_free(&fb);
}

static void run_golden(const char *arch, int64_t thr) {
  const char *path = path_of(arch);
  hid_t f = h5Check(H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), CDDP_EXIT_DATA, path);
  int B = (int)attr_i64(f, "batch"), steps = (int)attr_i64(f, "steps");
  double lr = attr_f64(f, "lr");
  cddp_data_info info = {0};
  cddp_model_config cfg = {.arch = arch, .variant = "tiny", .batch = B, .precision = CDDP_F32,
                           .seed = 1, .dense_embedding_threshold = thr};
  if (!strcmp(arch, "dlrm")) {
    info.schema = CDDP_SCHEMA_CTR;
    hid_t a = h5Check(H5Aopen(f, "table_sizes", H5P_DEFAULT), CDDP_EXIT_DATA, path);
    h5Check(H5Aread(a, H5T_NATIVE_INT64, info.table_sizes), CDDP_EXIT_DATA, path);
    H5Aclose(a);
  } else if (!strcmp(arch, "two_tower")) {
    info.schema = CDDP_SCHEMA_TWOTOWER;
    info.num_users = attr_i64(f, "num_users");
    info.num_items = attr_i64(f, "num_items");
    info.num_cats = attr_i64(f, "num_cats");
    info.hist_len = (int)attr_i64(f, "hist_len");
    cfg.temperature = (float)attr_f64(f, "temperature");
  } else {
    info.schema = CDDP_SCHEMA_IMAGE;
    info.height = (int)attr_i64(f, "height");
    info.width = (int)attr_i64(f, "width");
    info.channels = (int)attr_i64(f, "channels");
    info.num_classes = (int)attr_i64(f, "num_classes");
    cfg.label_smoothing = (float)attr_f64(f, "label_smoothing");
  }
  const cddp_backend *be = cddp_cpu_backend();
  be->set_threads(1);
  cddp_model *m = cddp_model_create(&cfg, &info, be, NULL);
  cddp_params *ps = &m->params;
  for (int i = 0; i < ps->n; i++) {
    char name[160];
    snprintf(name, sizeof name, "/params/%s", ps->p[i].name);
    ds_read(f, name, H5T_NATIVE_FLOAT, cddp_param_data(ps, i), ps->p[i].numel);
  }
  cddp_batch b;
  load_batch(f, arch, &info, B, &b);

  double *losses = malloc((size_t)steps * sizeof(double));
  ds_read(f, "/losses", H5T_NATIVE_DOUBLE, losses, steps);
  double loss_ref;
  ds_read(f, "/loss", H5T_NATIVE_DOUBLE, &loss_ref, 1);
  int bad = 0;
  worst = 0;
  for (int s = 0; s < steps; s++) {
    fx_zero_grads(m);
    double loss = fx_forward(m, &b, 1);
    m->ops->backward(m, &b, NULL);
    if (s == 0) {
      if (fabs(loss - loss_ref) > TOL * fabs(loss_ref)) {
        fprintf(stderr, "  %s loss %.9g, PyTorch %.9g\n", arch, loss, loss_ref);
        bad++;
      }
      size_t nl = ds_numel(f, "/logits");
      float *ref = malloc(nl * sizeof(float)), *ours = malloc(nl * sizeof(float));
      ds_read(f, "/logits", H5T_NATIVE_FLOAT, ref, nl);
      int cols = (int)(nl / B);
      for (int r = 0; r < B; r++) memcpy(ours + (size_t)r * cols, m->logits + (size_t)r * m->out_cols, cols * 4);
      bad += compare("logits", arch, ours, ref, nl);
      free(ref);
      free(ours);
      bad += compare_params(f, m, "grads", 1);
    }
    if (fabs(loss - losses[s]) > TOL * fabs(losses[s])) {
      fprintf(stderr, "  %s step %d loss %.9g, PyTorch %.9g\n", arch, s + 1, loss, losses[s]);
      bad++;
    }
    fx_sgd(m, (float)lr);
  }
  bad += compare_params(f, m, "after", 0);
  fprintf(stderr, "%s (dense threshold %lld): worst relative error %.2g over %d steps, %d mismatches\n",
          arch, (long long)thr, worst, steps, bad);
  assert_int_equal(bad, 0);
  free(losses);
  free_batch(&b);
  cddp_model_destroy(m);
  H5Fclose(f);
}

static void run_arch(const char *arch) {
  if (access(path_of(arch), R_OK) != 0) skip();
  run_golden(arch, 0);       /* every table sparse */
  run_golden(arch, 1 << 30); /* every table dense */
}

static void test_dlrm(void **s) { run_arch("dlrm"); }
static void test_two_tower(void **s) { run_arch("two_tower"); }
static void test_vit(void **s) { run_arch("vit"); }

/* The logQ estimator against the file's 40-step sequence. */
static void test_logq_seq(void **s) {
  const char *path = path_of("two_tower");
  if (access(path, R_OK) != 0) skip();
  hid_t f = h5Check(H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), CDDP_EXIT_DATA, path);
  size_t n = ds_numel(f, "/logq_seq/item_id");
  int B = (int)attr_i64(f, "batch"), steps = (int)(n / B);
  int32_t *ids = malloc(n * 4);
  float *ref = malloc(n * 4), out[64];
  ds_read(f, "/logq_seq/item_id", H5T_NATIVE_INT32, ids, n);
  ds_read(f, "/logq_seq/logq", H5T_NATIVE_FLOAT, ref, n);
  cddp_logq q;
  cddp_logq_init(&q, attr_i64(f, "num_items"), B);
  int nonzero = 0;
  for (int t = 0; t < steps; t++) {
    cddp_logq_update(&q, ids + (size_t)t * B, B);
    cddp_logq_neg(&q, ids + (size_t)t * B, B, out);
    for (int j = 0; j < B; j++) {
      assert_float_equal(-out[j], ref[(size_t)t * B + j], 1e-5);
      nonzero += ref[(size_t)t * B + j] != 0;
    }
  }
  assert_true(nonzero > 0);
  cddp_logq_free(&q);
  free(ids);
  free(ref);
  H5Fclose(f);
}

int main(void) {
  cddp_log_set_quiet(1);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  const char *archs[3] = {"dlrm", "two_tower", "vit"};
  int present = 0;
  for (int i = 0; i < 3; i++) present += access(path_of(archs[i]), R_OK) == 0;
  if (!present) {
    fprintf(stderr, "no golden files under %s: skipped\n", CDDP_GOLDEN_DIR);
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dlrm), cmocka_unit_test(test_two_tower), cmocka_unit_test(test_vit),
      cmocka_unit_test(test_logq_seq)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
