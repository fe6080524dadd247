/* Embedding bags (forward, sparse backward), coalescing of (id, row) pairs
 * and scatter-add into a dense table.
 *
 * Sparse gradients: the (id, source) pairs are sorted by id with CUB's radix
 * sort (stable, so equal ids keep source order), runs of equal ids are found
 * with cub::DeviceRunLengthEncode and their start offsets with an exclusive
 * scan; then one thread per (unique id, column) sums its run in order.
 * Padding ids (-1) get the key INT_MAX so that they sort last and are
 * dropped. Same input, same bits; no atomics. */
#include <climits>

#include <cub/cub.cuh>

#include "kernels/cuda/cuda_common.h"

#define GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static __global__ void embbag_fwd_kernel(const float *table, int dim, const int32_t *ids,
                                         int ids_ld, int nbags, int bag_size, int mean, float *out,
                                         int ldo) {
  size_t total = (size_t)nbags * dim;
  GRID_LOOP(k, total) {
    size_t b = k / dim;
    int d = (int)(k % dim);
    const int32_t *bi = ids + b * ids_ld;
    float s = 0.0f;
    int cnt = 0;
    for (int j = 0; j < bag_size; j++) {
      int32_t id = bi[j];
      if (id < 0) continue;
      s += table[(size_t)id * dim + d];
      cnt++;
    }
    if (mean && cnt > 1) s *= 1.0f / cnt;
    out[b * ldo + d] = s;
  }
}

void cu_embbag_fwd(const float *table, int dim, const int32_t *ids, int ids_ld, int nbags,
                   int bag_size, int mean, float *out, int ldo) {
  size_t total = (size_t)(nbags > 0 ? nbags : 0) * (dim > 0 ? dim : 0);
  if (!total) return;
  embbag_fwd_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(table, dim, ids, ids_ld, nbags,
                                                                   bag_size, mean, out, ldo);
  cuLaunchCheck();
}

/* Segmented bags: one thread per (segment, column) sums its ids in order
 * (the CPU's order: same bits); backward, one thread per (id, column) finds
 * its segment by binary search over ends. */
static __global__ void embbag_seg_fwd_kernel(const float *table, int dim, const int32_t *ids,
                                             const int32_t *ends, int nseg, float *out, int ldo) {
  size_t total = (size_t)nseg * dim;
  GRID_LOOP(k, total) {
    size_t s = k / dim;
    int d = (int)(k % dim);
    float sum = 0.0f;
    for (int j = s ? ends[s - 1] : 0; j < ends[s]; j++)
      if (ids[j] >= 0) sum += table[(size_t)ids[j] * dim + d];
    out[s * ldo + d] = sum;
  }
}

void cu_embbag_seg_fwd(const float *table, int dim, const int32_t *ids, const int32_t *ends,
                       int nseg, float *out, int ldo) {
  size_t total = (size_t)(nseg > 0 ? nseg : 0) * (dim > 0 ? dim : 0);
  if (!total) return;
  embbag_seg_fwd_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(table, dim, ids, ends, nseg,
                                                                       out, ldo);
  cuLaunchCheck();
}

static __global__ void embbag_seg_bwd_kernel(const float *dout, int ldo, const int32_t *ends,
                                             int nseg, int dim, float *rows) {
  size_t total = (size_t)ends[nseg - 1] * dim;
  GRID_LOOP(k, total) {
    int j = (int)(k / dim), lo = 0, hi = nseg - 1; /* the first segment whose end is > j */
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (ends[mid] > j) hi = mid;
      else lo = mid + 1;
    }
    rows[k] = dout[(size_t)lo * ldo + k % dim];
  }
}

/* The id count is on the device (ends[nseg-1]): the grid is sized by the
 * segments and the grid-stride loop covers every id. */
void cu_embbag_seg_bwd(const float *dout, int ldo, const int32_t *ends, int nseg, int dim,
                       float *rows) {
  if (nseg <= 0 || dim <= 0) return;
  embbag_seg_bwd_kernel<<<cu_grid((size_t)nseg * dim, 256), 256, 0, g_cu.compute>>>(
      dout, ldo, ends, nseg, dim, rows);
  cuLaunchCheck();
}

