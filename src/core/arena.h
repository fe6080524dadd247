/* Arenas: all memory a step needs is planned before the first step.
 *
 * Usage is two passes over the same planning code: first with a measuring
 * arena (no memory; pointers it returns are NULL and must not be used), then
 * with a real arena of exactly the measured size. Allocation is a pointer bump
 * with 256-byte alignment; nothing is freed until the arena is destroyed. */
#ifndef CDDP_CORE_ARENA_H
#define CDDP_CORE_ARENA_H

#include <stddef.h>

#include "core/ops.h"

typedef struct {
  const cddp_backend *be; /* NULL for a host arena of plain malloc memory */
  char *base;             /* NULL while measuring */
  size_t cap, used;
  int measuring;
  const char *name;       /* for messages: "activations", "parameters", ... */
} cddp_arena;

void cddp_arena_measure(cddp_arena *a, const char *name);
/* Allocates cap bytes with be->malloc (or malloc when be is NULL). */
void cddp_arena_init(cddp_arena *a, const cddp_backend *be, size_t cap, const char *name);
void *cddp_arena_alloc(cddp_arena *a, size_t bytes);
void cddp_arena_destroy(cddp_arena *a);

#define CDDP_ARENA_ALIGN 256

#endif
