/* cuda-emu: the CUB device-wide primitives a trainer uses, modelled from the
 * CUB documentation: DeviceRadixSort::SortPairs (stable, keys ordered as
 * their type orders them, bits [begin_bit, end_bit) considered),
 * DeviceRunLengthEncode::Encode and DeviceScan::ExclusiveSum. Each follows
 * the temporary-storage protocol: with d_temp_storage == NULL it only writes
 * the size it needs; otherwise the storage must be at least that large (else
 * cudaErrorInvalidValue) and is really used as scratch, so storage that
 * overlaps live data corrupts it as on a GPU. The work runs on the stream. */
#ifndef CUEMU_CUB_CUH
#define CUEMU_CUB_CUH

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include <cuda_runtime.h>
#include "cuemu/host_ops.h"

namespace cub {
namespace detail {

inline size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

template <class It>
bool on_device(It p, size_t n, const char *fn, const char *what) {
  if constexpr (std::is_pointer_v<It>) {
    if (n && !::cuemu::is_device_range((const void *)p, n * sizeof(*p))) {
      ::cuemu::report("%s: %s %p (%zu items) is not inside one device allocation", fn, what,
                      (const void *)p, n);
      return false;
    }
  }
  return true;
}

/* Common protocol: size query, size check, storage check. */
inline cudaError_t temp_protocol(void *d_temp, size_t &bytes, size_t need, const char *fn) {
  if (!d_temp) {
    bytes = need;
    return cudaSuccess;
  }
  if (bytes < need) {
    ::cuemu::report("%s: temp_storage_bytes %zu < %zu required", fn, bytes, need);
    return cudaErrorInvalidValue;
  }
  if (!::cuemu::is_device_range(d_temp, need)) {
    ::cuemu::report("%s: d_temp_storage %p (%zu bytes) is not inside one device allocation", fn,
                    d_temp, need);
    return cudaErrorInvalidValue;
  }
  return cudaErrorNotReady; /* proceed */
}

/* Unsigned image of a key whose unsigned order is the key's order. */
template <class K>
uint64_t radix_bits(K k) {
  if constexpr (std::is_floating_point_v<K>) {
    if constexpr (sizeof(K) == 4) {
      uint32_t u;
      std::memcpy(&u, &k, 4);
      return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    } else {
      uint64_t u;
      std::memcpy(&u, &k, 8);
      return (u >> 63) ? ~u : (u | (1ull << 63));
    }
  } else if constexpr (std::is_signed_v<K>) {
    using U = std::make_unsigned_t<K>;
    return (uint64_t)(U)((U)k ^ ((U)1 << (sizeof(K) * 8 - 1)));
  } else {
    return (uint64_t)k;
  }
}
} // namespace detail

struct DeviceRadixSort {
  template <class K, class V, class N>
  static cudaError_t SortPairs(void *d_temp_storage, size_t &temp_storage_bytes, const K *d_keys_in,
                               K *d_keys_out, const V *d_values_in, V *d_values_out, N num_items,
                               int begin_bit = 0, int end_bit = sizeof(K) * 8,
                               cudaStream_t stream = 0) {
    const char *fn = "cub::DeviceRadixSort::SortPairs";
    if (num_items < 0 || begin_bit < 0 || end_bit > (int)sizeof(K) * 8 || begin_bit > end_bit)
      return cudaErrorInvalidValue;
    size_t n = (size_t)num_items;
    size_t need = detail::align256(n * sizeof(K)) + detail::align256(n * sizeof(V)) + 256;
    cudaError_t e = detail::temp_protocol(d_temp_storage, temp_storage_bytes, need, fn);
    if (e != cudaErrorNotReady) return e;
    if (!detail::on_device(d_keys_in, n, fn, "d_keys_in") || !detail::on_device(d_keys_out, n, fn, "d_keys_out") ||
        !detail::on_device(d_values_in, n, fn, "d_values_in") || !detail::on_device(d_values_out, n, fn, "d_values_out"))
      return cudaErrorInvalidValue;
    K *tk = (K *)d_temp_storage;
    V *tv = (V *)((char *)d_temp_storage + detail::align256(n * sizeof(K)));
    return ::cuemu::enqueue(stream, fn, [=]() {
      /* the alternate buffers of the sort live in the temporary storage */
      std::memcpy(tk, d_keys_in, n * sizeof(K));
      std::memcpy(tv, d_values_in, n * sizeof(V));
      uint64_t mask = (end_bit - begin_bit >= 64 ? ~0ull : ((1ull << (end_bit - begin_bit)) - 1)) << begin_bit;
      std::vector<size_t> idx(n);
      std::iota(idx.begin(), idx.end(), (size_t)0);
      std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
        return (detail::radix_bits(tk[a]) & mask) < (detail::radix_bits(tk[b]) & mask);
      });
      for (size_t i = 0; i < n; i++) {
        d_keys_out[i] = tk[idx[i]];
        d_values_out[i] = tv[idx[i]];
      }
      return 1;
    });
  }
};

