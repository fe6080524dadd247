#include "core/arena.h"

#include <stdlib.h>

#include "core/error.h"

void cddp_arena_measure(cddp_arena *a, const char *name) {
  *a = (cddp_arena){.measuring = 1, .name = name};
}

void cddp_arena_init(cddp_arena *a, const cddp_backend *be, size_t cap, const char *name) {
  *a = (cddp_arena){.be = be, .cap = cap, .name = name};
  if (cap == 0) return;
  if (be) {
    a->base = be->malloc(cap);
  } else if (posix_memalign((void **)&a->base, CDDP_ARENA_ALIGN, cap) != 0) {
    cddp_die(CDDP_EXIT_RUNTIME, "out of host memory allocating %zu bytes for arena '%s'", cap, name);
  }
}

void *cddp_arena_alloc(cddp_arena *a, size_t bytes) {
  size_t start = (a->used + CDDP_ARENA_ALIGN - 1) & ~(size_t)(CDDP_ARENA_ALIGN - 1);
  if (a->measuring) {
    a->used = start + bytes;
    return NULL;
  }
  if (start + bytes > a->cap)
    cddp_die(CDDP_EXIT_RUNTIME, "arena '%s' overflow: %zu + %zu bytes > planned %zu (planning bug)",
             a->name, start, bytes, a->cap);
  a->used = start + bytes;
  return a->base + start;
}

void cddp_arena_destroy(cddp_arena *a) {
  if (a->base) {
    if (a->be) a->be->free(a->base);
    else free(a->base);
  }
  *a = (cddp_arena){0};
}
