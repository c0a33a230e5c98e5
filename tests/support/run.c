/*
 * run.c - see run.h.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timing.h"

int run_spawn(struct run *r, const char *path, const char *const *args,
              const char *stdin_path)
{
	const char *argv[64] = { path };
	size_t n = 1;
	for (; args && *args && n < 63; args++)
		argv[n++] = *args;
	argv[n] = NULL;

	r->pid = -1;
	r->out_fd = r->err_fd = -1;
	r->out_len = r->err_len = 0;
	r->out[0] = r->err[0] = '\0';
	r->status = -1;

	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return -e;
	}
	if (pid == 0) {
		int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
		if (in < 0)
			_exit(126);
		dup2(in, STDIN_FILENO);
		dup2(po[1], STDOUT_FILENO);
		dup2(pe[1], STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	r->pid = pid;
	r->out_fd = po[0];
	r->err_fd = pe[0];
	return 0;
}

static void take(int *fd, char *buf, size_t cap, size_t *len)
{
	char scratch[4096];
	size_t room = cap - 1 - *len;
	char *dst = room ? buf + *len : scratch;
	ssize_t n = read(*fd, dst, room ? room : sizeof scratch);
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	if (room) {
		*len += (size_t)n;
		buf[*len] = '\0';
	}
}

/* One poll round over the open pipes; false when both are at EOF. */
static bool pump(struct run *r, int wait_ms)
{
	struct pollfd p[2] = {
		{ .fd = r->out_fd, .events = POLLIN },
		{ .fd = r->err_fd, .events = POLLIN },
	};
	if (r->out_fd < 0 && r->err_fd < 0)
		return false;
	if (poll(p, 2, wait_ms) <= 0)
		return true;
	if (r->out_fd >= 0 && p[0].revents)
		take(&r->out_fd, r->out, sizeof r->out, &r->out_len);
	if (r->err_fd >= 0 && p[1].revents)
		take(&r->err_fd, r->err, sizeof r->err, &r->err_len);
	return true;
}

bool run_wait_for(struct run *r, const char *needle, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		if (strstr(r->out, needle) || strstr(r->err, needle))
			return true;
		int64_t left = (int64_t)end - (int64_t)mono_ms();
		if (left <= 0 || !pump(r, (int)(left < 100 ? left : 100)))
			return false;
	}
}

int run_finish(struct run *r, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	bool killed = false;
	while (pump(r, 100)) {
		if (!killed && mono_ms() > end) {
			kill(r->pid, SIGKILL);
			killed = true;
		}
	}
	int st;
	while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
		;
	if (killed)
		r->status = -1;
	else if (WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	else
		r->status = 128 + WTERMSIG(st);
	r->pid = -1;
	return r->status;
}

void run_kill(struct run *r)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, SIGKILL);
	run_finish(r, 1000);
}

int run_program(struct run *r, const char *path, const char *const *args, int timeout_ms)
{
	int e = run_spawn(r, path, args, NULL);
	if (e < 0)
		return r->status = e;
	return run_finish(r, timeout_ms);
}

size_t str_count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

bool str_matches(const char *s, const char *pattern)
{
	regex_t re;
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0) {
		fprintf(stderr, "str_matches: bad regular expression: %s\n", pattern);
		abort();
	}
	bool ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}
