/* Loader round trips for the three schemas: files written with the cddp
 * writer (mmap fast path) and with deflate-compressed datasets (HDF5 path),
 * read back shuffled, sharded, resumed, with the ring contract checked;
 * image augmentation against an independent reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <hdf5.h>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/h5util.h"
#include "data/loader.h"
#include "data/prng.h"
#include "data/writer.h"

#include "tmpdir.h"

/* In-memory copy of what was written, row-major per column. */
typedef struct {
  cddp_data_info info;
  int64_t n;
  uint8_t *label;
  float *dense;
  int32_t *sparse;
  int32_t *uid, *hist, *iid, *cat;
  uint8_t *img;
  int32_t *lab;
} truth;

static void make_truth(truth *t, cddp_schema s, int64_t n, uint64_t seed) {
  memset(t, 0, sizeof *t);
  cddp_rng r = {seed};
  t->n = n;
  t->info.schema = s;
  t->info.rows = n;
  if (s == CDDP_SCHEMA_CTR) {
    for (int k = 0; k < 26; k++) t->info.table_sizes[k] = 3 + (int64_t)cddp_rng_below(&r, 5000);
    t->label = malloc((size_t)n);
    t->dense = malloc(sizeof(float) * (size_t)n * 13);
    t->sparse = malloc(sizeof(int32_t) * (size_t)n * 26);
    for (int64_t i = 0; i < n; i++) {
      t->label[i] = (uint8_t)cddp_rng_below(&r, 2);
      for (int k = 0; k < 13; k++) t->dense[i * 13 + k] = (float)(cddp_rng_normal(&r) * 3);
      for (int k = 0; k < 26; k++) t->sparse[i * 26 + k] = (int32_t)cddp_rng_below(&r, (uint64_t)t->info.table_sizes[k]);
    }
  } else if (s == CDDP_SCHEMA_TWOTOWER) {
    t->info.hist_len = 7;
    t->info.num_users = 300;
    t->info.num_items = 1000;
    t->info.num_cats = 17;
    t->uid = malloc(4 * (size_t)n);
    t->iid = malloc(4 * (size_t)n);
    t->cat = malloc(4 * (size_t)n);
    t->hist = malloc(4 * (size_t)n * 7);
    for (int64_t i = 0; i < n; i++) {
      t->uid[i] = (int32_t)cddp_rng_below(&r, 300);
      t->iid[i] = (int32_t)cddp_rng_below(&r, 1000);
      t->cat[i] = (int32_t)cddp_rng_below(&r, 17);
      int len = (int)cddp_rng_below(&r, 8);
      for (int k = 0; k < 7; k++) t->hist[i * 7 + k] = k < len ? (int32_t)cddp_rng_below(&r, 1000) : -1;
    }
  } else {
    t->info.height = 5;
    t->info.width = 6;
    t->info.channels = 3;
    t->info.num_classes = 7;
    t->img = malloc((size_t)n * 90);
    t->lab = malloc(4 * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
      for (int k = 0; k < 90; k++) t->img[i * 90 + k] = (uint8_t)cddp_rng_below(&r, 256);
      t->lab[i] = (int32_t)cddp_rng_below(&r, 7);
    }
  }
}

static void free_truth(truth *t) {
  free(t->label); free(t->dense); free(t->sparse); free(t->uid); free(t->hist); free(t->iid); free(t->cat);
  free(t->img); free(t->lab);
}

static void write_cddp(const truth *t, const char *path) {
  cddp_writer *w = cddp_writer_create(path, t->info.schema, &t->info);
  /* append in two uneven pieces to exercise extension */
  int64_t a = t->n / 3, b = t->n - a;
  switch (t->info.schema) {
    case CDDP_SCHEMA_CTR:
      cddp_writer_append(w, 0, t->label, a); cddp_writer_append(w, 0, t->label + a, b);
      cddp_writer_append(w, 1, t->dense, a); cddp_writer_append(w, 1, t->dense + a * 13, b);
      cddp_writer_append(w, 2, t->sparse, t->n);
      break;
    case CDDP_SCHEMA_TWOTOWER:
      cddp_writer_append(w, 0, t->uid, t->n);
      cddp_writer_append(w, 1, t->hist, a); cddp_writer_append(w, 1, t->hist + a * 7, b);
      cddp_writer_append(w, 2, t->iid, t->n);
      cddp_writer_append(w, 3, t->cat, t->n);
      break;
    case CDDP_SCHEMA_IMAGE:
      cddp_writer_append(w, 0, t->img, a); cddp_writer_append(w, 0, t->img + a * 90, b);
      cddp_writer_append(w, 1, t->lab, t->n);
      break;
  }
  cddp_writer_commit(w, &t->info);
}

