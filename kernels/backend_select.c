/* Run-time backend selection: one binary serves --device cpu and --device cuda. */
#include <string.h>

#include "core/error.h"
#include "core/ops.h"

int cddp_backend_has_cuda(void) {
#ifdef CDDP_HAVE_CUDA
  return 1;
#else
  return 0;
#endif
}

const cddp_backend *cddp_backend_get(const char *name, int device_index) {
  if (!strcmp(name, "cpu")) return cddp_cpu_backend();
  if (!strcmp(name, "cuda")) {
#ifdef CDDP_HAVE_CUDA
    return cddp_cuda_backend(device_index);
#else
    cddp_die(CDDP_EXIT_USAGE, "--device cuda: this cddp was built without the CUDA backend");
#endif
  }
  cddp_die(CDDP_EXIT_USAGE, "--device %s: unknown device (use cpu or cuda)", name);
}

#ifndef CDDP_HAVE_CUDA
int cddp_cuda_device_count(void) { return 0; }
#endif
