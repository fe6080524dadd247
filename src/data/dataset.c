#include "data/dataset.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check_hdf5.h"
#include "core/error.h"
#include "data/h5util.h"
#include "data/schema.h"

static void shape_str(int rank, const hsize_t *d, char *out, size_t cap) {
  size_t k = 0;
  k += snprintf(out + k, cap - k, "[");
  for (int i = 0; i < rank && k < cap; i++)
    k += snprintf(out + k, cap - k, "%s%llu", i ? "," : "", (unsigned long long)d[i]);
  if (k < cap) snprintf(out + k, cap - k, "]");
}

static void spec_shape_str(const cddp_col_spec *s, char *out, size_t cap) {
  size_t k = snprintf(out, cap, "[N");
  for (int i = 1; i < s->rank && k < cap; i++) {
    if (s->dims[i - 1]) k += snprintf(out + k, cap - k, ",%llu", (unsigned long long)s->dims[i - 1]);
    else k += snprintf(out + k, cap - k, ",*");
  }
  if (k < cap) snprintf(out + k, cap - k, "]");
}

/* Layout checks HDF5 1.10 leaves to the reader, each of which a damaged
 * header turned into a crash inside H5Dread: a compact dataset must hold the
 * bytes its shape needs (it copied from a null pointer), and a chunk may not
 * be larger than a fixed dimension of its dataset (it copied a whole chunk
 * out of the smaller buffer the decompressor returned). */
static void check_layout(const cddp_dataset *d, const cddp_ds_col *c, const hsize_t *dims, int rank) {
  hid_t dcpl = h5Check(H5Dget_create_plist(c->id), CDDP_EXIT_DATA, d->path);
  H5D_layout_t layout = H5Pget_layout(dcpl);
  hsize_t cdims[8] = {0};
  int crank = layout == H5D_CHUNKED ? H5Pget_chunk(dcpl, 8, cdims) : 0;
  H5Pclose(dcpl);
  if (layout == H5D_COMPACT) {
    hsize_t have = H5Dget_storage_size(c->id);
    if (have < dims[0] * c->row_bytes)
      cddp_die(CDDP_EXIT_DATA, "%s: corrupt file: compact dataset '%s' holds %llu bytes, its shape needs %llu",
               d->path, c->name, (unsigned long long)have, (unsigned long long)(dims[0] * c->row_bytes));
  }
  for (int k = 1; k < crank && k < rank; k++)
    if (cdims[k] > dims[k])
      cddp_die(CDDP_EXIT_DATA, "%s: corrupt file: dataset '%s' has chunks of %llu along axis %d, which is %llu long",
               d->path, c->name, (unsigned long long)cdims[k], k, (unsigned long long)dims[k]);
}

/* Fast path set-up: find where every row of column c lives in the file. */
static void setup_direct(cddp_dataset *d, cddp_ds_col *c, const hsize_t *dims, int rank, hid_t ftype,
                         uint64_t file_size) {
  c->direct = 0;
  if (!d->map || H5Tequal(ftype, c->memtype) <= 0) return;
  hid_t dcpl = h5Check(H5Dget_create_plist(c->id), CDDP_EXIT_DATA, d->path);
  H5D_layout_t layout = H5Pget_layout(dcpl);
  int nfilters = H5Pget_nfilters(dcpl);
  hsize_t cdims[8] = {0};
  if (layout == H5D_CHUNKED) H5Pget_chunk(dcpl, 8, cdims);
  H5Pclose(dcpl);
  if (nfilters != 0) return;
  uint64_t n = dims[0];
  if (layout == H5D_CONTIGUOUS) {
    haddr_t off = H5Dget_offset(c->id);
    if (off == HADDR_UNDEF) return;
    if (off + n * c->row_bytes > file_size)
      cddp_die(CDDP_EXIT_DATA, "%s: truncated file: dataset '%s' extends past the end of the file",
               d->path, c->name);
    c->base = off;
    c->direct = 1;
    return;
  }
  if (layout != H5D_CHUNKED) return;
  for (int i = 1; i < rank; i++)
    if (cdims[i] != dims[i]) return; /* chunks split rows */
  c->chunk_rows = (int64_t)cdims[0];
  c->nchunks = (int64_t)((n + cdims[0] - 1) / cdims[0]);
  c->chunk_addr = cddp_xmalloc((size_t)c->nchunks * sizeof(uint64_t), "chunk table");
  hsize_t off[8] = {0};
  uint64_t csize = cdims[0] * c->row_bytes;
  for (int64_t k = 0; k < c->nchunks; k++) {
    off[0] = (hsize_t)k * cdims[0];
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (H5Dget_chunk_info_by_coord(c->id, off, &mask, &addr, &size) < 0 || addr == HADDR_UNDEF) {
      free(c->chunk_addr); /* an unwritten chunk (fill values): let HDF5 read it */
      c->chunk_addr = NULL;
      return;
    }
    if (size != csize) {
      free(c->chunk_addr);
      c->chunk_addr = NULL;
      return;
    }
    if (addr + size > file_size)
      cddp_die(CDDP_EXIT_DATA, "%s: truncated file: chunk %lld of dataset '%s' lies past the end of the file",
               d->path, (long long)k, c->name);
    c->chunk_addr[k] = addr;
  }
  c->direct = 1;
}

