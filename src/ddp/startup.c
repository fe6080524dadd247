/* Start-up checks (DESIGN §4): every rank holds the same model/data
 * description, then rank 0's initial parameters are broadcast. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "ddp/comm_impl.h"
#include "ddp/reducer.h"

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

/* All-gather(v) of host memory on any comm: device comms get device copies. */
static void host_allgatherv(cddp_comm *c, const void *send, size_t send_bytes, void *recv,
                            const size_t *rb, const size_t *displs, size_t total) {
  const cddp_backend *be = c->be;
  if (!be->is_device) {
    cddp_comm_wait(c, cddp_allgatherv(c, send, send_bytes, recv, rb, displs));
    return;
  }
  void *ds = be->malloc(send_bytes ? send_bytes : 1), *dr = be->malloc(total ? total : 1);
  be->memcpy_h2d(ds, send, send_bytes, be->compute);
  cddp_comm_wait(c, cddp_allgatherv(c, ds, send_bytes, dr, rb, displs));
  be->memcpy_d2h(recv, dr, total, be->compute);
  be->free(ds);
  be->free(dr);
}

/* Line number (1-based) and the two lines where a and b first differ. */
static void first_diff(const char *a, const char *b, int *line, char *la, char *lb, size_t n) {
  int ln = 1;
  const char *sa = a, *sb = b; /* starts of the current lines */
  while (*a && *a == *b) {
    if (*a == '\n') {
      ln++;
      sa = a + 1;
      sb = b + 1;
    }
    a++;
    b++;
  }
  *line = ln;
  size_t ka = strcspn(sa, "\n"), kb = strcspn(sb, "\n");
  snprintf(la, n, "%.*s", (int)(ka < n - 1 ? ka : n - 1), sa);
  snprintf(lb, n, "%.*s", (int)(kb < n - 1 ? kb : n - 1), sb);
}

void cddp_ddp_check_same(cddp_comm *c, const char *description) {
  int W = c->world, R = c->rank;
  size_t len = strlen(description);
  uint64_t mine[2] = {fnv1a(description, len), (uint64_t)len};
  uint64_t *all = cddp_xmalloc(sizeof mine * (size_t)W, "description hashes");
  size_t *rb = cddp_xmalloc(sizeof(size_t) * (size_t)W, "counts");
  size_t *dp = cddp_xmalloc(sizeof(size_t) * (size_t)W, "displacements");
  for (int q = 0; q < W; q++) {
    rb[q] = sizeof mine;
    dp[q] = q * sizeof mine;
  }
  host_allgatherv(c, mine, sizeof mine, all, rb, dp, sizeof mine * (size_t)W);
  int bad = -1;
  for (int q = 1; q < W && bad < 0; q++)
    if (all[2 * q] != all[0] || all[2 * q + 1] != all[1]) bad = q;
  if (bad < 0) {
    free(all);
    free(rb);
    free(dp);
    return;
  }
  /* A mismatch: gather every description so each rank can name the difference. */
  size_t total = 0;
  for (int q = 0; q < W; q++) {
    rb[q] = (size_t)all[2 * q + 1] + 1;
    dp[q] = total;
    total += rb[q];
  }
  char *text = cddp_xmalloc(total, "descriptions");
  host_allgatherv(c, description, len + 1, text, rb, dp, total);
  int line;
  char la[200], lb[200];
  first_diff(text, text + dp[bad], &line, la, lb, sizeof la);
  cddp_die(CDDP_EXIT_USAGE,
           "ranks disagree on the model/data configuration: rank 0 and rank %d first differ at "
           "line %d: rank 0 has \"%s\", rank %d has \"%s\" (this is rank %d)",
           bad, line, la, bad, lb, R);
}

void cddp_ddp_broadcast_params(cddp_comm *c, float *master, size_t n) {
  cddp_comm_wait(c, cddp_broadcast(c, master, n * sizeof(float), 0));
}

void cddp_ddp_check_replicas(cddp_comm *c, const float *master, size_t n, long long steps) {
  const cddp_backend *be = c->be;
  int W = c->world;
  size_t bytes = n * sizeof(float);
  const float *host = master;
  float *copy = NULL;
  if (be->is_device) {
    copy = cddp_xmalloc(bytes ? bytes : 1, "replica check copy");
    be->memcpy_d2h(copy, master, bytes, be->compute);
    be->stream_sync(be->compute);
    host = copy;
  }
  uint64_t mine = fnv1a((const char *)host, bytes);
  free(copy);
  uint64_t *all = cddp_xmalloc(sizeof mine * (size_t)W, "replica hashes");
  size_t *rb = cddp_xmalloc(sizeof(size_t) * (size_t)W, "counts");
  size_t *dp = cddp_xmalloc(sizeof(size_t) * (size_t)W, "displacements");
  for (int q = 0; q < W; q++) {
    rb[q] = sizeof mine;
    dp[q] = q * sizeof mine;
  }
  host_allgatherv(c, &mine, sizeof mine, all, rb, dp, sizeof mine * (size_t)W);
  for (int q = 1; q < W; q++)
    if (all[q] != all[0])
      cddp_die(CDDP_EXIT_RUNTIME,
               "replica check: parameters differ across ranks after %lld steps: rank 0 hash "
               "%016llx, rank %d hash %016llx (%zu floats)",
               steps, (unsigned long long)all[0], q, (unsigned long long)all[q], n);
  cddp_log_info("replica check: parameters bit-identical on all %d ranks after %lld steps "
                "(hash %016llx, %zu floats)", W, steps, (unsigned long long)all[0], n);
  free(all);
  free(rb);
  free(dp);
}
