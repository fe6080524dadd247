/* Embedding bags (fixed-width and segmented; forward, sparse backward),
 * coalescing of (id, row) pairs,
 * and scatter-add into a dense table.
 *
 * Sparse outputs are made deterministic by a stable LSD radix sort of the
 * (id, source) pairs: rows with equal ids are summed in source order, and each
 * unique id is summed by one thread. */
#include "core/error.h"
#include "kernels/cpu/cpu_internal.h"

void cpu_embbag_fwd(const float *table, int dim, const int32_t *ids, int ids_ld, int nbags,
                    int bag_size, int mean, float *out, int ldo) {
#pragma omp parallel for schedule(static) if ((size_t)nbags * bag_size * dim >= CPU_PAR_MIN)
  for (int b = 0; b < nbags; b++) {
    float *o = out + (size_t)b * ldo;
    const int32_t *bi = ids + (size_t)b * ids_ld;
    for (int d = 0; d < dim; d++) o[d] = 0.0f;
    int cnt = 0;
    for (int j = 0; j < bag_size; j++) {
      int32_t id = bi[j];
      if (id < 0) continue;
      const float *row = table + (size_t)id * dim;
#pragma omp simd
      for (int d = 0; d < dim; d++) o[d] += row[d];
      cnt++;
    }
    if (mean && cnt > 1) {
      float inv = 1.0f / cnt;
#pragma omp simd
      for (int d = 0; d < dim; d++) o[d] *= inv;
    }
  }
}

/* ---- stable radix sort of (key >= 0, value) pairs ---------------------- */
/* Sorts n pairs by key, stable; uses tk/tv as temporaries. The result ends
 * in either (k, v) or (tk, tv): returned through *ko, *vo. */
static void radix_sort(int32_t *k, int32_t *v, int32_t *tk, int32_t *tv, int n, int32_t maxkey,
                       int32_t **ko, int32_t **vo) {
  int32_t *sk = k, *sv = v, *dk = tk, *dv = tv;
  for (int shift = 0; shift < 32 && (maxkey >> shift) > 0; shift += 8) {
    size_t cnt[257] = {0};
    for (int i = 0; i < n; i++) cnt[(((uint32_t)sk[i] >> shift) & 255u) + 1]++;
    for (int b = 0; b < 256; b++) cnt[b + 1] += cnt[b];
    for (int i = 0; i < n; i++) {
      size_t pos = cnt[((uint32_t)sk[i] >> shift) & 255u]++;
      dk[pos] = sk[i];
      dv[pos] = sv[i];
    }
    int32_t *t = sk; sk = dk; dk = t;
    t = sv; sv = dv; dv = t;
  }
  *ko = sk;
  *vo = sv;
}

/* ws layout: keys, vals, tmp keys, tmp vals, segment starts (n+1), per-source
 * scale (n floats). */
static size_t sort_ws_bytes(int n) { return (size_t)6 * ((size_t)n + 1) * sizeof(int32_t) + 64; }

/* Groups n sorted keys into segments: out_ids[u] = key, start[u]..start[u+1]
 * its pairs. Returns the number of unique keys. */
static int segments(const int32_t *keys, int n, int32_t *out_ids, int32_t *start) {
  int u = 0;
  for (int i = 0; i < n; i++) {
    if (i == 0 || keys[i] != keys[i - 1]) {
      out_ids[u] = keys[i];
      start[u++] = i;
    }
  }
  start[u] = n;
  return u;
}

size_t cpu_embbag_bwd_ws_bytes(int cap, int dim) {
  (void)dim;
  return sort_ws_bytes(cap);
}

