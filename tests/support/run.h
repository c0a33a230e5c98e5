/*
 * run.h - run a program as a child process from a test: collect its
 * stdout, stderr and exit status, or keep it running (a server, `listen`)
 * and watch its output.
 *
 * Test-process only; a struct run owns its child and pipes from
 * run_spawn() until run_finish() returns. Output beyond the buffers is
 * read and dropped, so a chatty child never blocks on a full pipe while
 * it is being waited for.
 */
#ifndef NET001_TEST_RUN_H
#define NET001_TEST_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct run {
	pid_t pid;
	int out_fd, err_fd; /* -1 once at EOF */
	size_t out_len, err_len;
	int status;         /* exit status, 128 + signal, -1 if killed for time */
	char out[65536];    /* NUL-terminated; output beyond this is dropped */
	char err[16384];
};

/*
 * Start the program at path with args (NULL-terminated, without the
 * program name; up to 62 are passed); stdin from stdin_path, or /dev/null
 * when NULL. 0, or -errno.
 */
int run_spawn(struct run *r, const char *path, const char *const *args,
              const char *stdin_path);

/* Read output until needle shows in stdout or stderr: true, or false at
 * timeout_ms or EOF of both. */
bool run_wait_for(struct run *r, const char *needle, int timeout_ms);

/* Read the rest of the output and reap the child; kill it after
 * timeout_ms. Returns r->status. */
int run_finish(struct run *r, int timeout_ms);

/* If the child still runs, SIGKILL it; then reap it (for a test's .fini,
 * or a start given up). Does nothing on a struct run never spawned (pid
 * 0) or already finished. */
void run_kill(struct run *r);

/* run_spawn() (stdin /dev/null) then run_finish(). Returns r->status, or
 * -errno when the child could not be started. */
int run_program(struct run *r, const char *path, const char *const *args, int timeout_ms);

#define RUN_ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Where needle occurs in hay, not overlapping: how many times. */
size_t str_count(const char *hay, const char *needle);

/* Whether s has a match for the POSIX extended regular expression
 * pattern (REG_NEWLINE: ^ and $ match at every line). A pattern that
 * does not compile is a bug in the test: it aborts, naming it. */
bool str_matches(const char *s, const char *pattern);

#endif
