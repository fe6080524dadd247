/* Option parsing: defaults, --name value / --name=value, INI files with
 * sections and '_' or '-' keys, flags overriding the file, and exit code 2
 * naming the option (or file, line and key) for anything unknown or malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/options.h"
#include "train_child.h"

static cddp_options o;

static int parse(int n, ...) {
  char *argv[32] = {"train"};
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) argv[i + 1] = va_arg(ap, char *);
  va_end(ap);
  return cddp_options_parse(&o, CDDP_CMD_TRAIN, n + 1, argv);
}

static void test_defaults_and_flags(void **s) {
  (void)s;
  assert_int_equal(parse(4, "--model", "dlrm", "--lr=0.5", "--nesterov"), 0); /* bare bool */
  assert_string_equal(o.model, "dlrm");
  assert_true(o.lr == 0.5);
  assert_int_equal(o.nesterov, 1);
  assert_int_equal(o.batch, 128);
  assert_true(o.emb_lr < 0);
  assert_int_equal(parse(5, "--train", "x.h5", "--quiet", "false", "--batch=7"), 0);
  assert_int_equal(o.quiet, 0);
  assert_int_equal(o.batch, 7);
  parse(6, "--model", "dlrm", "--train", "x.h5", "--lr", "0.25");
  cddp_options_finish(&o, CDDP_CMD_TRAIN);
  assert_string_equal(o.variant, "kaggle");
  assert_string_equal(o.comm, "mpi");
  assert_true(o.emb_lr == 0.25); /* defaults to --lr */
}

static const char *g_args[8];
static int g_nargs;
static void parse_child(void *arg) {
  (void)arg;
  char *argv[10] = {"train"};
  for (int i = 0; i < g_nargs; i++) argv[i + 1] = (char *)g_args[i];
  cddp_options_parse(&o, CDDP_CMD_TRAIN, g_nargs + 1, argv);
  cddp_options_finish(&o, CDDP_CMD_TRAIN);
}

static void expect_usage(int n, const char **args, const char *needle) {
  char err[4096];
  g_nargs = n;
  for (int i = 0; i < n; i++) g_args[i] = args[i];
  int rc = run_child(parse_child, NULL, err, sizeof err);
  assert_int_equal(rc, 2);
  if (!strstr(err, needle)) fail_msg("stderr '%s' lacks '%s'", err, needle);
}

static void test_errors(void **s) {
  (void)s;
  expect_usage(2, (const char *[]){"--bogus-flag", "1"}, "--bogus-flag");
  expect_usage(2, (const char *[]){"--batch", "12x"}, "--batch 12x");
  expect_usage(2, (const char *[]){"--lr=abc", "--train"}, "--lr abc");
  expect_usage(2, (const char *[]){"--optimizer", "lbfgs"}, "--optimizer lbfgs");
  expect_usage(1, (const char *[]){"--batch"}, "--batch needs a value");
  expect_usage(1, (const char *[]){"stray"}, "stray");
  expect_usage(4, (const char *[]){"--model", "vit", "--variant", "kaggle"}, "--variant kaggle");
  expect_usage(6, (const char *[]){"--model", "dlrm", "--variant", "default", "--train", "x.h5"},
               "not a variant of --model dlrm (one of kaggle|terabyte|tiny)");
  expect_usage(3, (const char *[]){"--train", "x.h5", "--batch=0"}, "--batch 0");
  /* 64-bit values are range-checked, not wrapped to 32 bits */
  expect_usage(3, (const char *[]){"--train", "x.h5", "--batch=4294967424"},
               "--batch 4294967424: must be at most 2147483647");
  expect_usage(4, (const char *[]){"--train", "x.h5", "--grad-accum", "1073741824"},
               "--grad-accum 1073741824: must be at most 16777215");
  expect_usage(2, (const char *[]){"--batch", "99999999999999999999"},
               "--batch 99999999999999999999: not an integer");
  expect_usage(3, (const char *[]){"--train", "x.h5", "--threads=100000"}, "--threads 100000: must be in [0,");
  expect_usage(3, (const char *[]){"--train", "x.h5", "--loader-threads=100000"},
               "--loader-threads 100000: must be at most");
  expect_usage(3, (const char *[]){"--train", "x.h5", "--emb-dim=4294967312"}, "--emb-dim 4294967312");
  /* rates are non-negative (-1 for --emb-lr means "same as --lr") */
  expect_usage(4, (const char *[]){"--train", "x.h5", "--emb-lr", "-5"}, "--emb-lr -5: must be >= 0");
  expect_usage(4, (const char *[]){"--train", "x.h5", "--gamma", "-1"}, "--gamma -1: must be >= 0");
  expect_usage(3, (const char *[]){"--train", "x.h5", "--bucket-mb=1e300"}, "--bucket-mb 1e+300");
  /* a usage error names the flag, never the parser's source file */
  char err[4096];
  g_nargs = 2;
  g_args[0] = "--steps", g_args[1] = "5";
  assert_int_equal(run_child(parse_child, NULL, err, sizeof err), 2);
  if (strstr(err, "options.c")) fail_msg("usage error names our source: '%s'", err);
  if (strncmp(err, "cddp: unknown option --steps", 28)) fail_msg("stderr '%s'", err);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_ini(void **s) {
  (void)s;
  char path[] = "/tmp/cddp_test_opts_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  write_file(path, "; comment\n[model]\nmodel = two_tower\nbatch = 64\n[optim]\nweight_decay = 0.05\n"
                   "lr = 0.1\nnesterov = yes\n");
  assert_int_equal(parse(4, "--lr", "0.2", "--config", path), 0); /* flag wins wherever it stands */
  assert_string_equal(o.model, "two_tower");
  assert_int_equal(o.batch, 64);
  assert_true(o.weight_decay == 0.05);
  assert_true(o.lr == 0.2);
  assert_int_equal(o.nesterov, 1);
  /* round trip through the checkpoint text */
  char *ini = cddp_options_to_ini(&o, CDDP_CMD_TRAIN);
  cddp_options copy;
  cddp_options_defaults(&copy, CDDP_CMD_TRAIN);
  cddp_options_load_ini_text(&copy, CDDP_CMD_TRAIN, ini, "text", 0);
  free(ini);
  memset(copy.config, 0, sizeof copy.config);
  memset(o.config, 0, sizeof o.config);
  assert_memory_equal(&copy, &o, sizeof o);

  char err[4096];
  write_file(path, "model = vit\n\n[x]\nlearning_rate = 3\n");
  g_nargs = 2;
  g_args[0] = "--config";
  g_args[1] = path;
  assert_int_equal(run_child(parse_child, NULL, err, sizeof err), 2);
  char want[256];
  snprintf(want, sizeof want, "%s:4: unknown key 'learning_rate'", path);
  if (!strstr(err, want)) fail_msg("stderr '%s' lacks '%s'", err, want);
  write_file(path, "batch = many\n");
  assert_int_equal(run_child(parse_child, NULL, err, sizeof err), 2);
  if (!strstr(err, ":1: bad value 'many' for key 'batch'")) fail_msg("stderr '%s'", err);
  unlink(path);
}

