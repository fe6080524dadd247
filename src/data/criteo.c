/* cddp convert criteo: raw Criteo TSV -> cddp.ctr.v1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "core/error.h"
#include "core/log.h"
#include "data/convert.h"
#include "data/dataset.h"
#include "data/h5util.h"
#include "data/prng.h"
#include "data/writer.h"

enum { NFIELDS = 1 + CDDP_CTR_DENSE + CDDP_CTR_SPARSE, BUF = 8 << 20, ROWS = 65536, LOGTAB = 4096 };

/* Hex digit values; 0xFF for anything else. */
static uint8_t HEXV[256];
__attribute__((constructor)) static void init_hexv(void) {
  memset(HEXV, 0xFF, sizeof HEXV);
  for (int i = 0; i < 10; i++) HEXV['0' + i] = (uint8_t)i;
  for (int i = 0; i < 6; i++) HEXV['a' + i] = HEXV['A' + i] = (uint8_t)(10 + i);
}

static const char *field_end(const char *p, const char *e) {
  const char *q = memchr(p, '\t', (size_t)(e - p));
  return q ? q : e;
}

/* One pass over the characters (no per-field memchr): each field is parsed
 * where it stands and must end at a tab (or at the end for the last one). */
const char *cddp_criteo_parse_line(const char *p, const char *e, uint8_t *label, int64_t ints[13],
                                   uint32_t hex[26], uint8_t missing[39],
                                   char why[CDDP_CRITEO_WHY]) {
  const char *q = p;
  for (int f = 0; f < NFIELDS; f++) {
    const char *start = q;
    if (f == 0) {
      if (q < e && (*q == '0' || *q == '1') && (q + 1 == e || q[1] == '\t')) {
        *label = (uint8_t)(*q - '0');
        q++;
      } else {
        const char *fe = field_end(start, e);
        snprintf(why, CDDP_CRITEO_WHY, "bad label '%.*s' (expected 0 or 1)", (int)(fe - start > 20 ? 20 : fe - start),
                 start);
        return why;
      }
    } else if (f <= CDDP_CTR_DENSE) {
      int64_t v = 0;
      int neg = q < e && *q == '-';
      q += neg;
      const char *d0 = q;
      unsigned dgt;
      /* Accumulate at most 18 digits (< 2^63); longer fields are rejected
       * below, after the scan, without ever overflowing v. */
      while (q < e && (dgt = (unsigned)(*q - '0')) <= 9) {
        if (q - d0 < 18) v = v * 10 + dgt;
        q++;
      }
      size_t nd = (size_t)(q - d0);
      if ((q < e && *q != '\t') || nd > 18 || (neg && nd == 0)) {
        const char *fe = field_end(start, e);
        snprintf(why, CDDP_CRITEO_WHY, "bad integer '%.*s' in field I%d", (int)(fe - start > 24 ? 24 : fe - start),
                 start, f);
        return why;
      }
      missing[f - 1] = q == start;
      ints[f - 1] = neg ? -v : v;
    } else {
      uint32_t v = 0;
      uint8_t x;
      while (q < e && (x = HEXV[(unsigned char)*q]) < 16) {
        v = v << 4 | x;
        q++;
      }
      if ((q < e && *q != '\t') || q - start > 8) {
        const char *fe = field_end(start, e);
        snprintf(why, CDDP_CRITEO_WHY, "bad hex '%.*s' in field C%d", (int)(fe - start > 24 ? 24 : fe - start),
                 start, f - CDDP_CTR_DENSE);
        return why;
      }
      missing[f - 1] = q == start;
      hex[f - 1 - CDDP_CTR_DENSE] = v;
    }
    if (f < NFIELDS - 1) {
      if (q == e) {
        snprintf(why, CDDP_CRITEO_WHY, "wrong field count (%d, expected %d)", f + 1, NFIELDS);
        return why;
      }
      q++; /* the tab */
    } else if (q != e) {
      int n = NFIELDS;
      for (const char *r = q; r < e; r++) n += *r == '\t';
      snprintf(why, CDDP_CRITEO_WHY, "wrong field count (%d, expected %d)", n, NFIELDS);
      return why;
    }
  }
  return NULL;
}