/* Same content, but big-endian where possible and deflate-compressed with
 * small chunks: every column must go through the HDF5 path. */
static void write_compressed(const truth *t, const char *path) {
  cddp_h5_quiet();
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  cddp_h5_write_attr_str(path, f, "schema", cddp_schema_name(t->info.schema));
  struct { const char *name; hid_t ft, mt; int rank; hsize_t d1, d2, d3; const void *data; } cols[4];
  int nc = 0;
  hsize_t n = (hsize_t)t->n;
  if (t->info.schema == CDDP_SCHEMA_CTR) {
    cols[nc++] = (typeof(cols[0])){"label", H5T_STD_U8BE, H5T_NATIVE_UINT8, 1, 0, 0, 0, t->label};
    cols[nc++] = (typeof(cols[0])){"dense", H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, 2, 13, 0, 0, t->dense};
    cols[nc++] = (typeof(cols[0])){"sparse", H5T_STD_I32BE, H5T_NATIVE_INT32, 2, 26, 0, 0, t->sparse};
  } else if (t->info.schema == CDDP_SCHEMA_TWOTOWER) {
    cols[nc++] = (typeof(cols[0])){"user_id", H5T_STD_I32BE, H5T_NATIVE_INT32, 1, 0, 0, 0, t->uid};
    cols[nc++] = (typeof(cols[0])){"user_hist", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, 7, 0, 0, t->hist};
    cols[nc++] = (typeof(cols[0])){"item_id", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, 0, 0, 0, t->iid};
    cols[nc++] = (typeof(cols[0])){"item_cat", H5T_STD_I32BE, H5T_NATIVE_INT32, 1, 0, 0, 0, t->cat};
  } else {
    cols[nc++] = (typeof(cols[0])){"images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, 5, 6, 3, t->img};
    cols[nc++] = (typeof(cols[0])){"labels", H5T_STD_I32BE, H5T_NATIVE_INT32, 1, 0, 0, 0, t->lab};
  }
  for (int c = 0; c < nc; c++) {
    hsize_t dims[4] = {n, cols[c].d1, cols[c].d2, cols[c].d3}, ch[4] = {37, cols[c].d1, cols[c].d2, cols[c].d3};
    if (cols[c].rank == 4) ch[1] = 2; /* chunks that split a row */
    hid_t sp = H5Screate_simple(cols[c].rank, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, cols[c].rank, ch);
    H5Pset_deflate(pl, 4);
    hid_t d = H5Dcreate2(f, cols[c].name, cols[c].ft, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, cols[c].mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, cols[c].data) >= 0);
    if (t->info.schema == CDDP_SCHEMA_CTR && c == 2)
      cddp_h5_write_attr_i64(path, d, "table_sizes", t->info.table_sizes, 26);
    H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(sp);
  }
  if (t->info.schema == CDDP_SCHEMA_TWOTOWER) {
    cddp_h5_write_attr_i64(path, f, "num_users", &t->info.num_users, 1);
    cddp_h5_write_attr_i64(path, f, "num_items", &t->info.num_items, 1);
    cddp_h5_write_attr_i64(path, f, "num_cats", &t->info.num_cats, 1);
  }
  if (t->info.schema == CDDP_SCHEMA_IMAGE) {
    int64_t nc64 = t->info.num_classes;
    cddp_h5_write_attr_i64(path, f, "num_classes", &nc64, 1);
  }
  H5Fclose(f);
}

static void check_batch(const truth *t, const cddp_batch *b) {
  for (int i = 0; i < b->n; i++) {
    int64_t r = b->index[i];
    assert_true(r >= 0 && r < t->n);
    switch (t->info.schema) {
      case CDDP_SCHEMA_CTR:
        assert_true(b->label[i] == (float)t->label[r]);
        assert_memory_equal(b->dense + i * 13, t->dense + r * 13, 13 * sizeof(float));
        assert_memory_equal(b->sparse + i * 26, t->sparse + r * 26, 26 * sizeof(int32_t));
        break;
      case CDDP_SCHEMA_TWOTOWER:
        assert_int_equal(b->user_id[i], t->uid[r]);
        assert_int_equal(b->item_id[i], t->iid[r]);
        assert_int_equal(b->item_cat[i], t->cat[r]);
        assert_memory_equal(b->user_hist + i * 7, t->hist + r * 7, 7 * sizeof(int32_t));
        break;
      case CDDP_SCHEMA_IMAGE:
        assert_int_equal(b->labels[i], t->lab[r]);
        assert_memory_equal(b->images + (size_t)i * 90, t->img + r * 90, 90);
        break;
    }
  }
}

