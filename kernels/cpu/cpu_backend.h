/* Entry points of the CPU backend beyond the op table of ops.h, for the
 * trainer's start-up line and the benchmarks. */
#ifndef CDDP_KERNELS_CPU_BACKEND_H
#define CDDP_KERNELS_CPU_BACKEND_H

/* The OpenBLAS kernel family in use ("Cooperlake", "Haswell", ...): OpenBLAS's
 * own choice for this CPU unless OPENBLAS_CORETYPE overrides it. */
const char *cddp_cpu_blas_kernels(void);

#endif
