/*
 * net001-bench against the raw echo baselines: an honest server gives
 * exit 0 and a positive message count; one that corrupts every Nth reply
 * must be caught (non-zero exit, mismatches reported).
 *
 * Paths come from meson: NET001_BENCH, NET001_BASELINE_EPOLL,
 * NET001_BASELINE_URING.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ports.h"

struct proc {
	pid_t pid;
	int out; /* read end of its stdout */
};

static const char *env_path(const char *name)
{
	const char *p = getenv(name);
	cr_assert(p && *p, "%s is not set (run through meson test)", name);
	return p;
}

static int spawn(char *const argv[], struct proc *p)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(fds[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	p->pid = pid;
	p->out = fds[0];
	return 0;
}

/* Read the child's stdout until EOF (or cap), then its exit status. */
static int finish(struct proc *p, char *buf, size_t cap)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(p->out, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || n + (size_t)r >= cap - 1) {
			if (r > 0)
				n += (size_t)r;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(p->out);
	int st;
	while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Start a baseline on a random port (tests/support/ports.h), retrying on
 * another port when it cannot listen (EADDRINUSE). It says
 * "listening on ..." once it accepts.
 */
static uint16_t start_baseline(const char *path, const char *corrupt, struct proc *p)
{
	for (int attempt = 0; attempt < 20; attempt++) {
		uint16_t port = port_random();
		char ps[8];
		snprintf(ps, sizeof ps, "%u", port);
		char *argv[] = { (char *)path, "--port", ps,
		                 corrupt ? "--corrupt" : NULL, (char *)corrupt, NULL };
		cr_assert_eq(spawn(argv, p), 0);
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };
		char line[128] = "";
		if (poll(&pfd, 1, 10000) == 1) {
			ssize_t r = read(p->out, line, sizeof line - 1);
			if (r > 0)
				line[r] = '\0';
		}
		if (strstr(line, "listening on"))
			return port;
		kill(p->pid, SIGKILL);
		char rest[256];
		finish(p, rest, sizeof rest);
	}
	cr_assert_fail("%s: no free port after 20 tries", path);
	return 0;
}

static void stop_baseline(struct proc *p)
{
	char rest[256];
	kill(p->pid, SIGTERM);
	int st = finish(p, rest, sizeof rest);
	cr_expect_eq(st, 0, "baseline exits cleanly on SIGTERM");
}

/* Run the bench against port; returns its exit status, JSON in out. */
static int run_bench(uint16_t port, const char *type, const char *payload,
                     char *out, size_t cap)
{
	char ps[8];
	snprintf(ps, sizeof ps, "%u", port);
	char *argv[] = { (char *)env_path("NET001_BENCH"), "--port", ps, "--raw-echo",
	                 "--type", (char *)type, "--connections", "4", "--pipeline", "4",
	                 "--duration", "1", "--warmup", "0.2", "--json",
	                 payload ? "--payload" : NULL, (char *)payload, NULL };
	struct proc b;
	cr_assert_eq(spawn(argv, &b), 0);
	return finish(&b, out, cap);
}

/* The number after "key": in the bench's flat JSON; -1 when absent. */
static double json_num(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(json, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

Test(bench, honest_epoll_baseline_passes, .timeout = 60)
{
	struct proc srv;
	char out[8192];
	uint16_t port = start_baseline(env_path("NET001_BASELINE_EPOLL"), NULL, &srv);
	int st = run_bench(port, "ping", NULL, out, sizeof out);
	stop_baseline(&srv);
	cr_assert_eq(st, 0, "exit status %d, output: %s", st, out);
	cr_assert_gt(json_num(out, "messages"), 0, "%s", out);
	cr_assert_eq(json_num(out, "mismatches"), 0, "%s", out);
	cr_assert_gt(json_num(out, "lat_count"), 0, "latency recorded: %s", out);
}

/*
 * Open loop asked for more than it can send: every turn is behind schedule.
 * The replies must still be read (with DEFER_TASKRUN they reach the CQ only
 * when the bench enters the kernel for events), or the window ends with
 * none counted.
 */
Test(bench, open_loop_behind_schedule_still_reads_replies, .timeout = 60)
{
	struct proc srv;
	char out[8192];
	uint16_t port = start_baseline(env_path("NET001_BASELINE_EPOLL"), NULL, &srv);
	char ps[8];
	snprintf(ps, sizeof ps, "%u", port);
	char *argv[] = { (char *)env_path("NET001_BENCH"), "--port", ps, "--raw-echo",
	                 "--type", "echo", "--connections", "2", "--pipeline", "2",
	                 "--rate", "1000000000", "--duration", "0.5", "--warmup", "0",
	                 "--json", NULL };
	struct proc b;
	cr_assert_eq(spawn(argv, &b), 0);
	int st = finish(&b, out, sizeof out);
	stop_baseline(&srv);
	cr_assert_eq(st, 0, "exit status %d, output: %s", st, out);
	/* Far more than the one window a bench that never reaps would send. */
	cr_assert_gt(json_num(out, "messages"), 100, "%s", out);
	cr_assert_eq(json_num(out, "mismatches"), 0, "%s", out);
}

Test(bench, honest_uring_baseline_passes_echo, .timeout = 60)
{
	struct proc srv;
	char out[8192];
	uint16_t port = start_baseline(env_path("NET001_BASELINE_URING"), NULL, &srv);
	/* 40000-byte frames straddle the bench's receive buffers. */
	int st = run_bench(port, "echo", "40000", out, sizeof out);
	stop_baseline(&srv);
	cr_assert_eq(st, 0, "exit status %d, output: %s", st, out);
	cr_assert_gt(json_num(out, "messages"), 0, "%s", out);
	cr_assert_gt(json_num(out, "mb_per_s"), 0, "%s", out);
}

Test(bench, corrupted_replies_are_caught, .timeout = 60)
{
	struct proc srv;
	char out[8192];
	uint16_t port = start_baseline(env_path("NET001_BASELINE_EPOLL"), "7", &srv);
	int st = run_bench(port, "ping", NULL, out, sizeof out);
	stop_baseline(&srv);
	cr_assert_eq(st, 1, "exit status %d, output: %s", st, out);
	cr_assert_gt(json_num(out, "mismatches"), 0, "%s", out);
	cr_assert_eq(json_num(out, "status"), 1, "%s", out);
}

Test(bench, corrupted_large_echo_is_caught, .timeout = 60)
{
	struct proc srv;
	char out[8192];
	uint16_t port = start_baseline(env_path("NET001_BASELINE_EPOLL"), "3", &srv);
	int st = run_bench(port, "echo", "3000", out, sizeof out);
	stop_baseline(&srv);
	cr_assert_eq(st, 1, "exit status %d, output: %s", st, out);
	cr_assert_gt(json_num(out, "mismatches"), 0, "%s", out);
}

Test(bench, connect_only_counts_served_connections, .timeout = 60)
{
	struct proc srv, b;
	char out[8192], ps[8];
	uint16_t port = start_baseline(env_path("NET001_BASELINE_URING"), NULL, &srv);
	snprintf(ps, sizeof ps, "%u", port);
	char *argv[] = { (char *)env_path("NET001_BENCH"), "--port", ps, "--raw-echo",
	                 "--connect-only", "--connections", "300", "--source-addrs", "3",
	                 "--threads", "2", "--duration", "0.5", "--warmup", "0",
	                 "--json", NULL };
	cr_assert_eq(spawn(argv, &b), 0);
	int st = finish(&b, out, sizeof out);
	stop_baseline(&srv);
	cr_assert_eq(st, 0, "exit status %d, output: %s", st, out);
	cr_assert_eq(json_num(out, "open_at_end"), 300, "%s", out);
	cr_assert_eq(json_num(out, "connect_failed"), 0, "%s", out);
}

Test(bench, refused_connections_fail_the_run, .timeout = 60)
{
	/* A port nothing listens on: bind one, learn it, close it. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t len = sizeof a;
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	char out[8192], ps[8];
	snprintf(ps, sizeof ps, "%u", ntohs(a.sin_port));
	char *argv[] = { (char *)env_path("NET001_BENCH"), "--port", ps,
	                 "--connections", "5", "--duration", "0.2", "--warmup", "0",
	                 "--json", NULL };
	struct proc b;
	cr_assert_eq(spawn(argv, &b), 0);
	int st = finish(&b, out, sizeof out);
	cr_assert_eq(st, 1, "exit status %d, output: %s", st, out);
	cr_assert_eq(json_num(out, "connect_failed"), 5, "%s", out);
}

Test(bench, bad_option_exits_2, .timeout = 30)
{
	char out[1024];
	char *argv[] = { (char *)env_path("NET001_BENCH"), "--pipeline", "0", NULL };
	struct proc b;
	cr_assert_eq(spawn(argv, &b), 0);
	cr_assert_eq(finish(&b, out, sizeof out), 2);
}
