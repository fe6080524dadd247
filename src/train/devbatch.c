#include "train/devbatch.h"

#include <string.h>

#include "core/error.h"
#include "core/trace.h"

void cddp_devbatch_init(cddp_devbatch *d, const cddp_backend *be, const cddp_data_info *info,
                        int cap) {
  *d = (cddp_devbatch){.be = be, .info = *info, .alias = !be->is_device, .cap = cap, .cur = 1};
  if (d->alias) return;
  cddp_batch_field f[CDDP_BATCH_MAX_FIELDS];
  int nf = cddp_batch_fields(info, f);
  for (int s = 0; s < 2; s++) {
    d->dev[s].cap = cap;
    for (int i = 0; i < nf; i++) CDDP_BATCH_ARRAY(&d->dev[s], f[i]) = be->malloc(f[i].row_bytes * cap);
    d->copied[s] = be->event_create();
    d->consumed[s] = be->event_create();
  }
}

void cddp_devbatch_free(cddp_devbatch *d) {
  if (!d->be || d->alias) return;
  const cddp_backend *be = d->be;
  cddp_batch_field f[CDDP_BATCH_MAX_FIELDS];
  int nf = cddp_batch_fields(&d->info, f);
  for (int s = 0; s < 2; s++) {
    for (int i = 0; i < nf; i++) be->free(CDDP_BATCH_ARRAY(&d->dev[s], f[i]));
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
  cddp_batch_field f[CDDP_BATCH_MAX_FIELDS];
  int nf = cddp_batch_fields(&d->info, f);
  long long bytes = 0;
  for (int i = 0; i < nf; i++) bytes += (long long)(f[i].row_bytes * h->n);
  int tr = cddp_trace_dev_begin(be->copy);
  for (int i = 0; i < nf; i++)
    be->memcpy_h2d(CDDP_BATCH_ARRAY(&d->dev[s], f[i]), CDDP_BATCH_ARRAY(h, f[i]), f[i].row_bytes * h->n, be->copy);
  cddp_trace_dev_end(tr, be->copy, CDDP_TRACK_GPU_COPY, "data", "h2d copy", -1, bytes);
  be->event_record(d->copied[s], be->copy);
  d->has_copy[s] = 1;
  be->stream_wait_event(be->compute, d->copied[s]);
  d->dev[s].n = h->n;
  d->dev[s].index = NULL;
  d->dev[s].host = h;
  return &d->dev[s];
}

void cddp_devbatch_consumed(cddp_devbatch *d) {
  if (d->alias) return;
  d->be->event_record(d->consumed[d->cur], d->be->compute);
  d->has_consume[d->cur] = 1;
}
