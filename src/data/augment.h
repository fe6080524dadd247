/* Training-time image augmentation, applied by the loader to uint8 HWC
 * images as torchvision's RandomCrop(size, padding=pad) followed by
 * RandomHorizontalFlip(): the image is shifted by (dy, dx) drawn uniformly
 * from [-pad, pad] with zeros filling what enters, then mirrored with
 * probability 1/2.
 *
 * The draws of a sample depend only on (seed, epoch, dataset row), never on
 * the rank, world size, batch or loader threads: N ranks see exactly the
 * augmented samples one rank sees, and a resumed run repeats them. */
#ifndef CDDP_DATA_AUGMENT_H
#define CDDP_DATA_AUGMENT_H

#include <stdint.h>

typedef struct {
  int crop_pad; /* 0: no random crop */
  int hflip;    /* 1: random horizontal flip */
} cddp_augment;

static inline int cddp_augment_active(const cddp_augment *a) {
  return a->crop_pad > 0 || a->hflip;
}

/* Augments n images [n, H, W, C] in place; rows[i] is image i's dataset row.
 * tmp: H*W*C bytes of scratch. */
void cddp_augment_images(const cddp_augment *a, uint8_t *images, int n, int H, int W, int C,
                         const int64_t *rows, uint64_t seed, int64_t epoch, uint8_t *tmp);

#endif
