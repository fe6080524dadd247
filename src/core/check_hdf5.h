/* Checked HDF5 calls. HDF5 returns a negative id/herr_t on failure; its own
 * error stack printing is switched off by cddp (H5Eset_auto) so that the one
 * line we print is the message users see. `what` says what was being done,
 * typically the file name. Data errors use CDDP_EXIT_DATA, others RUNTIME. */
#ifndef CDDP_CORE_CHECK_HDF5_H
#define CDDP_CORE_CHECK_HDF5_H
#include <hdf5.h>
#include "core/error.h"

#define h5Check(call, code, what)                                                 \
  ({                                                                              \
    __typeof__(call) _r = (call);                                                 \
    if (_r < 0) cddp_die((code), "%s: HDF5 call %s failed", (what), #call);       \
    _r;                                                                           \
  })
#endif
