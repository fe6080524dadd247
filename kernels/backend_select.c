/* Run-time backend selection: one binary serves --device cpu and --device cuda. */
#include <string.h>

#include "core/error.h"
#include "core/ops.h"
#ifdef CDDP_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

int cddp_backend_has_cuda(void) {
#ifdef CDDP_HAVE_CUDA
  return 1;
#else
  return 0;
#endif
}

static const cddp_backend *complete(const cddp_backend *be) {
  const char *missing = cddp_backend_missing_op(be);
  if (missing) cddp_die(CDDP_EXIT_RUNTIME, "backend %s has no op %s", be->name, missing);
  return be;
}

const cddp_backend *cddp_backend_get(const char *name, int device_index) {
  if (!strcmp(name, "cpu")) return complete(cddp_cpu_backend());
  if (!strcmp(name, "cuda")) {
#ifdef CDDP_HAVE_CUDA
    return complete(cddp_cuda_backend(device_index));
#else
    cddp_die(CDDP_EXIT_USAGE, "--device cuda: this cddp was built without the CUDA backend");
#endif
  }
  cddp_die(CDDP_EXIT_USAGE, "--device %s: unknown device (use cpu or cuda)", name);
}

void cddp_backend_set_attention(const char *device, const char *mode) {
  int cudnn = !strcmp(mode, "cudnn");
  if (!cudnn && strcmp(mode, "auto") && strcmp(mode, "plain"))
    cddp_die(CDDP_EXIT_USAGE, "--attention %s: unknown (use auto, cudnn or plain)", mode);
  if (!cudnn) return; /* auto = plain until a GPU run has verified the cuDNN path */
  if (strcmp(device, "cuda"))
    cddp_die(CDDP_EXIT_USAGE, "--attention cudnn needs --device cuda (got --device %s)", device);
#ifdef CDDP_HAVE_CUDA
  if (cddp_cuda_set_attention(1)) return;
#endif
  cddp_die(CDDP_EXIT_USAGE, "--attention cudnn: this cddp was built without cuDNN; use plain");
}

int cddp_backend_device_for(const char *name, int local_rank) {
  if (strcmp(name, "cuda")) return 0;
  int count = cddp_cuda_device_count();
  return count > 0 ? local_rank % count : 0;
}

#ifndef CDDP_HAVE_CUDA
int cddp_cuda_device_count(void) { return 0; }
#endif
