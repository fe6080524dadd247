/* The cddp program: dispatches to its subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/error.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} commands[] = {
    {"train", cddp_cmd_train, "train a model (dlrm, two_tower, vit), one rank per GPU under mpirun"},
    {"eval", cddp_cmd_eval, "evaluate a checkpoint on a dataset"},
    {"convert", cddp_cmd_convert, "convert raw data: criteo IN.tsv[.gz] OUT.h5 | idx IMAGES LABELS OUT.h5"},
    {"gen", cddp_cmd_gen, "write synthetic data: ctr|twotower|images OUT.h5 --rows N --seed S"},
    {"info", cddp_cmd_info, "describe a cddp HDF5 file"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: cddp COMMAND [options]   (cddp COMMAND --help for its options)\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return CDDP_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(argv[1], commands[i].name)) {
      static char hint[64];
      snprintf(hint, sizeof hint, "'cddp %s --help'", commands[i].name);
      cddp_set_usage_hint(hint);
      return commands[i].run(argc - 1, argv + 1);
    }
  fprintf(stderr, "cddp: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return CDDP_EXIT_USAGE;
}