static void open_cols(cddp_dataset *d, const cddp_schema_desc *sd, uint64_t file_size) {
  int64_t rows = -1;
  const char *first = NULL;
  d->ncols = sd->ncols;
  for (int i = 0; i < sd->ncols; i++) {
    const cddp_col_spec *s = &sd->cols[i];
    cddp_ds_col *c = &d->col[i];
    c->name = s->name;
    if (H5Lexists(d->file, s->name, H5P_DEFAULT) <= 0)
      cddp_die(CDDP_EXIT_DATA, "%s: missing dataset '%s' (schema %s)", d->path, s->name, sd->name);
    hid_t dapl = h5Check(H5Pcreate(H5P_DATASET_ACCESS), CDDP_EXIT_RUNTIME, d->path);
    /* HDF5 path only: a large cache that keeps whole chunks (w0 = 1) suits
     * random rows revisiting the same chunks within a batch. */
    h5Check(H5Pset_chunk_cache(dapl, 12421, 64u << 20, 1.0), CDDP_EXIT_RUNTIME, d->path);
    c->id = H5Dopen2(d->file, s->name, dapl);
    H5Pclose(dapl);
    if (c->id < 0) cddp_die(CDDP_EXIT_DATA, "%s: '%s' is not a dataset", d->path, s->name);
    hid_t ft = h5Check(H5Dget_type(c->id), CDDP_EXIT_DATA, d->path);
    char tn[32];
    cddp_h5_type_name(ft, tn, sizeof tn);
    int ok = H5Tget_class(ft) == s->cls && H5Tget_size(ft) == s->size;
    if (ok && s->cls == H5T_INTEGER) ok = (H5Tget_sign(ft) == H5T_SGN_2) == s->is_signed;
    if (!ok)
      cddp_die(CDDP_EXIT_DATA, "%s: dataset '%s' has type %s, expected %s", d->path, s->name, tn, s->tname);
    hid_t sp = h5Check(H5Dget_space(c->id), CDDP_EXIT_DATA, d->path);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[8] = {0};
    char want[64], got[96];
    spec_shape_str(s, want, sizeof want);
    if (rank < 1 || rank > 8)
      cddp_die(CDDP_EXIT_DATA, "%s: dataset '%s' has rank %d, expected shape %s", d->path, s->name, rank, want);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    shape_str(rank, dims, got, sizeof got);
    if (rank != s->rank)
      cddp_die(CDDP_EXIT_DATA, "%s: dataset '%s' has shape %s, expected %s", d->path, s->name, got, want);
    size_t rb = s->size;
    for (int k = 1; k < rank; k++) {
      if ((s->dims[k - 1] && dims[k] != s->dims[k - 1]) || dims[k] == 0)
        cddp_die(CDDP_EXIT_DATA, "%s: dataset '%s' has shape %s, expected %s", d->path, s->name, got, want);
      rb *= dims[k];
    }
    if (dims[0] == 0) cddp_die(CDDP_EXIT_DATA, "%s: dataset '%s' is empty (0 rows)", d->path, s->name);
    if (rows >= 0 && (int64_t)dims[0] != rows)
      cddp_die(CDDP_EXIT_DATA, "%s: dataset '%s' has %llu rows but '%s' has %lld", d->path, s->name,
               (unsigned long long)dims[0], first, (long long)rows);
    rows = (int64_t)dims[0];
    first = s->name;
    c->row_bytes = rb;
    c->memtype = s->cls == H5T_FLOAT ? H5T_NATIVE_FLOAT
                 : s->size == 1      ? H5T_NATIVE_UINT8
                                     : H5T_NATIVE_INT32;
    for (int k = 1; k < rank; k++)
      if (s->from[k - 1]) *(int *)((char *)&d->info + s->from[k - 1] - 1) = (int)dims[k];
    check_layout(d, c, dims, rank);
    setup_direct(d, c, dims, rank, ft, file_size);
    if (c->chunk_rows && (!d->chunk_rows || c->chunk_rows < d->chunk_rows)) d->chunk_rows = c->chunk_rows;
    H5Tclose(ft);
  }
  d->info.rows = rows;
}