int32_t cddp_criteo_hash_id(uint32_t v, int c, int64_t table_size) {
  /* multiply-shift instead of a 64-bit modulo: uniform and ~10x cheaper */
  uint64_t h = cddp_mix64((uint64_t)v ^ ((uint64_t)(c + 1) << 32));
  return (int32_t)(1 + (uint64_t)(((__uint128_t)h * (uint64_t)(table_size - 1)) >> 64));
}

void cddp_val_path(const char *out, char *buf, size_t cap) {
  size_t n = strlen(out);
  if (n > 3 && !strcmp(out + n - 3, ".h5")) snprintf(buf, cap, "%.*s-val.h5", (int)(n - 3), out);
  else snprintf(buf, cap, "%s-val", out);
}

/* ---- frequency dictionary (--min-count): open addressing, key = hex + 1 ---- */
typedef struct {
  uint64_t *key;
  uint32_t *val;
  uint64_t cap, used;
} dict;

static void dict_init(dict *d, uint64_t cap) {
  d->cap = cap;
  d->used = 0;
  d->key = cddp_xcalloc(cap * sizeof(uint64_t), "dictionary");
  d->val = cddp_xcalloc(cap * sizeof(uint32_t), "dictionary");
}

static uint32_t *dict_slot(dict *d, uint32_t v, int insert);

static void dict_grow(dict *d) {
  dict n;
  dict_init(&n, d->cap * 2);
  for (uint64_t i = 0; i < d->cap; i++)
    if (d->key[i]) *dict_slot(&n, (uint32_t)(d->key[i] - 1), 1) = d->val[i];
  free(d->key);
  free(d->val);
  *d = n;
}

static uint32_t *dict_slot(dict *d, uint32_t v, int insert) {
  if (insert && 2 * (d->used + 1) > d->cap) dict_grow(d);
  uint64_t k = (uint64_t)v + 1, m = d->cap - 1;
  for (uint64_t i = cddp_mix64(k) & m;; i = (i + 1) & m) {
    if (d->key[i] == k) return &d->val[i];
    if (!d->key[i]) {
      if (!insert) return NULL;
      d->key[i] = k;
      d->used++;
      return &d->val[i];
    }
  }
}

typedef struct {
  uint64_t key;
  uint32_t count;
} kc;

static int cmp_kc(const void *a, const void *b) {
  const kc *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return (x->key > y->key) - (x->key < y->key);
}

/* Replaces counts by ids: values seen >= min_count times get 1..K by
 * descending count (ties: ascending value), the rest 0. Returns K + 1. */
static int64_t dict_assign(dict *d, int64_t min_count) {
  kc *v = cddp_xmalloc((d->used + 1) * sizeof(kc), "dictionary sort");
  uint64_t n = 0;
  for (uint64_t i = 0; i < d->cap; i++)
    if (d->key[i] && d->val[i] >= (uint64_t)min_count) v[n++] = (kc){d->key[i], d->val[i]};
  qsort(v, n, sizeof *v, cmp_kc);
  for (uint64_t i = 0; i < d->cap; i++) d->val[i] = 0;
  for (uint64_t i = 0; i < n; i++) *dict_slot(d, (uint32_t)(v[i].key - 1), 0) = (uint32_t)(i + 1);
  free(v);
  return (int64_t)n + 1;
}

/* ---- streaming line reader over gzread (plain files pass through) ---- */
typedef struct {
  const char *path;
  gzFile f;
  char *buf;
  size_t len, pos;
  int eof;
  int64_t lineno;
  double bytes;
} reader;

static void reader_open(reader *r, const char *path) {
  memset(r, 0, sizeof *r);
  r->path = path;
  r->f = gzopen(path, "rb");
  if (!r->f) cddp_die(CDDP_EXIT_DATA, "%s: cannot open: %s", path, strerror(errno));
  gzbuffer(r->f, 1 << 20);
  r->buf = cddp_xmalloc(BUF + 1, "input buffer");
}

static void reader_close(reader *r) {
  gzclose(r->f);
  free(r->buf);
}

