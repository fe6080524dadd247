/* Element types and the fp32 <-> fp16/bf16 conversions (round to nearest
 * even, IEEE semantics: overflow to inf, subnormals kept, NaN stays NaN). */
#ifndef CDDP_CORE_DTYPE_H
#define CDDP_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>

/* F64 and U64 appear only in collectives of statistics (sums of losses,
 * metric counts). */
typedef enum { CDDP_F32 = 0, CDDP_F16, CDDP_BF16, CDDP_I32, CDDP_U8, CDDP_I64, CDDP_F64, CDDP_U64 } cddp_dtype;

size_t cddp_dtype_size(cddp_dtype t);
const char *cddp_dtype_name(cddp_dtype t);
/* Parses "fp32"/"f32", "fp16"/"f16", "bf16"; returns -1 when unknown. */
int cddp_dtype_parse(const char *s);

uint16_t cddp_f32_to_f16(float f);
float cddp_f16_to_f32(uint16_t h);
uint16_t cddp_f32_to_bf16(float f);
float cddp_bf16_to_f32(uint16_t h);

/* Rounds through the storage format: what a value becomes once stored as t. */
static inline float cddp_round_to(cddp_dtype t, float x) {
  if (t == CDDP_F16) return cddp_f16_to_f32(cddp_f32_to_f16(x));
  if (t == CDDP_BF16) return cddp_bf16_to_f32(cddp_f32_to_bf16(x));
  return x;
}

#endif