/* ---- sort-based segmented sums ---------------------------------------------- */
struct seg_ws {
  int32_t *kin, *vin, *kout, *vout, *uniq, *counts, *offsets, *nruns;
  float *bscale;
  void *temp;
  size_t temp_bytes;
};

static size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

static size_t cub_temp_bytes(int n) {
  cu_bind();
  size_t a = 0, b = 0, c = 0;
  cudaCheck(cub::DeviceRadixSort::SortPairs(nullptr, a, (const int32_t *)nullptr, (int32_t *)nullptr,
                                            (const int32_t *)nullptr, (int32_t *)nullptr, n, 0, 32,
                                            g_cu.compute));
  cudaCheck(cub::DeviceRunLengthEncode::Encode(nullptr, b, (const int32_t *)nullptr,
                                               (int32_t *)nullptr, (int32_t *)nullptr,
                                               (int32_t *)nullptr, n, g_cu.compute));
  cudaCheck(cub::DeviceScan::ExclusiveSum(nullptr, c, (const int32_t *)nullptr, (int32_t *)nullptr,
                                          n, g_cu.compute));
  size_t m = a > b ? a : b;
  return m > c ? m : c;
}

/* Layout of ws for capacity n: 7 int arrays of n, the run count, n floats of
 * per-source scale, then CUB's temporary storage (computed for n items). */
static size_t seg_ws_bytes(int n) {
  if (n <= 0) return 256;
  size_t arr = align256((size_t)n * sizeof(int32_t));
  return 7 * arr + 256 + align256((size_t)n * sizeof(float)) + align256(cub_temp_bytes(n));
}

static seg_ws seg_layout(void *ws, int n) {
  seg_ws w;
  char *p = (char *)ws;
  size_t arr = align256((size_t)n * sizeof(int32_t));
  int32_t **a[7] = {&w.kin, &w.vin, &w.kout, &w.vout, &w.uniq, &w.counts, &w.offsets};
  for (int i = 0; i < 7; i++) { *a[i] = (int32_t *)p; p += arr; }
  w.nruns = (int32_t *)p; p += 256;
  w.bscale = (float *)p; p += align256((size_t)n * sizeof(float));
  w.temp = p;
  w.temp_bytes = align256(cub_temp_bytes(n));
  return w;
}

static void seg_sort_and_runs(seg_ws *w, int n) {
  size_t tb = w->temp_bytes;
  cudaCheck(cub::DeviceRadixSort::SortPairs(w->temp, tb, (const int32_t *)w->kin, w->kout,
                                            (const int32_t *)w->vin, w->vout, n, 0, 32, g_cu.compute));
  cudaCheck(cudaMemsetAsync(w->counts, 0, (size_t)n * sizeof(int32_t), g_cu.compute));
  tb = w->temp_bytes;
  cudaCheck(cub::DeviceRunLengthEncode::Encode(w->temp, tb, (const int32_t *)w->kout, w->uniq,
                                               w->counts, w->nruns, n, g_cu.compute));
  tb = w->temp_bytes;
  cudaCheck(cub::DeviceScan::ExclusiveSum(w->temp, tb, (const int32_t *)w->counts, w->offsets, n,
                                          g_cu.compute));
}

/* Slot u < n of the output: unique id u with the sum of its run, or -1 and a
 * zero row. src rows: rows[v * ld + d] scaled by scale[v] (if scale). */
static __global__ void seg_sum_kernel(const seg_ws w, int n, int dim, const float *rows, int ld,
                                      const float *scale, int32_t *out_ids, float *out_rows) {
  size_t total = (size_t)n * dim;
  int nr = *w.nruns;
  GRID_LOOP(k, total) {
    int u = (int)(k / dim), d = (int)(k % dim);
    int id = u < nr ? w.uniq[u] : INT_MAX;
    float s = 0.0f;
    if (id != INT_MAX) {
      int i0 = w.offsets[u], i1 = i0 + w.counts[u];
      for (int i = i0; i < i1; i++) {
        int v = w.vout[i];
        float g = rows[(size_t)v * ld + d];
        s += scale ? scale[v] * g : g;
      }
    }
    out_rows[k] = s;
    if (d == 0) out_ids[u] = id == INT_MAX ? -1 : id;
  }
}

