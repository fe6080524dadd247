/* Which OpenBLAS kernels the CPU backend runs on. Debian's OpenBLAS is built
 * with DYNAMIC_ARCH: it picks a kernel family for the CPU when it loads,
 * unless OPENBLAS_CORETYPE names one. That choice moves sgemm's speed by
 * 1.6x on an AVX-512 CPU (Haswell vs Cooperlake kernels, bench/RESULTS.md),
 * so the trainer and the benchmarks print it. */
#include "kernels/cpu/cpu_backend.h"

extern char *openblas_get_corename(void);

const char *cddp_cpu_blas_kernels(void) { return openblas_get_corename(); }
