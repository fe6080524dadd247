#include "data/augment.h"

#include <string.h>

#include "data/prng.h"

/* One generator per (seed, epoch, row); the constants only separate the
 * streams from the sampler's (which mixes seed and epoch alone). */
static cddp_rng sample_rng(uint64_t seed, int64_t epoch, int64_t row) {
  uint64_t s = cddp_mix64(seed ^ 0xA5A5A5A55A5A5A5Aull);
  s = cddp_mix64(s ^ ((uint64_t)epoch * 0x9E3779B97F4A7C15ull));
  return (cddp_rng){cddp_mix64(s ^ (uint64_t)row)};
}

void cddp_augment_images(const cddp_augment *a, uint8_t *images, int n, int H, int W, int C,
                         const int64_t *rows, uint64_t seed, int64_t epoch, uint8_t *tmp) {
  if (!cddp_augment_active(a)) return;
  size_t px = (size_t)C, row_bytes = (size_t)W * px, img_bytes = (size_t)H * row_bytes;
  int p = a->crop_pad;
  for (int i = 0; i < n; i++) {
    cddp_rng r = sample_rng(seed, epoch, rows[i]);
    /* draws in a fixed order, each always made, so that the stream does not
     * depend on which transforms are on */
    int dy = (int)cddp_rng_below(&r, (uint64_t)(2 * p + 1)) - p;
    int dx = (int)cddp_rng_below(&r, (uint64_t)(2 * p + 1)) - p;
    int flip = a->hflip && (cddp_rng_next(&r) >> 63);
    if (!dy && !dx && !flip) continue;
    uint8_t *img = images + (size_t)i * img_bytes;
    memcpy(tmp, img, img_bytes);
    /* out(y, x) = in(y + dy, x') with x' = x + dx, mirrored after the shift */
    for (int y = 0; y < H; y++) {
      uint8_t *o = img + (size_t)y * row_bytes;
      int sy = y + dy;
      if (sy < 0 || sy >= H) {
        memset(o, 0, row_bytes);
        continue;
      }
      const uint8_t *s = tmp + (size_t)sy * row_bytes;
      for (int x = 0; x < W; x++) {
        int sx = (flip ? W - 1 - x : x) + dx;
        if (sx < 0 || sx >= W)
          memset(o + (size_t)x * px, 0, px);
        else
          memcpy(o + (size_t)x * px, s + (size_t)sx * px, px);
      }
    }
  }
}