cddp_dataset *cddp_dataset_open(const char *path) {
  cddp_dataset *d = cddp_xcalloc(sizeof *d, "dataset");
  d->path = strdup(path);
  d->file = cddp_h5_open_ro(path);
  char schema[128];
  cddp_h5_attr_str(path, d->file, "schema", schema, sizeof schema);
  const cddp_schema_desc *sd = cddp_schema_find(schema);
  if (!sd) {
    char names[256];
    cddp_schema_list_names(names, sizeof names);
    cddp_die(CDDP_EXIT_DATA, "%s: unknown schema '%s' (expected %s)", path, schema, names);
  }
  d->info.schema = sd->id;

  /* Map the whole file for the fast path; a user block shifts HDF5's
   * addresses, so files with one use the HDF5 path. */
  struct stat st;
  hsize_t ub = 0;
  hid_t fcpl = h5Check(H5Fget_create_plist(d->file), CDDP_EXIT_DATA, path);
  H5Pget_userblock(fcpl, &ub);
  H5Pclose(fcpl);
  int fd = open(path, O_RDONLY);
  if (fd < 0 || fstat(fd, &st) != 0) cddp_die(CDDP_EXIT_DATA, "%s: cannot open: %s", path, strerror(errno));
  if (ub == 0 && st.st_size > 0) {
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
      d->map = m;
      d->map_len = (size_t)st.st_size;
    }
  }
  close(fd);

  open_cols(d, sd, (uint64_t)st.st_size);
  sd->read_attrs(d);
  return d;
}

void cddp_dataset_close(cddp_dataset *d) {
  if (!d) return;
  for (int i = 0; i < d->ncols; i++) {
    free(d->col[i].chunk_addr);
    H5Dclose(d->col[i].id);
  }
  if (d->map) munmap((void *)d->map, d->map_len);
  H5Fclose(d->file);
  free(d->path);
  free(d);
}

size_t cddp_dataset_scratch_bytes(const cddp_dataset *d, int n) {
  size_t rb = 0;
  for (int i = 0; i < d->ncols; i++)
    if (d->col[i].row_bytes > rb) rb = d->col[i].row_bytes;
  return (size_t)n * (rb + 2 * sizeof(int64_t));
}

typedef struct {
  int64_t row, pos;
} row_pos;

static int cmp_row_pos(const void *a, const void *b) {
  int64_t x = ((const row_pos *)a)->row, y = ((const row_pos *)b)->row;
  return (x > y) - (x < y);
}

/* HDF5 path: sort, then one hyperslab read per run of rows that step by 0 or 1. */
static void read_hdf5(cddp_dataset *d, cddp_ds_col *c, const int64_t *rows, int n, uint8_t *dst, void *scratch) {
  row_pos *rp = scratch;
  uint8_t *buf = (uint8_t *)(rp + n);
  for (int i = 0; i < n; i++) rp[i] = (row_pos){rows[i], i};
  qsort(rp, (size_t)n, sizeof *rp, cmp_row_pos);
  hid_t fsp = h5Check(H5Dget_space(c->id), CDDP_EXIT_DATA, d->path);
  int rank = H5Sget_simple_extent_ndims(fsp);
  hsize_t dims[8], start[8] = {0}, count[8];
  H5Sget_simple_extent_dims(fsp, dims, NULL);
  for (int k = 0; k < rank; k++) count[k] = dims[k];
  int i = 0;
  while (i < n) {
    int j = i + 1;
    while (j < n && rp[j].row - rp[j - 1].row <= 1) j++;
    start[0] = (hsize_t)rp[i].row;
    count[0] = (hsize_t)(rp[j - 1].row - rp[i].row + 1);
    hid_t msp = h5Check(H5Screate_simple(rank, count, NULL), CDDP_EXIT_RUNTIME, d->path);
    h5Check(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL), CDDP_EXIT_DATA, d->path);
    if (H5Dread(c->id, c->memtype, msp, fsp, H5P_DEFAULT, buf) < 0)
      cddp_die(CDDP_EXIT_DATA, "%s: cannot read rows %lld..%lld of dataset '%s' (corrupt or truncated file)",
               d->path, (long long)start[0], (long long)(start[0] + count[0] - 1), c->name);
    H5Sclose(msp);
    for (int k = i; k < j; k++)
      memcpy(dst + (size_t)rp[k].pos * c->row_bytes, buf + (size_t)(rp[k].row - rp[i].row) * c->row_bytes,
             c->row_bytes);
    i = j;
  }
  H5Sclose(fsp);
}

