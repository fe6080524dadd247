/* Subcommands of the cddp program. Each gets argv starting at its own name
 * and returns the process exit code (core/error.h). */
#ifndef CDDP_CLI_COMMANDS_H
#define CDDP_CLI_COMMANDS_H

int cddp_cmd_train(int argc, char **argv);   /* cmd_train.c */
int cddp_cmd_eval(int argc, char **argv);    /* cmd_eval.c */
int cddp_cmd_convert(int argc, char **argv); /* cmd_convert.c */
int cddp_cmd_gen(int argc, char **argv);     /* cmd_gen.c */
int cddp_cmd_info(int argc, char **argv);    /* cmd_info.c */

#endif
