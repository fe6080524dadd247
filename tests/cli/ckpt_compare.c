/* Compares the /model datasets of two cddp checkpoints.
 *
 * usage: ckpt_compare A.h5 B.h5 TOL [--expect-differ]
 *
 * Per tensor the error is max_i |a_i - b_i| / max_i |b_i| (an infinity-norm
 * relative error: an element-wise relative check would fail on entries that
 * are near zero only by cancellation, where a 1-ulp difference of the
 * summands is a huge relative difference). Prints the worst tensor and exits
 * 0 when every tensor's error is <= TOL (1 otherwise, 2 on bad use). With
 * --expect-differ it exits 0 only when some tensor's error is > TOL: the
 * negative control that shows the comparison can fail. Both files must hold
 * the same dataset names and shapes. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  hid_t other; /* the /model group of file B */
  double worst;
  char worst_name[256];
  int n, bad_layout;
} cmp_ctx;

static float *read_all(hid_t g, const char *name, hssize_t *n) {
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return NULL;
  hid_t sp = H5Dget_space(ds);
  *n = H5Sget_simple_extent_npoints(sp);
  float *buf = malloc(sizeof(float) * (size_t)(*n ? *n : 1));
  if (!buf || H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    free(buf);
    buf = NULL;
  }
  H5Sclose(sp);
  H5Dclose(ds);
  return buf;
}

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *op) {
  (void)info;
  cmp_ctx *c = op;
  hssize_t na = 0, nb = 0;
  float *a = read_all(g, name, &na), *b = read_all(c->other, name, &nb);
  if (!a || !b || na != nb) {
    fprintf(stderr, "ckpt_compare: %s: missing in one file or sizes differ (%lld vs %lld)\n", name,
            (long long)na, (long long)nb);
    c->bad_layout = 1;
    free(a);
    free(b);
    return 0;
  }
  double dmax = 0, bmax = 0;
  for (hssize_t i = 0; i < na; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= dmax)) dmax = d; /* NaN propagates as the worst */
    if (fabs((double)b[i]) > bmax) bmax = fabs((double)b[i]);
  }
  double rel = bmax > 0 ? dmax / bmax : dmax;
  if (isnan(dmax)) rel = INFINITY;
  if (rel > c->worst || c->n == 0) {
    c->worst = rel;
    snprintf(c->worst_name, sizeof c->worst_name, "%s", name);
  }
  c->n++;
  free(a);
  free(b);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "--expect-differ"))) {
    fprintf(stderr, "usage: %s A.h5 B.h5 TOL [--expect-differ]\n", argv[0]);
    return 2;
  }
  double tol = atof(argv[3]);
  int expect_differ = argc == 5;
  hid_t fa = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t fb = H5Fopen(argv[2], H5F_ACC_RDONLY, H5P_DEFAULT);
  if (fa < 0 || fb < 0) return 2;
  hid_t ga = H5Gopen2(fa, "model", H5P_DEFAULT), gb = H5Gopen2(fb, "model", H5P_DEFAULT);
  if (ga < 0 || gb < 0) return 2;
  hsize_t na = 0, nb = 0;
  H5Gget_num_objs(ga, &na);
  H5Gget_num_objs(gb, &nb);
  cmp_ctx c = {.other = gb};
  if (H5Literate(ga, H5_INDEX_NAME, H5_ITER_INC, NULL, visit, &c) < 0) return 2;
  if (c.bad_layout || na != nb || c.n == 0) {
    fprintf(stderr, "ckpt_compare: the files hold different /model datasets (%llu vs %llu)\n",
            (unsigned long long)na, (unsigned long long)nb);
    return 2;
  }
  printf("%d tensors, max relative error %.3e (%s)\n", c.n, c.worst, c.worst_name);
  H5Gclose(ga);
  H5Gclose(gb);
  H5Fclose(fa);
  H5Fclose(fb);
  int within = c.worst <= tol;
  return expect_differ ? !within ? 0 : 1 : within ? 0 : 1;
}