static __global__ void embbag_keys_kernel(const int32_t *ids, int ids_ld, int nbags, int bag_size,
                                          int mean, int32_t *kin, int32_t *vin, float *bscale) {
  GRID_LOOP(b, (size_t)nbags) {
    const int32_t *bi = ids + b * ids_ld;
    int cnt = 0;
    for (int j = 0; j < bag_size; j++) {
      int32_t id = bi[j];
      size_t k = b * bag_size + j;
      kin[k] = id < 0 ? INT_MAX : id;
      vin[k] = (int32_t)b;
      cnt += id >= 0;
    }
    bscale[b] = mean && cnt > 0 ? 1.0f / cnt : 1.0f;
  }
}

size_t cu_embbag_bwd_ws_bytes(int cap, int dim) {
  (void)dim;
  return seg_ws_bytes(cap);
}

void cu_embbag_bwd(const int32_t *ids, int ids_ld, int nbags, int bag_size, int mean,
                   const float *dout, int ldo, int dim, int32_t *out_ids, float *out_rows,
                   void *ws) {
  int cap = nbags * bag_size;
  if (cap <= 0 || dim <= 0) return;
  seg_ws w = seg_layout(ws, cap);
  embbag_keys_kernel<<<cu_grid((size_t)nbags, 256), 256, 0, g_cu.compute>>>(
      ids, ids_ld, nbags, bag_size, mean, w.kin, w.vin, w.bscale);
  cuLaunchCheck();
  seg_sort_and_runs(&w, cap);
  seg_sum_kernel<<<cu_grid((size_t)cap * dim, 256), 256, 0, g_cu.compute>>>(
      w, cap, dim, dout, ldo, w.bscale, out_ids, out_rows);
  cuLaunchCheck();
}

static __global__ void coalesce_keys_kernel(const int32_t *ids, int n, int32_t *kin, int32_t *vin) {
  GRID_LOOP(i, (size_t)n) {
    int32_t id = ids[i];
    kin[i] = id < 0 ? INT_MAX : id;
    vin[i] = (int32_t)i;
  }
}

size_t cu_sparse_coalesce_ws_bytes(int n, int dim) {
  (void)dim;
  return seg_ws_bytes(n);
}

void cu_sparse_coalesce(const int32_t *ids, const float *rows, int n, int dim, int32_t *out_ids,
                        float *out_rows, void *ws) {
  if (n <= 0 || dim <= 0) return;
  seg_ws w = seg_layout(ws, n);
  coalesce_keys_kernel<<<cu_grid((size_t)n, 256), 256, 0, g_cu.compute>>>(ids, n, w.kin, w.vin);
  cuLaunchCheck();
  seg_sort_and_runs(&w, n);
  seg_sum_kernel<<<cu_grid((size_t)n * dim, 256), 256, 0, g_cu.compute>>>(w, n, dim, rows, dim,
                                                                          nullptr, out_ids, out_rows);
  cuLaunchCheck();
}

/* dense[id] += rows[i]. Float atomics: exact order only matters when ids
 * repeat (callers pass coalesced, unique ids: then it is deterministic). */
static __global__ void to_dense_kernel(const int32_t *ids, const float *rows, int n, int dim,
                                       float *dense) {
  size_t total = (size_t)n * dim;
  GRID_LOOP(k, total) {
    int id = ids[k / dim];
    if (id < 0) continue;
    atomicAdd(&dense[(size_t)id * dim + k % dim], rows[k]);
  }
}

void cu_sparse_to_dense(const int32_t *ids, const float *rows, int n, int dim, float *dense) {
  if (n <= 0 || dim <= 0) return;
  to_dense_kernel<<<cu_grid((size_t)n * dim, 256), 256, 0, g_cu.compute>>>(ids, rows, n, dim, dense);
  cuLaunchCheck();
}
