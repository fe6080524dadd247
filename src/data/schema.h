/* A dataset schema in one place: its HDF5 datasets (dtypes and shapes), the
 * attributes read at open and written at commit, the batch layout, how rows
 * are read into a batch and their values checked, the metric it supports and
 * how `cddp info` describes a file. dataset.c, loader.c, writer.c, the
 * trainer's shape checks, evaluation and `cddp info` go through the
 * descriptor of a file's schema (schema_list.h) instead of switching on it. */
#ifndef CDDP_DATA_SCHEMA_H
#define CDDP_DATA_SCHEMA_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "data/batch.h"
#include "data/dataset.h"
#include "data/writer.h"

#define CDDP_SHAPE_TEXT_MAX 2048

/* A variable extent of a dataset: the int field of cddp_data_info that holds
 * it (set from the file at open, read by the writer). */
#define CDDP_INFO_DIM(field) (offsetof(cddp_data_info, field) + 1)

/* What one HDF5 dataset of a schema must look like: type class, size and
 * sign, rank, and per axis k+1 either a fixed extent dims[k] or, where
 * dims[k] is 0, any positive extent (kept in the info field from[k] names). */
typedef struct {
  const char *name;
  H5T_class_t cls;
  size_t size;
  int is_signed;
  int rank;
  hsize_t dims[3];
  size_t from[3]; /* CDDP_INFO_DIM(field) or 0 */
  const char *tname;
} cddp_col_spec;

/* Rows rows[0..n) to read into batch b (positions 0..n-1). */
typedef struct {
  cddp_dataset *d;
  cddp_batch *b;
  const int64_t *rows;
  const uint32_t *order;  /* visiting order for cddp_dataset_read_ordered, or NULL */
  int n;
  void *scratch;          /* cddp_dataset_scratch_bytes(d, n) */
  int64_t max_table_rows; /* > 0: ids are folded into this many rows (ctr) */
} cddp_fill;

typedef struct cddp_schema_desc {
  cddp_schema id;
  const char *name;   /* the root attribute `schema`, as in its schema_list.h line */
  const char *metric; /* evaluation: "ctr", "class" or "retrieval" (cddp_metrics_kind_name) */
  int ncols;
  cddp_col_spec cols[CDDP_DS_MAX_COLS]; /* column numbers of dataset.h */
  /* Reads and checks the schema's attributes into d->info (exit 3 naming the file). */
  void (*read_attrs)(cddp_dataset *d);
  /* Writes them from info. */
  void (*write_attrs)(cddp_writer *w, const cddp_data_info *info);
  /* The batch layout (batch.h). */
  int (*batch_fields)(const cddp_data_info *info, cddp_batch_field *f);
  /* Reads the rows into the batch and checks every value (exit 3 naming the
   * file, row and column). */
  void (*fill)(const cddp_fill *f);
  /* The shapes a model built on this data depends on (table sizes,
   * vocabularies, image size, classes), one "name = value" line each, at most
   * CDDP_SHAPE_TEXT_MAX bytes: the ranks of a job must agree on them, and
   * evaluation data must have the training data's. */
  void (*shape)(const cddp_data_info *info, char *out, size_t cap);
  /* `cddp info`: the schema's lines after the datasets. */
  void (*describe)(cddp_dataset *d);
} cddp_schema_desc;

#define CDDP_SCHEMA(E, name, sym) extern const cddp_schema_desc cddp_schema_##sym;
#include "data/schema_list.h"

/* The descriptor of s (a known schema). */
const cddp_schema_desc *cddp_schema_get(cddp_schema s);
/* The descriptor named by a root attribute, or NULL. */
const cddp_schema_desc *cddp_schema_find(const char *name);
/* 1 if a and b (of one schema) differ in shape; then la and lb (n bytes
 * each) get the first line of their shape texts that differs. */
int cddp_schema_shape_diff(const cddp_data_info *a, const cddp_data_info *b, char *la, char *lb,
                           size_t n);
/* "a, b or c": every schema name, for messages. */
void cddp_schema_list_names(char *out, size_t cap);

/* Shared value checks of the fill functions: exit 3 with
 * "<file>: row R, column C: <what>". */
void cddp_bad_value(const cddp_dataset *d, int64_t row, const char *col, const char *fmt, long long v,
                    long long lim);
/* ids [n, width] within [lo, hi); name "labels" reports a label. */
void cddp_check_ids(const cddp_dataset *d, const int32_t *ids, int n, int width, const int64_t *rows,
                    const char *name, int64_t lo, int64_t hi);
/* Reads rows [0, d->info.rows) of column c (rank 1) in blocks as memtype
 * elements of esz bytes and calls fn per block (cddp info's histograms). */
void cddp_dataset_scan(cddp_dataset *d, int c, hid_t memtype, size_t esz,
                       void (*fn)(const void *, int64_t, void *), void *ctx);

#endif
