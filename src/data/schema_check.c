/* Helpers the schema descriptors share: value errors naming file, row and
 * column, and a block scan of a whole column for `cddp info`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check_hdf5.h"
#include "core/error.h"
#include "data/schema.h"

void cddp_bad_value(const cddp_dataset *d, int64_t row, const char *col, const char *fmt, long long v,
                    long long lim) {
  char what[160];
  snprintf(what, sizeof what, fmt, v, lim);
  cddp_die(CDDP_EXIT_DATA, "%s: row %lld, column %s: %s", d->path, (long long)row, col, what);
}

void cddp_check_ids(const cddp_dataset *d, const int32_t *ids, int n, int width, const int64_t *rows,
                    const char *name, int64_t lo, int64_t hi) {
  for (int i = 0; i < n; i++)
    for (int k = 0; k < width; k++) {
      int32_t v = ids[(size_t)i * width + k];
      if (v < lo || v >= hi) {
        char col[64];
        if (width > 1) snprintf(col, sizeof col, "%s[%d]", name, k);
        else snprintf(col, sizeof col, "%s", name);
        cddp_bad_value(d, rows[i], col,
                       strcmp(name, "labels") ? "id %lld outside [0, %lld)" : "label %lld outside [0, %lld)", v,
                       hi);
      }
    }
}

void cddp_dataset_scan(cddp_dataset *d, int c, hid_t memtype, size_t esz,
                       void (*fn)(const void *, int64_t, void *), void *ctx) {
  enum { BLK = 1 << 20 };
  void *buf = cddp_xmalloc(esz * BLK, "info");
  hid_t fsp = h5Check(H5Dget_space(d->col[c].id), CDDP_EXIT_DATA, d->path);
  for (int64_t i = 0; i < d->info.rows; i += BLK) {
    hsize_t start = (hsize_t)i, cnt = (hsize_t)(d->info.rows - i < BLK ? d->info.rows - i : BLK);
    hid_t msp = h5Check(H5Screate_simple(1, &cnt, NULL), CDDP_EXIT_RUNTIME, d->path);
    h5Check(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &start, NULL, &cnt, NULL), CDDP_EXIT_DATA, d->path);
    if (H5Dread(d->col[c].id, memtype, msp, fsp, H5P_DEFAULT, buf) < 0)
      cddp_die(CDDP_EXIT_DATA, "%s: cannot read dataset '%s' (corrupt or truncated file)", d->path, d->col[c].name);
    H5Sclose(msp);
    fn(buf, (int64_t)cnt, ctx);
  }
  H5Sclose(fsp);
  free(buf);
}