/* Next line in [*b, *e) without newline; 0 at the end of input. */
static int reader_line(reader *r, const char **b, const char **e) {
  for (;;) {
    char *s = r->buf + r->pos;
    char *nl = memchr(s, '\n', r->len - r->pos);
    if (nl || (r->eof && r->pos < r->len)) {
      char *end = nl ? nl : r->buf + r->len;
      *b = s;
      r->pos = (size_t)(end - r->buf) + (nl ? 1 : 0);
      if (end > s && end[-1] == '\r') end--;
      *e = end;
      r->lineno++;
      return 1;
    }
    if (r->eof) return 0;
    memmove(r->buf, s, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
    if (r->len == BUF) cddp_die(CDDP_EXIT_DATA, "%s: line %lld: longer than %d bytes", r->path,
                                (long long)r->lineno + 1, BUF);
    int got = gzread(r->f, r->buf + r->len, (unsigned)(BUF - r->len));
    int err = 0;
    const char *msg = gzerror(r->f, &err);
    if (got < 0 || (err != Z_OK && err != Z_STREAM_END)) {
      size_t pl = strlen(r->path); /* zlib prefixes its message with the path */
      if (msg && !strncmp(msg, r->path, pl) && !strncmp(msg + pl, ": ", 2)) msg += pl + 2;
      cddp_die(CDDP_EXIT_DATA, "%s: unreadable gzip input (%s) after %.0f bytes of text", r->path,
               msg && *msg ? msg : "read error", r->bytes);
    }
    if (got == 0) r->eof = 1;
    r->len += (size_t)got;
    r->bytes += got;
  }
}

typedef struct {
  cddp_writer *w;
  uint8_t *label;
  float *dense;
  int32_t *sparse;
  int n;
  int64_t rows;
} out_buf;

static void out_init(out_buf *o, const char *path) {
  cddp_data_info shape = {.schema = CDDP_SCHEMA_CTR};
  o->w = cddp_writer_create(path, CDDP_SCHEMA_CTR, &shape);
  o->label = cddp_xmalloc(ROWS, "rows");
  o->dense = cddp_xmalloc(sizeof(float) * ROWS * CDDP_CTR_DENSE, "rows");
  o->sparse = cddp_xmalloc(sizeof(int32_t) * ROWS * CDDP_CTR_SPARSE, "rows");
  o->n = 0;
  o->rows = 0;
}

static void out_flush(out_buf *o) {
  cddp_writer_append(o->w, CDDP_CTR_LABEL, o->label, o->n);
  cddp_writer_append(o->w, CDDP_CTR_DENSE_COL, o->dense, o->n);
  cddp_writer_append(o->w, CDDP_CTR_SPARSE_COL, o->sparse, o->n);
  o->rows += o->n;
  o->n = 0;
}

static void out_finish(out_buf *o, const cddp_data_info *info, const char *in, const cddp_criteo_opts *opt,
                       int64_t skipped) {
  out_flush(o);
  if (o->rows == 0)
    cddp_die(CDDP_EXIT_DATA, "%s: no rows to write to %s (empty input, or every line skipped)", in,
             o->w->final_path);
  cddp_h5_write_attr_i64(o->w->tmp_path, o->w->file, "skipped_lines", &skipped, 1);
  cddp_h5_write_attr_str(o->w->tmp_path, o->w->file, "source", in);
  int64_t v = opt->min_count > 0 ? opt->min_count : 0;
  cddp_h5_write_attr_i64(o->w->tmp_path, o->w->file, "min_count", &v, 1);
  cddp_writer_commit(o->w, info);
  free(o->label);
  free(o->dense);
  free(o->sparse);
}

static int is_val(uint64_t seed, int64_t lineno, double frac) {
  if (frac <= 0) return 0;
  uint64_t h = cddp_mix64(seed ^ ((uint64_t)lineno * 0x9E3779B97F4A7C15ull));
  return (double)(h >> 11) * 0x1.0p-53 < frac;
}

cddp_criteo_stats cddp_convert_criteo(const char *in, const char *out, const cddp_criteo_opts *opt) {
  cddp_criteo_stats st = {0};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int64_t T = opt->table_size > 0 ? opt->table_size : CDDP_CRITEO_DEFAULT_TABLE;
  if (opt->min_count <= 0 && (T < 2 || T > INT32_MAX))
    cddp_die(CDDP_EXIT_USAGE, "--table-size must be in [2, 2^31), got %lld", (long long)T);
  if (opt->val_fraction < 0 || opt->val_fraction >= 1)
    cddp_die(CDDP_EXIT_USAGE, "--val-fraction must be in [0, 1), got %g", opt->val_fraction);
  static float logtab[LOGTAB];
  for (int i = 0; i < LOGTAB; i++) logtab[i] = (float)log1p((double)i);

  uint8_t label, missing[39];
  int64_t ints[13];
  uint32_t hex[26];
  char reason[CDDP_CRITEO_WHY];
  const char *b, *e;
  reader r;
  cddp_data_info info = {.schema = CDDP_SCHEMA_CTR};
  dict *dicts = NULL;

  if (opt->min_count > 0) { /* pass 1: count values per column */
    dicts = cddp_xcalloc(sizeof(dict) * CDDP_CTR_SPARSE, "dictionaries");
    for (int c = 0; c < CDDP_CTR_SPARSE; c++) dict_init(&dicts[c], 1024);
    reader_open(&r, in);
    while (reader_line(&r, &b, &e)) {
      const char *why = cddp_criteo_parse_line(b, e, &label, ints, hex, missing, reason);
      if (why) {
        if (!opt->skip_bad) cddp_die(CDDP_EXIT_DATA, "%s: line %lld: %s", in, (long long)r.lineno, why);
        continue;
      }
      for (int c = 0; c < CDDP_CTR_SPARSE; c++)
        if (!missing[CDDP_CTR_DENSE + c]) {
          uint32_t *cnt = dict_slot(&dicts[c], hex[c], 1);
          if (*cnt < UINT32_MAX) (*cnt)++;
        }
    }
    reader_close(&r);
    for (int c = 0; c < CDDP_CTR_SPARSE; c++) info.table_sizes[c] = dict_assign(&dicts[c], opt->min_count);
  } else {
    for (int c = 0; c < CDDP_CTR_SPARSE; c++) info.table_sizes[c] = T;
  }

  char valpath[4096];
  out_buf tr, va;
  out_init(&tr, out);
  if (opt->val_fraction > 0) {
    if (opt->val_out) snprintf(valpath, sizeof valpath, "%s", opt->val_out);
    else cddp_val_path(out, valpath, sizeof valpath);
    out_init(&va, valpath);
  }
  reader_open(&r, in);
  while (reader_line(&r, &b, &e)) {
    const char *why = cddp_criteo_parse_line(b, e, &label, ints, hex, missing, reason);
    if (why) {
      if (!opt->skip_bad) cddp_die(CDDP_EXIT_DATA, "%s: line %lld: %s", in, (long long)r.lineno, why);
      st.skipped++;
      continue;
    }
    out_buf *o = is_val(opt->seed, r.lineno, opt->val_fraction) ? &va : &tr;
    int i = o->n;
    o->label[i] = label;
    float *dn = o->dense + (size_t)i * CDDP_CTR_DENSE;
    for (int k = 0; k < CDDP_CTR_DENSE; k++) {
      int64_t x = ints[k] < 0 ? 0 : ints[k]; /* missing parsed as 0 */
      dn[k] = x < LOGTAB ? logtab[x] : (float)log1p((double)x);
    }
    int32_t *sp = o->sparse + (size_t)i * CDDP_CTR_SPARSE;
    for (int c = 0; c < CDDP_CTR_SPARSE; c++) {
      if (missing[CDDP_CTR_DENSE + c]) sp[c] = 0;
      else if (dicts) sp[c] = (int32_t)*dict_slot(&dicts[c], hex[c], 0);
      else sp[c] = cddp_criteo_hash_id(hex[c], c, T);
    }
    if (++o->n == ROWS) out_flush(o);
  }
  st.lines = r.lineno;
  st.bytes = r.bytes;
  reader_close(&r);
  if (st.skipped)
    cddp_log_warn("%s: skipped %lld bad line%s of %lld", in, (long long)st.skipped, st.skipped == 1 ? "" : "s",
                  (long long)st.lines);
  int64_t tr_rows = tr.rows + tr.n, va_rows = opt->val_fraction > 0 ? va.rows + va.n : 0;
  if (tr_rows == 0 || (opt->val_fraction > 0 && va_rows == 0)) /* before either file is renamed */
    cddp_die(CDDP_EXIT_DATA, "%s: no rows for %s (empty input, every line skipped, or too few lines to split)",
             in, tr_rows == 0 ? out : valpath);
  if (opt->val_fraction > 0) out_finish(&va, &info, in, opt, st.skipped);
  out_finish(&tr, &info, in, opt, st.skipped);
  st.rows = tr_rows;
  st.val_rows = va_rows;
  if (dicts) {
    for (int c = 0; c < CDDP_CTR_SPARSE; c++) {
      free(dicts[c].key);
      free(dicts[c].val);
    }
    free(dicts);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  st.seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  return st;
}
