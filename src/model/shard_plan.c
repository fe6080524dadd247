#include "model/shard_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

static int parse_kind(const char *s, size_t n, cddp_shard_kind *k) {
  if (n == 10 && !strncmp(s, "replicated", n)) *k = CDDP_SHARD_REPLICATED;
  else if (n == 5 && !strncmp(s, "table", n)) *k = CDDP_SHARD_TABLE;
  else if (n == 3 && !strncmp(s, "row", n)) *k = CDDP_SHARD_ROW;
  else return 0;
  return 1;
}

int cddp_shard_find(const cddp_shard_plan *p, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < p->n; i++) {
    const char *t = p->t[i].name;
    if (!strcmp(t, name)) return i;
    if (strlen(t) == n + 7 && !strncmp(t, name, n) && !strcmp(t + n, ".weight")) return i;
  }
  return -1;
}

int cddp_shard_plan_any(const cddp_shard_plan *p) {
  for (int i = 0; i < p->n; i++)
    if (p->t[i].kind != CDDP_SHARD_REPLICATED) return 1;
  return 0;
}

void cddp_shard_local(const cddp_shard_plan *p, int t, int r, int64_t *first, int64_t *count) {
  const cddp_shard_table *x = &p->t[t];
  *first = 0;
  *count = x->rows;
  if (x->kind == CDDP_SHARD_TABLE) {
    *count = x->owner == r ? x->rows : 0;
  } else if (x->kind == CDDP_SHARD_ROW) {
    *first = cddp_shard_row_lo(x->rows, p->world, r);
    *count = cddp_shard_row_lo(x->rows, p->world, r + 1) - *first;
  }
}

/* auto: greedy, largest table first, onto the least loaded rank */
static void plan_auto(cddp_shard_plan *p, int64_t dense_threshold) {
  int order[CDDP_SHARD_MAX_TABLES], m = 0;
  double total = 0, *load = cddp_xcalloc(sizeof(double) * (size_t)p->world, "sharding plan");
  int *ntab = cddp_xcalloc(sizeof(int) * (size_t)p->world, "sharding plan");
  for (int i = 0; i < p->n; i++) {
    if (p->t[i].rows <= dense_threshold) continue;
    order[m++] = i;
    total += (double)p->t[i].rows * p->t[i].dim;
  }
  for (int a = 1; a < m; a++) /* by size, descending; stable on ties */
    for (int b = a; b > 0 && (double)p->t[order[b]].rows * p->t[order[b]].dim >
                                 (double)p->t[order[b - 1]].rows * p->t[order[b - 1]].dim; b--) {
      int x = order[b];
      order[b] = order[b - 1];
      order[b - 1] = x;
    }
  for (int k = 0; k < m; k++) {
    cddp_shard_table *t = &p->t[order[k]];
    double bytes = (double)t->rows * t->dim;
    int best = 0;
    for (int r = 1; r < p->world; r++)
      if (load[r] < load[best] || (load[r] == load[best] && ntab[r] < ntab[best])) best = r;
    if (p->world > 1 && load[best] + bytes > 1.1 * total / p->world && t->rows >= p->world) {
      t->kind = CDDP_SHARD_ROW; /* whole, it would overload even the emptiest rank */
      for (int r = 0; r < p->world; r++) load[r] += bytes / p->world, ntab[r]++;
      continue;
    }
    t->kind = CDDP_SHARD_TABLE;
    t->owner = best;
    load[best] += bytes;
    ntab[best]++;
  }
  free(load);
  free(ntab);
}

