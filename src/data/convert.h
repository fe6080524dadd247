/* Converters from raw formats to cddp HDF5 files (docs/data.md). Both stream
 * their input (constant memory in the input size, except the --min-count
 * dictionary) and write through data/writer.h, so a failure never leaves a
 * file under the output name. Input problems end the process with exit 3 and
 * "<file>: line N: <problem>" (criteo) or "<file>: <problem>" (idx). */
#ifndef CDDP_DATA_CONVERT_H
#define CDDP_DATA_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#define CDDP_CRITEO_DEFAULT_TABLE 1000000

typedef struct {
  int64_t table_size;  /* hashing: rows per table incl. reserved id 0 (default 1,000,000) */
  int64_t min_count;   /* > 0: frequency dictionary instead of hashing (two passes) */
  int skip_bad;        /* --on-bad-line skip */
  double val_fraction; /* 0: no validation file */
  const char *val_out; /* validation file; NULL: OUT with ".h5" replaced by "-val.h5" */
  uint64_t seed;       /* split seed */
  int quiet;
} cddp_criteo_opts;

typedef struct {
  int64_t lines, rows, val_rows, skipped;
  double seconds, bytes;
} cddp_criteo_stats;

/* Converts a Criteo TSV (plain or gzip). */
cddp_criteo_stats cddp_convert_criteo(const char *in, const char *out, const cddp_criteo_opts *o);

/* Parses one raw line (without its newline) into label/dense/hex values;
 * returns NULL on success, or `why` holding the reason ("wrong field count
 * ..."). missing[] gets 1 for empty fields. Exposed for tests. */
enum { CDDP_CRITEO_WHY = 96 };
const char *cddp_criteo_parse_line(const char *p, const char *e, uint8_t *label, int64_t ints[13],
                                   uint32_t hex[26], uint8_t missing[39],
                                   char why[CDDP_CRITEO_WHY]);

/* Hash-mode id of hex value v of categorical column c (0-based):
 * 1 + floor(mix64(v ^ (c+1) << 32) * (T-1) / 2^64). */
int32_t cddp_criteo_hash_id(uint32_t v, int c, int64_t table_size);

/* MNIST IDX images [N,H,W] (or [N,H,W,C]) + labels [N], plain or gzip.
 * num_classes <= 0: max label + 1. */
void cddp_convert_idx(const char *images, const char *labels, const char *out, int num_classes);

/* "OUT.h5" -> "OUT-val.h5" (or "OUT-val" appended when there is no .h5). */
void cddp_val_path(const char *out, char *buf, size_t cap);

#endif
