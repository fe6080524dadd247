#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/convert.h"
#include "data/gen.h"
#include "data/prng.h"

void cddp_gen_defaults(cddp_gen_opts *o) {
  memset(o, 0, sizeof *o);
  o->rows = 100000;
  o->table_size = CDDP_GEN_CTR_TABLE;
  o->num_users = 2000;
  o->num_items = 5000;
  o->num_cats = 50;
  o->hist_len = 20;
  o->num_classes = 10;
  o->height = o->width = 28;
  o->channels = 1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

double cddp_exact_auc(const float *p, const uint8_t *y, int64_t n) {
  /* Key: the float's bits (monotone for p >= 0) above the label. */
  uint64_t *k = cddp_xmalloc(sizeof(uint64_t) * (size_t)n, "auc");
  for (int64_t i = 0; i < n; i++) {
    float v = p[i] < 0 ? 0 : p[i];
    uint32_t bits;
    memcpy(&bits, &v, 4);
    k[i] = (uint64_t)bits << 1 | (y[i] ? 1 : 0);
  }
  qsort(k, (size_t)n, sizeof *k, cmp_u64);
  double auc = 0, neg_below = 0, pos = 0, neg = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    double gp = 0, gn = 0;
    while (j < n && k[j] >> 1 == k[i] >> 1) {
      if (k[j] & 1) gp++;
      else gn++;
      j++;
    }
    auc += gp * (neg_below + 0.5 * gn);
    neg_below += gn;
    pos += gp;
    neg += gn;
    i = j;
  }
  free(k);
  return pos > 0 && neg > 0 ? auc / (pos * neg) : 0.5;
}

uint64_t cddp_gen_row_state(uint64_t seed, int val, int64_t i) {
  return cddp_mix64(val ? seed ^ CDDP_GEN_VAL_SALT : seed) ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
}

void cddp_gen_val_path(const char *out, const cddp_gen_opts *o, char *buf, size_t cap) {
  if (o->val_out) snprintf(buf, cap, "%s", o->val_out);
  else cddp_val_path(out, buf, cap);
  if (!strcmp(buf, out)) cddp_die(CDDP_EXIT_USAGE, "gen: the validation file must differ from OUT (%s)", out);
}

void cddp_gen_write_splits(const char *out, const char *valpath, const void *model,
                           cddp_gen_split_fn write_split, const cddp_gen_opts *o,
                           const cddp_data_info *info) {
  cddp_writer *w = write_split(out, model, 0, o->rows, o, info);
  if (o->val_rows > 0) {
    cddp_data_info vinfo = *info;
    vinfo.rows = o->val_rows;
    cddp_writer *v = write_split(valpath, model, 1, o->val_rows, o, &vinfo);
    cddp_writer_commit(w, info);
    cddp_writer_commit(v, &vinfo);
  } else {
    cddp_writer_commit(w, info);
  }
}