void cddp_shard_plan_make(cddp_shard_plan *p, int world, int rank, int n, const char *const *names,
                          const int64_t *rows, const int *dims, const char *mode, const char *spec,
                          int64_t dense_threshold) {
  if (n > CDDP_SHARD_MAX_TABLES) cddp_die(CDDP_EXIT_USAGE, "sharding: more than %d tables", n);
  *p = (cddp_shard_plan){.world = world, .rank = rank, .n = n};
  for (int i = 0; i < n; i++) {
    snprintf(p->t[i].name, sizeof p->t[i].name, "%s", names[i]);
    p->t[i].rows = rows[i];
    p->t[i].dim = dims[i];
  }
  if (!mode) mode = "replicated";
  if (!strcmp(mode, "auto")) {
    plan_auto(p, dense_threshold);
  } else {
    cddp_shard_kind k;
    if (!parse_kind(mode, strlen(mode), &k))
      cddp_die(CDDP_EXIT_USAGE, "--embedding-sharding %s: unknown (replicated, table, row or auto)",
               mode);
    for (int i = 0; i < n; i++) {
      p->t[i].kind = k;
      p->t[i].owner = i % world; /* table-wise: round robin */
    }
  }
  /* per-table overrides: NAME=KIND[:RANK] separated by commas or spaces */
  for (const char *s = spec ? spec : ""; *s;) {
    while (*s == ',' || *s == ' ') s++;
    if (!*s) break;
    const char *end = s + strcspn(s, ", ");
    const char *eq = memchr(s, '=', (size_t)(end - s));
    char name[128];
    if (!eq || eq == s || (size_t)(eq - s) >= sizeof name)
      cddp_die(CDDP_EXIT_USAGE, "--embedding-plan: '%.*s' is not TABLE=KIND[:RANK]",
               (int)(end - s), s);
    snprintf(name, sizeof name, "%.*s", (int)(eq - s), s);
    int i = cddp_shard_find(p, name);
    if (i < 0) cddp_die(CDDP_EXIT_USAGE, "--embedding-plan: no embedding table named %s", name);
    const char *colon = memchr(eq, ':', (size_t)(end - eq));
    const char *kend = colon ? colon : end;
    if (!parse_kind(eq + 1, (size_t)(kend - eq - 1), &p->t[i].kind))
      cddp_die(CDDP_EXIT_USAGE, "--embedding-plan: table %s: unknown kind '%.*s' (replicated, "
               "table or row)", name, (int)(kend - eq - 1), eq + 1);
    if (colon) {
      char *e;
      long r = strtol(colon + 1, &e, 10);
      if (e != end || p->t[i].kind != CDDP_SHARD_TABLE)
        cddp_die(CDDP_EXIT_USAGE, "--embedding-plan: table %s: ':RANK' needs kind table and a "
                 "rank number", name);
      if (r < 0 || r >= world)
        cddp_die(CDDP_EXIT_USAGE, "--embedding-plan: table %s names rank %ld, this job has "
                 "ranks 0..%d", name, r, world - 1);
      p->t[i].owner = (int)r;
    }
    s = end;
  }
  for (int i = 0; i < n; i++)
    if (p->t[i].kind == CDDP_SHARD_ROW && p->t[i].rows < world)
      cddp_die(CDDP_EXIT_USAGE, "embedding table %s: %lld rows cannot be split row-wise over %d "
               "ranks; make it table-wise or replicated", p->t[i].name, (long long)p->t[i].rows,
               world);
}

static double mib(double b) { return b / (1024.0 * 1024.0); }

void cddp_shard_plan_report(const cddp_shard_plan *p, int state_floats) {
  if (p->rank != 0 || !cddp_shard_plan_any(p)) return;
  double *per = cddp_xcalloc(sizeof(double) * (size_t)p->world, "sharding report");
  double mult = 4.0 * (1 + state_floats);
  cddp_log_info("embedding sharding over %d rank%s (bytes include %d optimizer float%s per "
                "weight):", p->world, p->world > 1 ? "s" : "", state_floats,
                state_floats == 1 ? "" : "s");
  for (int i = 0; i < p->n; i++) {
    const cddp_shard_table *t = &p->t[i];
    double bytes = (double)t->rows * t->dim * mult;
    char where[64];
    if (t->kind == CDDP_SHARD_TABLE) snprintf(where, sizeof where, "table-wise on rank %d", t->owner);
    else if (t->kind == CDDP_SHARD_ROW) snprintf(where, sizeof where, "row-wise over %d ranks", p->world);
    else snprintf(where, sizeof where, "replicated");
    cddp_log_info("  %-20s %12lld x %-4d %10.2f MiB  %s", t->name, (long long)t->rows, t->dim,
                  mib(bytes), where);
    for (int r = 0; r < p->world; r++) {
      int64_t first, count;
      cddp_shard_local(p, i, r, &first, &count);
      per[r] += (double)count * t->dim * mult;
    }
  }
  for (int r = 0; r < p->world; r++)
    cddp_log_info("  rank %d holds %.2f MiB of embedding rows and state", r, mib(per[r]));
  free(per);
}