static inline const uint8_t *row_addr(const cddp_dataset *d, const cddp_ds_col *c, int64_t r) {
  if (!c->chunk_rows) return d->map + c->base + (uint64_t)r * c->row_bytes;
  return d->map + c->chunk_addr[r / c->chunk_rows] + (uint64_t)(r % c->chunk_rows) * c->row_bytes;
}

void cddp_dataset_read(cddp_dataset *d, int c, const int64_t *rows, int n, void *dst, void *scratch) {
  cddp_dataset_read_ordered(d, c, rows, NULL, n, dst, scratch);
}

void cddp_dataset_read_ordered(cddp_dataset *d, int ci, const int64_t *rows, const uint32_t *order, int n,
                               void *dst, void *scratch) {
  cddp_ds_col *c = &d->col[ci];
  for (int i = 0; i < n; i++)
    if (rows[i] < 0 || rows[i] >= d->info.rows)
      cddp_die(CDDP_EXIT_RUNTIME, "%s: row %lld requested outside [0, %lld)", d->path, (long long)rows[i],
               (long long)d->info.rows);
  if (!c->direct) {
    read_hdf5(d, c, rows, n, dst, scratch);
    return;
  }
  /* Random rows miss every cache level: prefetching a few rows ahead keeps
   * several memory loads in flight. With an order (rows visited ascending),
   * neighbouring rows share pages and page-table walks. */
  enum { AHEAD = 12 };
  uint8_t *out = dst;
  size_t rb = c->row_bytes;
  if (!order) { /* consecutive rows within one chunk: one copy per run */
    int i = 0;
    while (i < n) {
      int j = i + 1;
      int64_t chunk_end = c->chunk_rows ? (rows[i] / c->chunk_rows + 1) * c->chunk_rows : INT64_MAX;
      while (j < n && rows[j] == rows[j - 1] + 1 && rows[j] < chunk_end) j++;
      if (j - i < 4) break; /* not sequential: per-row path below */
      memcpy(out + (size_t)i * rb, row_addr(d, c, rows[i]), (size_t)(j - i) * rb);
      i = j;
    }
    if (i == n) return;
    out += (size_t)i * rb;
    rows += i;
    n -= i;
  }
#define POS(k) (order ? (int)order[k] : (k))
  for (int k = 0; k < n && k < AHEAD; k++) __builtin_prefetch(row_addr(d, c, rows[POS(k)]));
  for (int k = 0; k < n; k++) {
    if (k + AHEAD < n) {
      const uint8_t *p = row_addr(d, c, rows[POS(k + AHEAD)]);
      __builtin_prefetch(p);
      if (rb > 64) __builtin_prefetch(p + rb - 1);
    }
    int i = POS(k);
    memcpy(out + (size_t)i * rb, row_addr(d, c, rows[i]), rb);
  }
#undef POS
}

/* LSD radix sort of (row << 24 | position) keys, 11 bits per pass over the
 * bits actually used: a batch sorts in microseconds. Batches of 2^24 rows or
 * more, or rows beyond 2^40, keep their order (the order only changes speed). */
void cddp_dataset_sort_order(const int64_t *rows, int n, uint32_t *order, uint64_t *tmp) {
  int64_t maxr = 0;
  for (int i = 0; i < n; i++)
    if (rows[i] > maxr) maxr = rows[i];
  if (n >= (1 << 24) || maxr >= ((int64_t)1 << 40)) {
    for (int i = 0; i < n; i++) order[i] = (uint32_t)i;
    return;
  }
  uint64_t *src = tmp, *dst = tmp + n;
  for (int i = 0; i < n; i++) src[i] = (uint64_t)rows[i] << 24 | (uint64_t)i;
  int bits = 64 - __builtin_clzll(((uint64_t)maxr << 24) | 1);
  for (int shift = 24; shift < bits; shift += 11) {
    uint32_t cnt[2049] = {0};
    for (int i = 0; i < n; i++) cnt[((src[i] >> shift) & 2047) + 1]++;
    for (int k = 0; k < 2048; k++) cnt[k + 1] += cnt[k];
    for (int i = 0; i < n; i++) dst[cnt[(src[i] >> shift) & 2047]++] = src[i];
    uint64_t *t = src;
    src = dst;
    dst = t;
  }
  for (int i = 0; i < n; i++) order[i] = (uint32_t)(src[i] & 0xFFFFFF);
}