static void test_help(void **s) {
  (void)s;
  char path[] = "/tmp/cddp_test_help_XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w+");
  cddp_options_print_help(f, CDDP_CMD_TRAIN);
  rewind(f);
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  unlink(path);
  const char *must[] = {"--model", "--grad-accum", "--clip-grad-norm", "--resume", "--recall-k",
                        "[default: 128]", "--metrics-out", "--gather-negatives"};
  for (size_t i = 0; i < sizeof must / sizeof *must; i++)
    if (!strstr(buf, must[i])) fail_msg("help lacks %s", must[i]);
}

/* --model's choices, the default variant and the help's model lines come
 * from the model descriptors. */
static void test_models_from_table(void **s) {
  (void)s;
  int n = 0;
  for (const cddp_model_desc *md; (md = cddp_model_at(n)); n++) {
    assert_int_equal(parse(4, "--model", md->name, "--train", "x.h5"), 0);
    cddp_options_finish(&o, CDDP_CMD_TRAIN);
    assert_string_equal(o.variant, cddp_model_variant_name(md, 0));
    assert_ptr_equal(cddp_model_find(md->name), md);
  }
  assert_int_equal(n, 3);
  assert_null(cddp_model_find("resnet"));
}

/* The start-up agreement text: every train option but the per-rank ones,
 * one exact "name = value" line each; the optimizer choices come from the
 * optimizer list. */
static void test_agreement_text(void **s) {
  (void)s;
  assert_int_equal(parse(6, "--lr", "0.1", "--threads", "3", "--bucket-mb", "7"), 0);
  char *a = cddp_options_agreement_text(&o, CDDP_CMD_TRAIN);
  const char *must[] = {"\nlr = 0.10000000000000001\n", "\nbucket-mb = 7\n", "\noptimizer = sgd\n",
                        "\nkeep-last = 3\n", "\neval = \n", "\nresume = \n"};
  for (size_t i = 0; i < sizeof must / sizeof *must; i++)
    if (!strstr(a, must[i])) fail_msg("agreement text lacks %s", must[i]);
  const char *never[] = {"threads", "train =", "config", "timeout", "metrics-out", "progress",
                         "quiet", "[cddp]"};
  for (size_t i = 0; i < sizeof never / sizeof *never; i++)
    if (strstr(a, never[i])) fail_msg("agreement text has per-rank %s", never[i]);
  free(a);
  assert_int_equal(parse(2, "--optimizer", "adagrad"), 0);
  assert_string_equal(o.optimizer, "adagrad");
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(test_defaults_and_flags),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_ini),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_agreement_text),
      cmocka_unit_test(test_models_from_table),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
