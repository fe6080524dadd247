/* cuda-emu: cuBLAS (v2 API); see cublas_api.h. */
#ifndef CUEMU_CUBLAS_V2_H
#define CUEMU_CUBLAS_V2_H
#include "cublas_api.h"
#endif