void cpu_embbag_bwd(const int32_t *ids, int ids_ld, int nbags, int bag_size, int mean,
                    const float *dout, int ldo, int dim, int32_t *out_ids, float *out_rows,
                    void *ws) {
  int cap = nbags * bag_size;
  int32_t *key = ws, *val = key + cap + 1, *tk = val + cap + 1, *tv = tk + cap + 1;
  int32_t *start = tv + cap + 1;
  float *bscale = (float *)(start + cap + 1);
  int n = 0;
  int32_t maxkey = 0;
  for (int b = 0; b < nbags; b++) {
    const int32_t *bi = ids + (size_t)b * ids_ld;
    int cnt = 0;
    for (int j = 0; j < bag_size; j++) {
      int32_t id = bi[j];
      if (id < 0) continue;
      key[n] = id;
      val[n++] = b;
      maxkey = id > maxkey ? id : maxkey;
      cnt++;
    }
    bscale[b] = mean && cnt > 0 ? 1.0f / cnt : 1.0f;
  }
  int32_t *sk, *sv;
  radix_sort(key, val, tk, tv, n, maxkey, &sk, &sv);
  int u = segments(sk, n, out_ids, start);
#pragma omp parallel for schedule(static) if ((size_t)n * dim >= CPU_PAR_MIN)
  for (int s = 0; s < u; s++) {
    float *o = out_rows + (size_t)s * dim;
    for (int d = 0; d < dim; d++) o[d] = 0.0f;
    for (int i = start[s]; i < start[s + 1]; i++) {
      int b = sv[i];
      const float *g = dout + (size_t)b * ldo;
      float w = bscale[b];
#pragma omp simd
      for (int d = 0; d < dim; d++) o[d] += w * g[d];
    }
  }
  for (int s = u; s < cap; s++) out_ids[s] = -1;
  if (cap > u) memset(out_rows + (size_t)u * dim, 0, (size_t)(cap - u) * dim * sizeof(float));
}

size_t cpu_sparse_coalesce_ws_bytes(int n, int dim) {
  (void)dim;
  return sort_ws_bytes(n);
}

void cpu_sparse_coalesce(const int32_t *ids, const float *rows, int n, int dim, int32_t *out_ids,
                         float *out_rows, void *ws) {
  int32_t *key = ws, *val = key + n + 1, *tk = val + n + 1, *tv = tk + n + 1;
  int32_t *start = tv + n + 1;
  int m = 0;
  int32_t maxkey = 0;
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0) continue;
    key[m] = ids[i];
    val[m++] = i;
    maxkey = ids[i] > maxkey ? ids[i] : maxkey;
  }
  int32_t *sk, *sv;
  radix_sort(key, val, tk, tv, m, maxkey, &sk, &sv);
  int u = segments(sk, m, out_ids, start);
#pragma omp parallel for schedule(static) if ((size_t)m * dim >= CPU_PAR_MIN)
  for (int s = 0; s < u; s++) {
    float *o = out_rows + (size_t)s * dim;
    for (int d = 0; d < dim; d++) o[d] = 0.0f;
    for (int i = start[s]; i < start[s + 1]; i++) {
      const float *r = rows + (size_t)sv[i] * dim;
#pragma omp simd
      for (int d = 0; d < dim; d++) o[d] += r[d];
    }
  }
  for (int s = u; s < n; s++) out_ids[s] = -1;
  if (n > u) memset(out_rows + (size_t)u * dim, 0, (size_t)(n - u) * dim * sizeof(float));
}

/* Serial over pairs (ids may repeat), vectorised over dim. */
void cpu_embbag_seg_fwd(const float *table, int dim, const int32_t *ids, const int32_t *ends,
                        int nseg, float *out, int ldo) {
#pragma omp parallel for schedule(static) if (nseg > 0 && (size_t)ends[nseg - 1] * dim >= CPU_PAR_MIN)
  for (int s = 0; s < nseg; s++) {
    float *o = out + (size_t)s * ldo;
    for (int d = 0; d < dim; d++) o[d] = 0.0f;
    for (int k = s ? ends[s - 1] : 0; k < ends[s]; k++) {
      if (ids[k] < 0) continue;
      const float *row = table + (size_t)ids[k] * dim;
#pragma omp simd
      for (int d = 0; d < dim; d++) o[d] += row[d];
    }
  }
}

void cpu_embbag_seg_bwd(const float *dout, int ldo, const int32_t *ends, int nseg, int dim,
                        float *rows) {
#pragma omp parallel for schedule(static) if (nseg > 0 && (size_t)ends[nseg - 1] * dim >= CPU_PAR_MIN)
  for (int s = 0; s < nseg; s++)
    for (int k = s ? ends[s - 1] : 0; k < ends[s]; k++)
      memcpy(rows + (size_t)k * dim, dout + (size_t)s * ldo, (size_t)dim * sizeof(float));
}

void cpu_sparse_to_dense(const int32_t *ids, const float *rows, int n, int dim, float *dense) {
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0) continue;
    float *o = dense + (size_t)ids[i] * dim;
    const float *r = rows + (size_t)i * dim;
#pragma omp simd
    for (int d = 0; d < dim; d++) o[d] += r[d];
  }
}