/* Reads path as every rank of a world of 3 in each mode and checks values,
 * batch fullness and coverage. */
static void roundtrip(const truth *t, const char *path) {
  for (int mode = 0; mode < 5; mode++) {
    int world = 3, batch = 50;
    int64_t *seen = calloc((size_t)t->n, sizeof(int64_t));
    int64_t total = 0;
    for (int r = 0; r < world; r++) {
      cddp_loader_opts o = {.rank = r, .world = world, .batch = batch, .seed = 7, .prefetch = 1 + mode % 3,
                            .block_rows = 16, .window_blocks = 3, .threads = 1 + (mode + r) % 3};
      if (mode == 1) o.shuffle = CDDP_SHUFFLE_FULL;
      if (mode == 2) o.shuffle = CDDP_SHUFFLE_BLOCK;
      if (mode == 3) o.eval = CDDP_EVAL_CONTIGUOUS;
      if (mode == 4) o.eval = CDDP_EVAL_STRIDED;
      cddp_loader *l = cddp_loader_open(path, &o);
      const cddp_data_info *in = cddp_loader_info(l);
      assert_int_equal(in->rows, t->n);
      assert_int_equal(in->schema, t->info.schema);
      cddp_loader_start_epoch(l, 1);
      const cddp_batch *b;
      int64_t nb = 0;
      while ((b = cddp_loader_next(l))) {
        nb++;
        assert_int_equal(b->cap, batch);
        if (!o.eval) assert_int_equal(b->n, batch);
        check_batch(t, b);
        for (int i = 0; i < b->n; i++) seen[b->index[i]]++;
        total += b->n;
      }
      assert_int_equal(nb, cddp_loader_batches_per_epoch(l));
      cddp_loader_close(l);
    }
    if (mode >= 3) {
      assert_int_equal(total, t->n);
      for (int64_t i = 0; i < t->n; i++) assert_int_equal(seen[i], 1);
    } else {
      int64_t per = (t->n + world - 1) / world;
      assert_int_equal(total, per / batch * batch * world);
    }
    free(seen);
  }
}

static void test_roundtrip(void **st) {
  (void)st;
  for (int s = 1; s <= 3; s++) {
    truth t;
    make_truth(&t, (cddp_schema)s, 1037 + 13 * s, 100 + (uint64_t)s);
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/rt%d.h5", g_dir, s);
    snprintf(p2, sizeof p2, "%s/rtz%d.h5", g_dir, s);
    write_cddp(&t, p1);
    write_compressed(&t, p2);
    cddp_dataset *d = cddp_dataset_open(p1);
    for (int c = 0; c < d->ncols; c++) assert_true(d->col[c].direct); /* our files take the fast path */
    cddp_dataset_close(d);
    d = cddp_dataset_open(p2);
    for (int c = 0; c < d->ncols; c++) assert_false(d->col[c].direct);
    cddp_dataset_close(d);
    roundtrip(&t, p1);
    roundtrip(&t, p2);
    free_truth(&t);
  }
}

static int64_t g_allocs;
static void *count_alloc(size_t n) {
  g_allocs++;
  return malloc(n);
}
static void count_free(void *p) {
  g_allocs--;
  free(p);
}

