/* Host batch -> device batch. On a host backend (CPU) the device batch
 * simply aliases the loader's host buffers. On a device backend two device
 * batches alternate: batch i+1 is copied on the copy stream while batch i is
 * computed; the compute stream waits on the copy's event, and a copy into a
 * slot waits on the event recorded when the compute stream finished with
 * that slot's previous batch. All buffers are allocated at set-up. */
#ifndef CDDP_TRAIN_DEVBATCH_H
#define CDDP_TRAIN_DEVBATCH_H

#include "core/ops.h"
#include "data/batch.h"

typedef struct {
  const cddp_backend *be;
  cddp_data_info info;
  int alias, cap, cur, used_slots;
  cddp_batch dev[2];
  cddp_event *copied[2], *consumed[2];
  int has_copy[2], has_consume[2];
} cddp_devbatch;

void cddp_devbatch_init(cddp_devbatch *d, const cddp_backend *be, const cddp_data_info *info,
                        int cap);
void cddp_devbatch_free(cddp_devbatch *d);
/* Call before cddp_loader_next: the loader is about to take back the host
 * batch from two calls ago, so its copy must have finished (no-op on CPU). */
void cddp_devbatch_before_next(cddp_devbatch *d);
/* Issues the copy of host batch h and returns the device batch the compute
 * stream may use (it waits on the copy). */
const cddp_batch *cddp_devbatch_put(cddp_devbatch *d, const cddp_batch *h);
/* The compute stream has issued all work reading the current device batch. */
void cddp_devbatch_consumed(cddp_devbatch *d);

#endif
