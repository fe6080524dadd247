/* `cddp train`: options (--config FILE.ini, then flags), then the loop. */
#include "cli/commands.h"
#include "core/error.h"
#include "train/options.h"
#include "train/trainer.h"

int cddp_cmd_train(int argc, char **argv) {
  static cddp_options o; /* large (path buffers): not on the stack */
  if (cddp_options_parse(&o, CDDP_CMD_TRAIN, argc, argv)) return CDDP_EXIT_OK;
  cddp_options_finish(&o, CDDP_CMD_TRAIN);
  return cddp_train_run(&o, &argc, &argv);
}
