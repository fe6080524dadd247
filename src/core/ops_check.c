/* Completeness of a backend table, from the op list. */
#include "core/ops.h"

const char *cddp_backend_missing_op(const cddp_backend *be) {
#define CDDP_OP(ret, name, params) \
  if (!be->name) return #name;
#include "core/ops_list.h"
  return NULL;
}
