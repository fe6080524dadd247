#include "data/sampler.h"

#include <stdlib.h>

#include "core/error.h"
#include "data/prng.h"

struct cddp_sampler {
  cddp_sampler_opts o;
  int64_t epoch;
  int64_t *perm;   /* full shuffle: the epoch's permutation of N */
  int64_t nblocks; /* block shuffle */
  int64_t *bperm;  /* block order */
  int64_t *win;    /* rows of the cached window, shuffled */
  int64_t win_id;  /* which window win holds; -1 none */
  int64_t win_len;
  int64_t nwin;    /* windows per epoch */
  int64_t *wstart; /* [nwin] position of each window's first row in the order */
};

cddp_sampler *cddp_sampler_create(const cddp_sampler_opts *o) {
  if (o->n <= 0) cddp_die(CDDP_EXIT_DATA, "sampler: dataset has no rows");
  if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
    cddp_die(CDDP_EXIT_USAGE, "sampler: rank %d outside world of %d", o->rank, o->world);
  if (!o->eval && o->drop_last && o->n < o->world)
    cddp_die(CDDP_EXIT_USAGE, "sampler: drop_last with %lld rows leaves nothing for %d ranks",
             (long long)o->n, o->world);
  cddp_sampler *s = cddp_xcalloc(sizeof *s, "sampler");
  s->o = *o;
  s->epoch = -1;
  s->win_id = -1;
  if (o->eval) return s;
  if (o->shuffle == CDDP_SHUFFLE_FULL) {
    s->perm = cddp_xmalloc((size_t)o->n * sizeof(int64_t), "sampler permutation");
  } else if (o->shuffle == CDDP_SHUFFLE_BLOCK) {
    if (o->block_rows <= 0 || o->window_blocks <= 0)
      cddp_die(CDDP_EXIT_USAGE, "sampler: block shuffle needs block_rows > 0 and window_blocks > 0");
    s->nblocks = (o->n + o->block_rows - 1) / o->block_rows;
    s->bperm = cddp_xmalloc((size_t)s->nblocks * sizeof(int64_t), "sampler block order");
    int64_t wrows = o->block_rows * o->window_blocks;
    if (wrows > o->n) wrows = o->n;
    s->win = cddp_xmalloc((size_t)wrows * sizeof(int64_t), "sampler window");
    s->nwin = (s->nblocks + o->window_blocks - 1) / o->window_blocks;
    s->wstart = cddp_xmalloc((size_t)s->nwin * sizeof(int64_t), "sampler windows");
  } else if (o->shuffle != CDDP_SHUFFLE_NONE) {
    cddp_die(CDDP_EXIT_USAGE, "sampler: unknown shuffle mode %d", (int)o->shuffle);
  }
  return s;
}

void cddp_sampler_destroy(cddp_sampler *s) {
  if (!s) return;
  free(s->perm);
  free(s->bperm);
  free(s->win);
  free(s->wstart);
  free(s);
}

static void shard(const cddp_sampler_opts *o, int64_t *start, int64_t *count) {
  /* 128-bit products: N * W may exceed int64 for huge N. */
  int64_t a = (int64_t)(((__int128)o->n * o->rank) / o->world);
  int64_t b = (int64_t)(((__int128)o->n * (o->rank + 1)) / o->world);
  *start = a;
  *count = b - a;
}

int64_t cddp_sampler_num_samples(const cddp_sampler *s) {
  const cddp_sampler_opts *o = &s->o;
  if (o->eval == CDDP_EVAL_CONTIGUOUS) {
    int64_t a, c;
    shard(o, &a, &c);
    return c;
  }
  if (o->eval == CDDP_EVAL_STRIDED) return o->n > o->rank ? (o->n - o->rank + o->world - 1) / o->world : 0;
  if (o->drop_last) return o->n / o->world;
  return (o->n + o->world - 1) / o->world;
}