struct DeviceRunLengthEncode {
  template <class In, class Uniq, class Cnt, class NRuns>
  static cudaError_t Encode(void *d_temp_storage, size_t &temp_storage_bytes, In d_in,
                            Uniq d_unique_out, Cnt d_counts_out, NRuns d_num_runs_out,
                            int num_items, cudaStream_t stream = 0) {
    const char *fn = "cub::DeviceRunLengthEncode::Encode";
    if (num_items < 0) return cudaErrorInvalidValue;
    size_t n = (size_t)num_items;
    size_t need = detail::align256(n * sizeof(int)) + 256; /* run heads */
    cudaError_t e = detail::temp_protocol(d_temp_storage, temp_storage_bytes, need, fn);
    if (e != cudaErrorNotReady) return e;
    if (!detail::on_device(d_in, n, fn, "d_in") || !detail::on_device(d_num_runs_out, 1, fn, "d_num_runs_out"))
      return cudaErrorInvalidValue;
    int *head = (int *)d_temp_storage;
    return ::cuemu::enqueue(stream, fn, [=]() {
      for (size_t i = 0; i < n; i++) head[i] = i == 0 || !(d_in[i] == d_in[i - 1]);
      size_t r = 0;
      for (size_t i = 0; i < n; i++) {
        if (head[i]) {
          d_unique_out[r] = d_in[i];
          d_counts_out[r] = 0;
          r++;
        }
        d_counts_out[r - 1] += 1;
      }
      *d_num_runs_out = (std::remove_reference_t<decltype(*d_num_runs_out)>)r;
      return 1;
    });
  }
};

struct DeviceScan {
  template <class In, class Out, class N>
  static cudaError_t ExclusiveSum(void *d_temp_storage, size_t &temp_storage_bytes, In d_in,
                                  Out d_out, N num_items, cudaStream_t stream = 0) {
    const char *fn = "cub::DeviceScan::ExclusiveSum";
    if (num_items < 0) return cudaErrorInvalidValue;
    size_t n = (size_t)num_items;
    size_t tiles = n / 1024 + 1;
    size_t need = detail::align256(tiles * sizeof(long long)) + 256; /* tile prefixes */
    cudaError_t e = detail::temp_protocol(d_temp_storage, temp_storage_bytes, need, fn);
    if (e != cudaErrorNotReady) return e;
    if (!detail::on_device(d_in, n, fn, "d_in") || !detail::on_device(d_out, n, fn, "d_out"))
      return cudaErrorInvalidValue;
    long long *prefix = (long long *)d_temp_storage;
    return ::cuemu::enqueue(stream, fn, [=]() {
      using T = std::remove_cv_t<std::remove_reference_t<decltype(*d_in)>>;
      /* tile sums first (as the decoupled look-back does), then each tile */
      for (size_t t = 0; t < tiles; t++) {
        T s = T();
        for (size_t i = t * 1024; i < n && i < (t + 1) * 1024; i++) s = s + d_in[i];
        std::memcpy(&prefix[t], &s, sizeof s < sizeof(long long) ? sizeof s : sizeof(long long));
      }
      T run = T();
      for (size_t t = 0; t < tiles; t++) {
        T tile;
        std::memcpy(&tile, &prefix[t], sizeof tile < sizeof(long long) ? sizeof tile : sizeof(long long));
        T x = run;
        for (size_t i = t * 1024; i < n && i < (t + 1) * 1024; i++) {
          T v = d_in[i];
          d_out[i] = x;
          x = x + v;
        }
        run = run + tile;
      }
      return 1;
    });
  }
};

} // namespace cub

#endif
