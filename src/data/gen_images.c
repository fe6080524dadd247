/* cddp gen images: class-dependent patterns plus noise.
 *
 * Class k has a template fixed by the seed: three Gaussian blobs (random
 * centres, radii 0.08-0.2 of the side, signs +-) plus a stripe pattern with a
 * class-specific orientation and frequency, scaled to [0, 255]. An image is
 * its class template shifted by up to 2 pixels in each direction, plus
 * Gaussian noise of std noise_std = 40, clipped to [0, 255]; labels are
 * uniform. Every channel gets the same template with its own noise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/gen.h"
#include "data/h5util.h"
#include "data/prng.h"
#include "data/writer.h"

#define NOISE_STD 40.0

/* Writes `rows` images of stream `val` (0 train, 1 validation) under a
 * temporary name; returns the uncommitted writer. */
static cddp_writer *write_split(const char *out, const void *planted, int val, int64_t rows, const cddp_gen_opts *o,
                                const cddp_data_info *info) {
  const float *tmpl = planted;
  int K = o->num_classes, Hh = o->height, Ww = o->width, Cc = o->channels;
  const double noise = NOISE_STD;
  size_t hw = (size_t)Hh * Ww, img = hw * Cc;
  cddp_writer *w = cddp_writer_create(out, CDDP_SCHEMA_IMAGE, info);
  enum { BLK = 1024 };
  uint8_t *im = cddp_xmalloc(img * BLK, "images");
  int32_t *lab = cddp_xmalloc(sizeof(int32_t) * BLK, "labels");
  for (int64_t i0 = 0; i0 < rows; i0 += BLK) {
    int n = (int)(rows - i0 < BLK ? rows - i0 : BLK);
    for (int k = 0; k < n; k++) {
      cddp_rng rr = {cddp_gen_row_state(o->seed, val, i0 + k)};
      int c = (int)cddp_rng_below(&rr, (uint64_t)K);
      int sx = (int)cddp_rng_below(&rr, 5) - 2, sy = (int)cddp_rng_below(&rr, 5) - 2;
      lab[k] = c;
      const float *t = tmpl + (size_t)c * hw;
      uint8_t *dst = im + (size_t)k * img;
      for (int y = 0; y < Hh; y++)
        for (int x = 0; x < Ww; x++) {
          int yy = y - sy, xx = x - sx;
          float base = yy >= 0 && yy < Hh && xx >= 0 && xx < Ww ? t[yy * Ww + xx] : 0.f;
          for (int ch = 0; ch < Cc; ch++) {
            double v = base + noise * cddp_rng_normal(&rr);
            dst[((size_t)y * Ww + x) * Cc + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
          }
        }
    }
    cddp_writer_append(w, CDDP_IMG_IMAGES, im, n);
    cddp_writer_append(w, CDDP_IMG_LABELS, lab, n);
  }
  int64_t seed = (int64_t)o->seed;
  cddp_h5_write_attr_f64(w->tmp_path, w->file, "noise_std", noise);
  cddp_h5_write_attr_i64(w->tmp_path, w->file, "gen_seed", &seed, 1);
  cddp_h5_write_attr_str(w->tmp_path, w->file, "generator", "cddp gen images");
  cddp_h5_write_attr_str(w->tmp_path, w->file, "split", val ? "val" : "train");
  if (!o->quiet)
    cddp_log_info("%s: %lld images %dx%dx%d, %d classes", out, (long long)rows, Hh, Ww, Cc, K);
  free(im);
  free(lab);
  return w;
}

void cddp_gen_images(const char *out, const cddp_gen_opts *o) {
  int K = o->num_classes, Hh = o->height, Ww = o->width, Cc = o->channels;
  if (o->rows <= 0 || K < 2 || Hh < 4 || Ww < 4 || Cc < 1 || K > 1000000)
    cddp_die(CDDP_EXIT_USAGE, "gen images: need --rows > 0, --num-classes >= 2, --height/--width >= 4, --channels >= 1");
  if (o->val_rows < 0) cddp_die(CDDP_EXIT_USAGE, "gen images: --val-rows must not be negative");
  char valpath[4096];
  if (o->val_rows > 0) cddp_gen_val_path(out, o, valpath, sizeof valpath);
  size_t hw = (size_t)Hh * Ww;
  float *tmpl = cddp_xmalloc(sizeof(float) * hw * (size_t)K, "templates");
  cddp_rng r = {cddp_mix64(o->seed ^ 0x1A6Eull)};
  for (int k = 0; k < K; k++) {
    double bx[3], by[3], br[3], bs[3];
    for (int b = 0; b < 3; b++) {
      bx[b] = cddp_rng_uniform(&r);
      by[b] = cddp_rng_uniform(&r);
      br[b] = 0.08 + 0.12 * cddp_rng_uniform(&r);
      bs[b] = cddp_rng_uniform(&r) < 0.7 ? 1 : -1;
    }
    double ang = 3.14159265 * cddp_rng_uniform(&r), fr = 2 + 4 * cddp_rng_uniform(&r);
    float *t = tmpl + (size_t)k * hw;
    float lo = 1e30f, hi = -1e30f;
    for (int y = 0; y < Hh; y++)
      for (int x = 0; x < Ww; x++) {
        double fx = (x + 0.5) / Ww, fy = (y + 0.5) / Hh, v = 0;
        for (int b = 0; b < 3; b++) {
          double dx = fx - bx[b], dy = fy - by[b];
          v += bs[b] * exp(-(dx * dx + dy * dy) / (2 * br[b] * br[b]));
        }
        v += 0.4 * sin(6.2831853 * fr * (fx * cos(ang) + fy * sin(ang)));
        t[y * Ww + x] = (float)v;
        if (v < lo) lo = (float)v;
        if (v > hi) hi = (float)v;
      }
    for (size_t i = 0; i < hw; i++) t[i] = 255.f * (t[i] - lo) / (hi - lo + 1e-6f);
  }
  cddp_data_info info = {.schema = CDDP_SCHEMA_IMAGE, .rows = o->rows, .height = Hh, .width = Ww,
                         .channels = Cc, .num_classes = K};
  cddp_gen_write_splits(out, valpath, tmpl, write_split, o, &info);
  free(tmpl);
}
