/*
 * test_cli_run.h - run net001-cli as a child process from a test, with the
 * runner of tests/support/run.h (struct run, run_wait_for(), run_finish()).
 *
 * The binary is $NET001_CLI, else build/net001-cli.
 */
#ifndef NET001_TEST_CLI_RUN_H
#define NET001_TEST_CLI_RUN_H

#include "run.h"

const char *cli_binary(void);

/*
 * Start the CLI with args (NULL-terminated, without the program name);
 * stdin from stdin_path, or /dev/null when NULL. 0, or -errno.
 */
int cli_spawn(struct run *r, const char *const *args, const char *stdin_path);

/* cli_spawn() then run_finish() with a 20 s limit. Returns r->status. */
int cli_run(struct run *r, const char *const *args);

#define CLI_ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

#endif
