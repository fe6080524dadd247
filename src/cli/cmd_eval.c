/* `cddp eval --checkpoint FILE --data FILE`: the training-time evaluation
 * of a checkpoint's model on a dataset. */
#include "cli/commands.h"
#include "core/error.h"
#include "train/options.h"
#include "train/trainer.h"

int cddp_cmd_eval(int argc, char **argv) {
  static cddp_options o;
  if (cddp_options_parse(&o, CDDP_CMD_EVAL, argc, argv)) return CDDP_EXIT_OK;
  cddp_options_finish(&o, CDDP_CMD_EVAL);
  return cddp_eval_run(&o, &argc, &argv);
}