void cddp_sampler_set_epoch(cddp_sampler *s, int64_t epoch) {
  s->epoch = epoch;
  s->win_id = -1;
  const cddp_sampler_opts *o = &s->o;
  if (o->eval) return;
  cddp_rng r = {o->seed + (uint64_t)epoch};
  if (o->shuffle == CDDP_SHUFFLE_FULL) {
    for (int64_t i = 0; i < o->n; i++) s->perm[i] = i;
    cddp_shuffle_i64(&r, s->perm, o->n);
  } else if (o->shuffle == CDDP_SHUFFLE_BLOCK) {
    for (int64_t i = 0; i < s->nblocks; i++) s->bperm[i] = i;
    cddp_shuffle_i64(&r, s->bperm, s->nblocks);
    int64_t pos = 0;
    for (int64_t b = 0; b < s->nblocks; b++) {
      if (b % o->window_blocks == 0) s->wstart[b / o->window_blocks] = pos;
      int64_t first = s->bperm[b] * o->block_rows, last = first + o->block_rows;
      pos += (last > o->n ? o->n : last) - first;
    }
  }
}

/* Loads window w of the block order into s->win. The window's row positions
 * in the epoch order start at the sum of the lengths of earlier blocks. */
static void load_window(cddp_sampler *s, int64_t w) {
  const cddp_sampler_opts *o = &s->o;
  int64_t len = 0;
  int64_t b0 = w * o->window_blocks, b1 = b0 + o->window_blocks;
  if (b1 > s->nblocks) b1 = s->nblocks;
  for (int64_t b = b0; b < b1; b++) {
    int64_t first = s->bperm[b] * o->block_rows, last = first + o->block_rows;
    if (last > o->n) last = o->n;
    for (int64_t i = first; i < last; i++) s->win[len++] = i;
  }
  cddp_rng r = {(o->seed + (uint64_t)s->epoch) ^ ((uint64_t)(w + 1) * 0xD1B54A32D192ED03ull)};
  cddp_shuffle_i64(&r, s->win, len);
  s->win_id = w;
  s->win_len = len;
}

/* Row at position g (0 <= g < N) of the epoch order in block mode. Windows
 * are full except the one holding the short last block and the last one, so
 * g / (rows per full window) is at most one off; wstart settles it. */
static int64_t block_order_at(cddp_sampler *s, int64_t g) {
  int64_t w = g / (s->o.block_rows * s->o.window_blocks);
  if (w >= s->nwin) w = s->nwin - 1;
  while (s->wstart[w] > g) w--;
  while (w + 1 < s->nwin && s->wstart[w + 1] <= g) w++;
  if (w != s->win_id) load_window(s, w);
  return s->win[g - s->wstart[w]];
}

void cddp_sampler_get(cddp_sampler *s, int64_t first, int64_t n, int64_t *out) {
  const cddp_sampler_opts *o = &s->o;
  if (s->epoch < 0) cddp_die(CDDP_EXIT_RUNTIME, "sampler: get before set_epoch");
  if (first < 0 || first + n > cddp_sampler_num_samples(s))
    cddp_die(CDDP_EXIT_RUNTIME, "sampler: samples [%lld, %lld) outside the epoch of %lld",
             (long long)first, (long long)(first + n), (long long)cddp_sampler_num_samples(s));
  if (o->eval == CDDP_EVAL_CONTIGUOUS) {
    int64_t a, c;
    shard(o, &a, &c);
    for (int64_t i = 0; i < n; i++) out[i] = a + first + i;
    return;
  }
  if (o->eval == CDDP_EVAL_STRIDED) {
    for (int64_t i = 0; i < n; i++) out[i] = o->rank + (first + i) * o->world;
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t g = o->rank + (first + i) * o->world;
    g %= o->n; /* padding repeats the head of the order cyclically */
    switch (o->shuffle) {
      case CDDP_SHUFFLE_FULL: out[i] = s->perm[g]; break;
      case CDDP_SHUFFLE_BLOCK: out[i] = block_order_at(s, g); break;
      default: out[i] = g; break;
    }
  }
}