static void test_resume_ring_and_tables(void **st) {
  (void)st;
  truth t;
  make_truth(&t, CDDP_SCHEMA_CTR, 3000, 5);
  char p[512];
  snprintf(p, sizeof p, "%s/resume.h5", g_dir);
  write_cddp(&t, p);
  cddp_loader_opts o = {.rank = 1, .world = 2, .batch = 64, .seed = 3, .shuffle = CDDP_SHUFFLE_FULL,
                        .prefetch = 3, .threads = 3, .host_alloc = count_alloc, .host_free = count_free};
  cddp_loader *l = cddp_loader_open(p, &o);
  assert_int_equal(g_allocs, 5); /* prefetch + 2 ring buffers */
  int64_t nb = cddp_loader_batches_per_epoch(l);
  assert_int_equal(nb, 1500 / 64);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(nb * 64));
  cddp_loader_start_epoch(l, 4);
  const cddp_batch *prev = NULL, *b;
  int64_t k = 0, prev_copy[64];
  while ((b = cddp_loader_next(l))) {
    if (prev) { /* ring contract: the previous batch is still intact */
      assert_ptr_not_equal(prev, b);
      assert_memory_equal(prev->index, prev_copy, sizeof prev_copy);
    }
    memcpy(idx + k * 64, b->index, 64 * sizeof(int64_t));
    memcpy(prev_copy, b->index, sizeof prev_copy);
    prev = b;
    k++;
  }
  assert_int_equal(k, nb);
  assert_null(cddp_loader_next(l)); /* stays at the end */
  /* resume mid-epoch: identical batches from batch 9 on */
  cddp_loader_start_epoch_at(l, 4, 9);
  for (k = 9; (b = cddp_loader_next(l)); k++) assert_memory_equal(b->index, idx + k * 64, 64 * sizeof(int64_t));
  assert_int_equal(k, nb);
  /* restart in the middle of an epoch (stale prefetched batches discarded) */
  cddp_loader_start_epoch(l, 5);
  b = cddp_loader_next(l);
  cddp_loader_start_epoch(l, 4);
  b = cddp_loader_next(l);
  assert_memory_equal(b->index, idx, 64 * sizeof(int64_t));
  cddp_loader_close(l);
  assert_int_equal(g_allocs, 0);

  /* one thread gives the same batches as three */
  o.threads = 1;
  l = cddp_loader_open(p, &o);
  cddp_loader_start_epoch(l, 4);
  for (k = 0; (b = cddp_loader_next(l)); k++) assert_memory_equal(b->index, idx + k * 64, 64 * sizeof(int64_t));
  cddp_loader_close(l);

  /* max_table_rows: tables min'd, ids taken modulo */
  cddp_loader_opts o2 = {.world = 1, .batch = 100, .max_table_rows = 100};
  l = cddp_loader_open(p, &o2);
  for (int c = 0; c < 26; c++)
    assert_int_equal(cddp_loader_info(l)->table_sizes[c], t.info.table_sizes[c] < 100 ? t.info.table_sizes[c] : 100);
  cddp_loader_start_epoch(l, 0);
  b = cddp_loader_next(l);
  for (int i = 0; i < b->n; i++)
    for (int c = 0; c < 26; c++) assert_int_equal(b->sparse[i * 26 + c], t.sparse[b->index[i] * 26 + c] % 100);
  cddp_loader_close(l);
  free(idx);
  free_truth(&t);
}

/* Independent reference of one augmentation: shift by (dy, dx) with zero
 * fill (RandomCrop with padding), then mirror if flip. */
static void ref_augment(const uint8_t *in, uint8_t *out, int H, int W, int C, int dy, int dx,
                        int flip) {
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      int cx = flip ? W - 1 - x : x; /* column of the cropped image */
      int sy = y + dy, sx = cx + dx;
      for (int c = 0; c < C; c++)
        out[((size_t)y * W + x) * C + c] =
            sy >= 0 && sy < H && sx >= 0 && sx < W ? in[((size_t)sy * W + sx) * C + c] : 0;
    }
}

/* Which (dy, dx, flip) of pad p turns in into out; -1 if none (ties resolved
 * to the first, which is enough for the counts below). */
static int which_transform(const uint8_t *in, const uint8_t *out, int H, int W, int C, int p) {
  uint8_t buf[5 * 6 * 3];
  for (int dy = -p; dy <= p; dy++)
    for (int dx = -p; dx <= p; dx++)
      for (int f = 0; f < 2; f++) {
        ref_augment(in, buf, H, W, C, dy, dx, f);
        if (!memcmp(buf, out, (size_t)H * W * C)) return ((dy + p) * (2 * p + 1) + dx + p) * 2 + f;
      }
  return -1;
}

