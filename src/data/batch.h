/* What a dataset is and what a batch looks like: the contract between
 * src/data (which fills host batches), the trainer (which copies them to the
 * device) and src/model (which reads device batches). */
#ifndef CDDP_DATA_BATCH_H
#define CDDP_DATA_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define CDDP_CTR_DENSE 13
#define CDDP_CTR_SPARSE 26

/* Schemas are numbered from 1 in the order of schema_list.h (0: none);
 * CDDP_SCHEMA_END is one past the last. */
enum {
  CDDP_SCHEMA_INDEX_NONE_,
#define CDDP_SCHEMA(E, name, sym) CDDP_SCHEMA_INDEX_##E,
#include "data/schema_list.h"
  CDDP_SCHEMA_END
};
typedef enum {
#define CDDP_SCHEMA(E, name, sym) CDDP_SCHEMA_##E = CDDP_SCHEMA_INDEX_##E,
#include "data/schema_list.h"
} cddp_schema;

/* The name a file's root attribute `schema` carries: "cddp.ctr.v1" ... */
static inline const char *cddp_schema_name(cddp_schema s) {
  switch (s) {
#define CDDP_SCHEMA(E, name, sym) \
  case CDDP_SCHEMA_##E: return name;
#include "data/schema_list.h"
    default: break;
  }
  return "?";
}

/* Shapes and attributes read from a file at open (DESIGN §6). */
typedef struct {
  cddp_schema schema;
  int64_t rows;
  /* cddp.ctr.v1 */
  int64_t table_sizes[CDDP_CTR_SPARSE];
  /* cddp.twotower.v1 */
  int hist_len;
  int64_t num_users, num_items, num_cats;
  /* cddp.image.v1 */
  int height, width, channels, num_classes;
} cddp_data_info;

/* One batch. Only the arrays of the file's schema are set (others NULL).
 * cap rows are allocated; the first n are valid (n < cap only for the last
 * batch of an evaluation pass). Arrays are contiguous, row-major. */
typedef struct cddp_batch {
  int n, cap;
  /* ctr */
  float *dense;       /* [cap, 13] */
  int32_t *sparse;    /* [cap, 26] */
  float *label;       /* [cap] 0.0 / 1.0 */
  /* twotower */
  int32_t *user_id;   /* [cap] */
  int32_t *user_hist; /* [cap, hist_len], -1 padded */
  int32_t *item_id;   /* [cap] */
  int32_t *item_cat;  /* [cap] */
  /* image */
  uint8_t *images;    /* [cap, H, W, C] */
  int32_t *labels;    /* [cap] */
  /* global row index of every sample (host batches only; may be NULL on device) */
  int64_t *index;     /* [cap] */
  /* device batches: the host batch they were copied from (valid during the
   * step; sharded embeddings bucket ids on the host), NULL if none */
  const struct cddp_batch *host;
} cddp_batch;

/* Layout of a batch: one cddp_batch array per field, in this order, each
 * `row_bytes` per row (index, host-only, not included). The loader carves its
 * host batches and the trainer its device copies from this one list, which
 * the schema's descriptor gives (schema.h). */
typedef struct {
  size_t off;       /* offsetof the array's pointer in cddp_batch */
  size_t row_bytes; /* bytes per row */
} cddp_batch_field;
enum { CDDP_BATCH_MAX_FIELDS = 8 };
/* Fills f (CDDP_BATCH_MAX_FIELDS entries) for info's schema and shapes;
 * returns the number of fields. */
int cddp_batch_fields(const cddp_data_info *info, cddp_batch_field *f);
/* The array pointer of field f in batch b (an lvalue). */
#define CDDP_BATCH_ARRAY(b, f) (*(void **)((char *)(b) + (f).off))

#endif
