/* cddp convert idx: MNIST-style IDX images + labels -> cddp.image.v1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "core/log.h"
#include "data/convert.h"
#include "data/dataset.h"
#include "data/writer.h"

typedef struct {
  const char *path;
  gzFile f;
  int ndims;
  uint32_t dims[4];
} idx_file;

static void idx_read(idx_file *x, void *dst, size_t n, const char *what) {
  size_t got = 0;
  while (got < n) {
    unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int r = gzread(x->f, (char *)dst + got, chunk);
    int err = 0;
    const char *msg = gzerror(x->f, &err);
    if (r < 0 || (err != Z_OK && err != Z_STREAM_END)) {
      size_t pl = strlen(x->path); /* zlib prefixes its message with the path */
      if (msg && !strncmp(msg, x->path, pl) && !strncmp(msg + pl, ": ", 2)) msg += pl + 2;
      cddp_die(CDDP_EXIT_DATA, "%s: unreadable gzip input (%s)", x->path, msg && *msg ? msg : "read error");
    }
    if (r == 0)
      cddp_die(CDDP_EXIT_DATA, "%s: truncated IDX file: ends inside the %s (%zu of %zu bytes)", x->path, what,
               got, n);
    got += (size_t)r;
  }
}

static void idx_open(idx_file *x, const char *path, int min_dims, int max_dims) {
  x->path = path;
  x->f = gzopen(path, "rb");
  if (!x->f) cddp_die(CDDP_EXIT_DATA, "%s: cannot open: %s", path, strerror(errno));
  uint8_t m[4];
  idx_read(x, m, 4, "header");
  if (m[0] || m[1] || m[2] != 0x08)
    cddp_die(CDDP_EXIT_DATA, "%s: not an unsigned-byte IDX file (magic %02x%02x%02x%02x)", path, m[0], m[1],
             m[2], m[3]);
  x->ndims = m[3];
  if (x->ndims < min_dims || x->ndims > max_dims)
    cddp_die(CDDP_EXIT_DATA, "%s: IDX file has %d dimensions, expected %d to %d", path, x->ndims, min_dims,
             max_dims);
  for (int i = 0; i < x->ndims; i++) {
    uint8_t b[4];
    idx_read(x, b, 4, "header");
    x->dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (x->dims[i] == 0) cddp_die(CDDP_EXIT_DATA, "%s: IDX dimension %d is 0", path, i);
  }
}

void cddp_convert_idx(const char *images, const char *labels, const char *out, int num_classes) {
  idx_file im, lb;
  idx_open(&im, images, 3, 4);
  idx_open(&lb, labels, 1, 1);
  if (im.dims[0] != lb.dims[0])
    cddp_die(CDDP_EXIT_DATA, "%s: %u labels but %s has %u images", labels, lb.dims[0], images, im.dims[0]);
  /* Bounds before any arithmetic on them: int fields, and an image that fits
   * in memory. */
  uint64_t pixels = 1;
  for (int i = 1; i < im.ndims; i++) {
    if (im.dims[i] > 65535)
      cddp_die(CDDP_EXIT_DATA, "%s: IDX dimension %d is %u, more than 65535", images, i, im.dims[i]);
    pixels *= im.dims[i];
  }
  if (pixels > ((uint64_t)1 << 26))
    cddp_die(CDDP_EXIT_DATA, "%s: images of %llu values each (more than 2^26)", images,
             (unsigned long long)pixels);
  if (im.dims[0] > INT32_MAX)
    cddp_die(CDDP_EXIT_DATA, "%s: %u images (more than 2^31 - 1)", images, im.dims[0]);
  cddp_data_info info = {.schema = CDDP_SCHEMA_IMAGE,
                         .rows = im.dims[0],
                         .height = (int)im.dims[1],
                         .width = (int)im.dims[2],
                         .channels = im.ndims == 4 ? (int)im.dims[3] : 1};
  /* Labels first (small): num_classes and range checks before any image is written. */
  uint8_t *l8 = cddp_xmalloc(lb.dims[0], "labels");
  idx_read(&lb, l8, lb.dims[0], "labels");
  int maxl = 0;
  for (uint32_t i = 0; i < lb.dims[0]; i++)
    if (l8[i] > maxl) maxl = l8[i];
  if (num_classes <= 0) num_classes = maxl + 1;
  if (maxl >= num_classes)
    cddp_die(CDDP_EXIT_DATA, "%s: label %d outside [0, %d) (--num-classes)", labels, maxl, num_classes);
  info.num_classes = num_classes;
  int32_t *l32 = cddp_xmalloc(sizeof(int32_t) * lb.dims[0], "labels");
  for (uint32_t i = 0; i < lb.dims[0]; i++) l32[i] = l8[i];

  cddp_writer *w = cddp_writer_create(out, CDDP_SCHEMA_IMAGE, &info);
  size_t img = (size_t)info.height * info.width * info.channels;
  /* blocks of up to 4096 images and 64 MB */
  uint32_t BLK = img >= (64u << 20) ? 1 : (uint32_t)((64u << 20) / img);
  if (BLK > 4096) BLK = 4096;
  uint8_t *buf = cddp_xmalloc(img * BLK, "images");
  for (uint32_t done = 0; done < im.dims[0];) {
    uint32_t n = im.dims[0] - done < BLK ? im.dims[0] - done : BLK;
    idx_read(&im, buf, img * n, "image data");
    cddp_writer_append(w, CDDP_IMG_IMAGES, buf, n);
    done += n;
  }
  cddp_writer_append(w, CDDP_IMG_LABELS, l32, lb.dims[0]);
  cddp_writer_commit(w, &info);
  gzclose(im.f);
  gzclose(lb.f);
  free(buf);
  free(l8);
  free(l32);
  cddp_log_info("%s: %u images %dx%dx%d, %d classes", out, im.dims[0], info.height, info.width, info.channels,
                num_classes);
}
