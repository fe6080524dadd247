/* Checkpoints: write/read round trip of parameters, optimizer state, step
 * counter and root attributes; prune keeps the newest K; a writer killed in
 * the middle (SIGKILL from the test hook) leaves the previous checkpoint the
 * newest complete one, and it loads; per-rank model extra state
 * (/model_state/extra) round-trips, and the logQ estimator restored from it
 * continues exactly like the original. CPU backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ops.h"
#include "model/logq.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train_child.h"

static uint64_t rs;
static float frand(void) {
  rs = rs * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rs >> 40) / 16777216.0) * 2 - 1;
}

static void build(cddp_params *ps, cddp_optimizer *o, uint64_t seed) {
  const cddp_backend *be = cddp_cpu_backend();
  cddp_params_init(ps);
  int64_t sw[2] = {7, 3}, sb[1] = {7}, se[2] = {50, 4}, sc[3] = {1, 1, 3};
  cddp_params_add(ps, "cls_token", 3, sc, CDDP_PARAM_NO_WD);
  cddp_params_add(ps, "blocks.0.mlp.fc1.weight", 2, sw, 0);
  cddp_params_add(ps, "blocks.0.mlp.fc1.bias", 1, sb, CDDP_PARAM_NO_WD);
  cddp_params_add(ps, "emb_l.0.weight", 2, se, CDDP_PARAM_SPARSE);
  cddp_params_finalize(ps);
  cddp_params_alloc(ps, be, CDDP_F32);
  cddp_opt_config oc = {.name = "adamw", .lr = 0.1, .emb_lr = 0.1};
  cddp_optimizer_init(o, ps, be, &oc);
  rs = seed;
  for (size_t i = 0; i < ps->n_master; i++) ps->master[i] = frand();
  for (size_t i = 0; i < ps->n_dense; i++) o->dense_state[0][i] = frand(), o->dense_state[1][i] = frand();
  for (size_t i = 0; i < ps->n_master - ps->n_dense; i++) o->sparse_state[i] = frand();
  *o->step = (int)(seed % 1000);
}

static char dir[] = "/tmp/cddp_test_ckpt_XXXXXX";

static void write_step(int64_t step, uint64_t seed) {
  cddp_params ps;
  cddp_optimizer o;
  build(&ps, &o, seed);
  cddp_ckpt_meta meta = {.step = step, .epoch = 2, .position = 6, .loss_scale = 8192,
                         .scaler_tracker = 17, .optimizer_step = *o.step, .seed = 5,
                         .world_size = 2, .model = "vit", .variant = "tiny",
                         .config = "[cddp]\nmodel = vit\n"};
  char path[4096];
  cddp_ckpt_write(dir, &meta, &ps, &o, path, sizeof path);
  cddp_optimizer_free(&o);
  cddp_params_free(&ps);
}

static void test_round_trip(void **s) {
  (void)s;
  write_step(40, 99);
  char path[4096];
  assert_int_equal(cddp_ckpt_find_latest(dir, path, sizeof path), 1);
  assert_non_null(strstr(path, "ckpt-0000000040.h5"));
  cddp_ckpt_meta meta;
  cddp_ckpt_read_meta(path, &meta);
  assert_int_equal(meta.step, 40);
  assert_int_equal(meta.epoch, 2);
  assert_int_equal(meta.position, 6);
  assert_true(meta.loss_scale == 8192);
  assert_int_equal(meta.scaler_tracker, 17);
  assert_int_equal(meta.world_size, 2);
  assert_string_equal(meta.model, "vit");
  assert_string_equal(meta.config, "[cddp]\nmodel = vit\n");
  cddp_ckpt_meta_free(&meta);
  cddp_params want, got;
  cddp_optimizer ow, og;
  build(&want, &ow, 99);
  build(&got, &og, 12345); /* different contents, same shapes */
  cddp_ckpt_load(path, &got, &og);
  assert_memory_equal(want.master, got.master, want.n_master * sizeof(float));
  assert_memory_equal(ow.dense_state[0], og.dense_state[0], want.n_dense * sizeof(float));
  assert_memory_equal(ow.dense_state[1], og.dense_state[1], want.n_dense * sizeof(float));
  assert_memory_equal(ow.sparse_state, og.sparse_state,
                      (want.n_master - want.n_dense) * sizeof(float));
  assert_int_equal(*og.step, *ow.step);
  cddp_optimizer_free(&ow);
  cddp_optimizer_free(&og);
  cddp_params_free(&want);
  cddp_params_free(&got);
}

static void test_prune(void **s) {
  (void)s;
  for (int k = 1; k <= 4; k++) write_step(100 + k, k);
  cddp_ckpt_prune(dir, 2);
  int count = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while ((e = readdir(d))) count += !strncmp(e->d_name, "ckpt-", 5);
  closedir(d);
  assert_int_equal(count, 2);
  char path[4096];
  assert_int_equal(cddp_ckpt_find_latest(dir, path, sizeof path), 1);
  assert_non_null(strstr(path, "ckpt-0000000104.h5"));
}

