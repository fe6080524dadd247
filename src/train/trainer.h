/* The training loop behind `cddp train` and the evaluation behind
 * `cddp eval` (DESIGN §4, §5, §7, §8). Both are collective over the ranks
 * of the job and return the process exit code; fatal errors end the job
 * through cddp_die. */
#ifndef CDDP_TRAIN_TRAINER_H
#define CDDP_TRAIN_TRAINER_H

#include "model/model.h"
#include "train/options.h"

/* o: parsed and finished (cddp_options_finish) train options. */
int cddp_train_run(cddp_options *o, int *argc, char ***argv);
/* o: parsed and finished eval options. */
int cddp_eval_run(cddp_options *o, int *argc, char ***argv);

/* Model configuration from options (strings point into o). */
void cddp_model_config_from_options(const cddp_options *o, cddp_model_config *cfg);
/* Threads per rank: --threads, or the online cores shared by the local ranks. */
int cddp_threads_for(const cddp_options *o, int local_world);
/* Dies (exit 2) unless an eval file's shapes fit the model built for train. */
void cddp_check_eval_data(const cddp_data_info *train, const cddp_data_info *eval,
                          const char *train_path, const char *eval_path);

#endif
