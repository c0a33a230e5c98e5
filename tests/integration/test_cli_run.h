/*
 * test_cli_run.h - run net001-cli as a child process from a test: collect
 * its stdout, stderr and exit status, or keep it running (listen) and
 * watch its output.
 *
 * Test-process only; a struct cli_run owns its child and pipes from
 * cli_spawn() until cli_finish() returns. The binary is $NET001_CLI, else
 * build/net001-cli.
 */
#ifndef NET001_TEST_CLI_RUN_H
#define NET001_TEST_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cli_run {
	pid_t pid;
	int out_fd, err_fd; /* -1 once at EOF */
	size_t out_len, err_len;
	int status;         /* exit status, 128 + signal, -1 if killed for time */
	char out[65536];    /* NUL-terminated; output beyond this is dropped */
	char err[8192];
};

const char *cli_binary(void);

/*
 * Start the CLI with args (NULL-terminated, without the program name);
 * stdin from stdin_path, or /dev/null when NULL. 0, or -errno.
 */
int cli_spawn(struct cli_run *r, const char *const *args, const char *stdin_path);

/* Read output until needle shows in stdout or stderr: true, or false at
 * timeout_ms or EOF of both. */
bool cli_wait_for(struct cli_run *r, const char *needle, int timeout_ms);

/* Read the rest of the output and reap the child; kill it after
 * timeout_ms. Returns r->status. */
int cli_finish(struct cli_run *r, int timeout_ms);

/* cli_spawn() then cli_finish() with a 20 s limit. Returns r->status. */
int cli_run(struct cli_run *r, const char *const *args);

#define CLI_ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

#endif