static void kill_self(int n) {
  if (n == 3) raise(SIGKILL);
}

static void killed_writer(void *arg) {
  (void)arg;
  cddp_ckpt_test_hook = kill_self;
  write_step(500, 7);
}

static void test_killed_writer(void **s) {
  (void)s;
  char err[1024];
  int rc = run_child(killed_writer, NULL, err, sizeof err);
  assert_int_equal(rc, 128 + SIGKILL);
  char path[4096];
  assert_int_equal(cddp_ckpt_find_latest(dir, path, sizeof path), 1);
  assert_non_null(strstr(path, "ckpt-0000000104.h5")); /* the torn one never got a name */
  cddp_params ps;
  cddp_optimizer o;
  build(&ps, &o, 1);
  cddp_ckpt_load(path, &ps, &o);
  cddp_params want;
  cddp_optimizer ow;
  build(&want, &ow, 4);
  assert_memory_equal(want.master, ps.master, ps.n_master * sizeof(float));
  cddp_optimizer_free(&o), cddp_optimizer_free(&ow);
  cddp_params_free(&ps), cddp_params_free(&want);
  cddp_ckpt_prune(dir, 0); /* removes the stale temp file */
  DIR *d = opendir(dir);
  struct dirent *e;
  while ((e = readdir(d))) assert_null(strstr(e->d_name, ".tmp"));
  closedir(d);
}

/* Two ranks' states of a logQ estimator that saw different batches: written,
 * read back per rank, and the restored estimators continue bit-identically. */
static void test_extra_state(void **s) {
  (void)s;
  enum { ITEMS = 30, CAP = 8, RANKS = 2 };
  cddp_logq q[RANKS];
  int32_t ids[CAP];
  rs = 4242;
  for (int r = 0; r < RANKS; r++) {
    cddp_logq_init(&q[r], ITEMS, CAP);
    for (int step = 0; step < 5 + 3 * r; step++) {
      for (int j = 0; j < CAP; j++) ids[j] = (int32_t)((frand() + 1) * 0.5 * ITEMS) % ITEMS;
      ids[CAP - 1] = -1; /* padding is skipped */
      cddp_logq_update(&q[r], ids, CAP);
    }
  }
  size_t nb = cddp_logq_state_bytes(&q[0]);
  assert_int_equal(nb, 8 + 2 * ITEMS * 8);
  unsigned char *all = malloc(RANKS * nb), *row = malloc(nb);
  for (int r = 0; r < RANKS; r++) cddp_logq_save(&q[r], all + r * nb);
  cddp_params ps;
  cddp_optimizer o;
  build(&ps, &o, 3);
  cddp_ckpt_meta meta = {.step = 600, .world_size = RANKS, .model = "two_tower",
                         .variant = "tiny", .config = "",
                         .extra_state = all, .extra_bytes = nb, .extra_rows = RANKS};
  char path[4096], old[4096];
  snprintf(old, sizeof old, "%s/ckpt-0000000104.h5", dir);
  cddp_ckpt_write(dir, &meta, &ps, &o, path, sizeof path);
  assert_int_equal(cddp_ckpt_load_extra_state(old, 0, row, nb), 0); /* none in an older file */
  for (int r = 0; r < RANKS; r++) {
    memset(row, 0, nb);
    assert_int_equal(cddp_ckpt_load_extra_state(path, r, row, nb), 1);
    assert_memory_equal(row, all + r * nb, nb);
    cddp_logq back;
    cddp_logq_init(&back, ITEMS, CAP);
    cddp_logq_load(&back, row);
    assert_int_equal(back.t, q[r].t);
    for (int step = 0; step < 4; step++) {
      for (int j = 0; j < CAP; j++) ids[j] = (int32_t)((frand() + 1) * 0.5 * ITEMS) % ITEMS;
      cddp_logq_update(&q[r], ids, CAP);
      cddp_logq_update(&back, ids, CAP);
      float a[CAP], b[CAP];
      cddp_logq_neg(&q[r], ids, CAP, a);
      cddp_logq_neg(&back, ids, CAP, b);
      assert_memory_equal(a, b, sizeof a);
    }
    assert_memory_equal(back.B, q[r].B, ITEMS * sizeof(double));
    cddp_logq_free(&back);
    cddp_logq_free(&q[r]);
  }
  free(all), free(row);
  cddp_optimizer_free(&o);
  cddp_params_free(&ps);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  const struct CMUnitTest t[] = {cmocka_unit_test(test_round_trip), cmocka_unit_test(test_prune),
                                 cmocka_unit_test(test_killed_writer),
                                 cmocka_unit_test(test_extra_state)};
  int rc = cmocka_run_group_tests(t, NULL, NULL);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  return rc;
}