static void test_augment(void **st) {
  (void)st;
  truth t;
  make_truth(&t, CDDP_SCHEMA_IMAGE, 2000, 77);
  for (int64_t i = 0; i < t.n * 90; i++) t.img[i] |= 1; /* no zeros: the fill is visible */
  const int H = 5, W = 6, C = 3, P = 2;
  /* every augmented image is one of the 50 transforms, all of them occur, and
   * about half are mirrored */
  cddp_augment a = {.crop_pad = P, .hflip = 1};
  uint8_t *img = malloc((size_t)t.n * 90), tmp[90];
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)t.n);
  for (int64_t i = 0; i < t.n; i++) rows[i] = i;
  memcpy(img, t.img, (size_t)t.n * 90);
  cddp_augment_images(&a, img, (int)t.n, H, W, C, rows, 9, 3, tmp);
  int count[50] = {0}, flips = 0;
  for (int64_t i = 0; i < t.n; i++) {
    int k = which_transform(t.img + i * 90, img + i * 90, H, W, C, P);
    assert_true(k >= 0);
    count[k]++;
    flips += k & 1;
  }
  for (int k = 0; k < 50; k++) assert_true(count[k] > 10); /* expected 40 each */
  assert_in_range(flips, 900, 1100);
  /* a sample's draws depend on (seed, epoch, row) only: augmenting rows in
   * another grouping and order gives the same images */
  uint8_t *img2 = malloc((size_t)t.n * 90);
  int64_t *rev = malloc(sizeof(int64_t) * (size_t)t.n);
  for (int64_t i = 0; i < t.n; i++) {
    rev[i] = t.n - 1 - i;
    memcpy(img2 + i * 90, t.img + rev[i] * 90, 90);
  }
  cddp_augment_images(&a, img2, 7, H, W, C, rev, 9, 3, tmp);
  cddp_augment_images(&a, img2 + 7 * 90, (int)t.n - 7, H, W, C, rev + 7, 9, 3, tmp);
  for (int64_t i = 0; i < t.n; i++) assert_memory_equal(img2 + i * 90, img + rev[i] * 90, 90);
  /* another epoch draws differently; flip alone never shifts */
  memcpy(img2, t.img, (size_t)t.n * 90);
  cddp_augment_images(&a, img2, (int)t.n, H, W, C, rows, 9, 4, tmp);
  assert_true(memcmp(img, img2, (size_t)t.n * 90) != 0);
  cddp_augment flip_only = {.hflip = 1};
  memcpy(img2, t.img, (size_t)t.n * 90);
  cddp_augment_images(&flip_only, img2, (int)t.n, H, W, C, rows, 9, 4, tmp);
  for (int64_t i = 0; i < t.n; i++) assert_int_equal(which_transform(t.img + i * 90, img2 + i * 90, H, W, C, 0) >= 0, 1);

  /* through the loader: 2 ranks x 20 see exactly the images 1 rank x 40 sees;
   * evaluation loaders ignore augmentation */
  char p[512];
  snprintf(p, sizeof p, "%s/aug.h5", g_dir);
  write_cddp(&t, p);
  uint8_t *by_row = calloc((size_t)t.n, 90);
  cddp_loader_opts o1 = {.world = 1, .batch = 40, .seed = 5, .shuffle = CDDP_SHUFFLE_FULL,
                         .augment = a};
  cddp_loader *l = cddp_loader_open(p, &o1);
  cddp_loader_start_epoch(l, 2);
  const cddp_batch *b;
  int changed = 0;
  while ((b = cddp_loader_next(l)))
    for (int i = 0; i < b->n; i++) {
      memcpy(by_row + b->index[i] * 90, b->images + (size_t)i * 90, 90);
      changed += memcmp(b->images + (size_t)i * 90, t.img + b->index[i] * 90, 90) != 0;
    }
  cddp_loader_close(l);
  assert_true(changed > 1500);
  for (int r = 0; r < 2; r++) {
    cddp_loader_opts o2 = {.rank = r, .world = 2, .batch = 20, .seed = 5,
                           .shuffle = CDDP_SHUFFLE_FULL, .threads = 2, .augment = a};
    l = cddp_loader_open(p, &o2);
    cddp_loader_start_epoch(l, 2);
    while ((b = cddp_loader_next(l)))
      for (int i = 0; i < b->n; i++)
        assert_memory_equal(b->images + (size_t)i * 90, by_row + b->index[i] * 90, 90);
    cddp_loader_close(l);
  }
  cddp_loader_opts oe = {.world = 1, .batch = 40, .eval = CDDP_EVAL_CONTIGUOUS, .augment = a};
  l = cddp_loader_open(p, &oe);
  cddp_loader_start_epoch(l, 0);
  while ((b = cddp_loader_next(l))) check_batch(&t, b);
  cddp_loader_close(l);
  free(by_row); free(img); free(img2); free(rows); free(rev);
  free_truth(&t);
}

static int setup(void **st) {
  (void)st;
  return tmpdir_setup("data_loader");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_resume_ring_and_tables),
      cmocka_unit_test(test_augment),
  };
  return cmocka_run_group_tests(tests, setup, tmpdir_teardown);
}
