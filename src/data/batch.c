/* The batch layout of every schema (batch.h). */
#include <stddef.h>

#include "data/batch.h"

int cddp_batch_fields(const cddp_data_info *info, cddp_batch_field *f) {
  int n = 0;
  switch (info->schema) {
    case CDDP_SCHEMA_CTR:
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, dense), CDDP_CTR_DENSE * sizeof(float)};
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, sparse), CDDP_CTR_SPARSE * sizeof(int32_t)};
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, label), sizeof(float)};
      break;
    case CDDP_SCHEMA_TWOTOWER:
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, user_id), sizeof(int32_t)};
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, user_hist),
                                  (size_t)info->hist_len * sizeof(int32_t)};
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, item_id), sizeof(int32_t)};
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, item_cat), sizeof(int32_t)};
      break;
    case CDDP_SCHEMA_IMAGE:
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, images),
                                  (size_t)info->height * info->width * info->channels};
      f[n++] = (cddp_batch_field){offsetof(cddp_batch, labels), sizeof(int32_t)};
      break;
  }
  return n;
}
