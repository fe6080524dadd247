#include "train/devbatch.h"

#include <string.h>

#include "core/error.h"
#include "core/trace.h"

typedef struct {
  size_t off;   /* offsetof the pointer in cddp_batch */
  size_t row;   /* bytes per row */
} field;

/* The arrays of a schema and their row sizes. */
static int fields_of(const cddp_data_info *info, field *f) {
  int n = 0;
  switch (info->schema) {
    case CDDP_SCHEMA_CTR:
      f[n++] = (field){offsetof(cddp_batch, dense), CDDP_CTR_DENSE * sizeof(float)};
      f[n++] = (field){offsetof(cddp_batch, sparse), CDDP_CTR_SPARSE * sizeof(int32_t)};
      f[n++] = (field){offsetof(cddp_batch, label), sizeof(float)};
      break;
    case CDDP_SCHEMA_TWOTOWER:
      f[n++] = (field){offsetof(cddp_batch, user_id), sizeof(int32_t)};
      f[n++] = (field){offsetof(cddp_batch, user_hist), (size_t)info->hist_len * sizeof(int32_t)};
      f[n++] = (field){offsetof(cddp_batch, item_id), sizeof(int32_t)};
      f[n++] = (field){offsetof(cddp_batch, item_cat), sizeof(int32_t)};
      break;
    case CDDP_SCHEMA_IMAGE:
      f[n++] = (field){offsetof(cddp_batch, images),
                       (size_t)info->height * info->width * info->channels};
      f[n++] = (field){offsetof(cddp_batch, labels), sizeof(int32_t)};
      break;
  }
  return n;
}

#define SLOT(b, f) (*(void **)((char *)(b) + (f).off))

void cddp_devbatch_init(cddp_devbatch *d, const cddp_backend *be, const cddp_data_info *info,
                        int cap) {
  *d = (cddp_devbatch){.be = be, .info = *info, .alias = !be->is_device, .cap = cap, .cur = 1};
  if (d->alias) return;
  field f[8];
  int nf = fields_of(info, f);
  for (int s = 0; s < 2; s++) {
    d->dev[s].cap = cap;
    for (int i = 0; i < nf; i++) SLOT(&d->dev[s], f[i]) = be->malloc(f[i].row * cap);
    d->copied[s] = be->event_create();
    d->consumed[s] = be->event_create();
  }
}

void cddp_devbatch_free(cddp_devbatch *d) {
  if (!d->be || d->alias) return;
  const cddp_backend *be = d->be;
  field f[8];
  int nf = fields_of(&d->info, f);
  for (int s = 0; s < 2; s++) {
    for (int i = 0; i < nf; i++) be->free(SLOT(&d->dev[s], f[i]));
    be->event_destroy(d->copied[s]);
    be->event_destroy(d->consumed[s]);
  }
  *d = (cddp_devbatch){0};
}

void cddp_devbatch_before_next(cddp_devbatch *d) {
  if (d->alias) return;
  int prev = 1 - d->cur; /* slot of the put before the last one */
  if (d->has_copy[prev]) d->be->event_sync(d->copied[prev]);
}

const cddp_batch *cddp_devbatch_put(cddp_devbatch *d, const cddp_batch *h) {
  if (d->alias) {
    d->dev[0] = *h;
    return &d->dev[0];
  }
  const cddp_backend *be = d->be;
  int s = d->cur = 1 - d->cur;
  if (h->n > d->cap) cddp_die(CDDP_EXIT_RUNTIME, "batch of %d rows exceeds capacity %d", h->n, d->cap);
  /* the slot's previous batch must be fully consumed before it is overwritten */
  if (d->has_consume[s]) be->stream_wait_event(be->copy, d->consumed[s]);
  field f[8];
  int nf = fields_of(&d->info, f);
  long long bytes = 0;
  for (int i = 0; i < nf; i++) bytes += (long long)(f[i].row * h->n);
  int tr = cddp_trace_dev_begin(be->copy);
  for (int i = 0; i < nf; i++)
    be->memcpy_h2d(SLOT(&d->dev[s], f[i]), SLOT(h, f[i]), f[i].row * h->n, be->copy);
  cddp_trace_dev_end(tr, be->copy, CDDP_TRACK_GPU_COPY, "data", "h2d copy", -1, bytes);
  be->event_record(d->copied[s], be->copy);
  d->has_copy[s] = 1;
  be->stream_wait_event(be->compute, d->copied[s]);
  d->dev[s].n = h->n;
  d->dev[s].index = NULL;
  return &d->dev[s];
}

void cddp_devbatch_consumed(cddp_devbatch *d) {
  if (d->alias) return;
  d->be->event_record(d->consumed[d->cur], d->be->compute);
  d->has_consume[d->cur] = 1;
}
