/* The table of schema descriptors (schema_list.h). Only the table lives
 * here, so that a test can build its own copy with CDDP_TEST_SCHEMAS. */
#include "data/schema.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

static const cddp_schema_desc *const table[] = {
#define CDDP_SCHEMA(E, name, sym) [CDDP_SCHEMA_##E] = &cddp_schema_##sym,
#include "data/schema_list.h"
};

const cddp_schema_desc *cddp_schema_get(cddp_schema s) {
  if ((int)s <= 0 || (int)s >= CDDP_SCHEMA_END)
    cddp_die(CDDP_EXIT_RUNTIME, "internal error: no dataset schema %d", (int)s);
  return table[s];
}

const cddp_schema_desc *cddp_schema_find(const char *name) {
  for (int s = 1; s < CDDP_SCHEMA_END; s++)
    if (!strcmp(table[s]->name, name)) return table[s];
  return NULL;
}

void cddp_schema_list_names(char *out, size_t cap) {
  size_t k = 0;
  out[0] = 0;
  for (int s = 1; s < CDDP_SCHEMA_END && k < cap; s++)
    k += (size_t)snprintf(out + k, cap - k, "%s%s", s == 1 ? "" : s + 1 == CDDP_SCHEMA_END ? " or " : ", ",
                          table[s]->name);
}

/* Copies line `at` of text (up to its newline) into out. */
static void copy_line(const char *at, char *out, size_t n) {
  size_t len = strcspn(at, "\n");
  snprintf(out, n, "%.*s", (int)(len < n - 1 ? len : n - 1), at);
}

int cddp_schema_shape_diff(const cddp_data_info *a, const cddp_data_info *b, char *la, char *lb,
                           size_t n) {
  char sa[CDDP_SHAPE_TEXT_MAX], sb[CDDP_SHAPE_TEXT_MAX];
  const cddp_schema_desc *d = cddp_schema_get(a->schema);
  d->shape(a, sa, sizeof sa);
  d->shape(b, sb, sizeof sb);
  const char *pa = sa, *pb = sb; /* start of the current line in each */
  for (size_t k = 0; sa[k] == sb[k]; k++) {
    if (!sa[k]) return 0;
    if (sa[k] == '\n') pa = sa + k + 1, pb = sb + k + 1;
  }
  copy_line(pa, la, n);
  copy_line(pb, lb, n);
  return 1;
}

int cddp_batch_fields(const cddp_data_info *info, cddp_batch_field *f) {
  return cddp_schema_get(info->schema)->batch_fields(info, f);
}
