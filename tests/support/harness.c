/*
 * harness.c - see harness.h.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "ports.h"
#include "timing.h"

const char *srv_binary(void)
{
	const char *p = getenv("NET001_SERVER");
	return p && *p ? p : "build/net001-server";
}

bool port_listening(uint16_t port)
{
	int fd = tc_connect(port);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static bool args_have(const char *const *args, const char *flag)
{
	size_t n = strlen(flag);
	for (; args && *args; args++)
		if (strncmp(*args, flag, n) == 0 && ((*args)[n] == 0 || (*args)[n] == '='))
			return true;
	return false;
}

static pid_t spawn(const char *const *args, const char *const *env, int out_fd,
                   const char *port, const char *mport)
{
	const char *argv[96];
	int n = 0;

	argv[n++] = srv_binary();
	if (port) {
		argv[n++] = "--host";
		argv[n++] = "127.0.0.1";
		argv[n++] = "--port";
		argv[n++] = port;
		if (mport) {
			argv[n++] = "--metrics-port";
			argv[n++] = mport;
		}
	}
	for (; args && *args && n < 94; args++)
		argv[n++] = *args;
	argv[n] = NULL;

	pid_t pid = fork();
	if (pid != 0)
		return pid;
	for (; env && *env; env++)
		putenv((char *)*env);
	dup2(out_fd, STDERR_FILENO);
	dup2(out_fd, STDOUT_FILENO);
	execv(argv[0], (char *const *)argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int wait_status(pid_t pid, int timeout_ms, bool *exited)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	int st;
	*exited = false;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			*exited = true;
			if (WIFEXITED(st))
				return WEXITSTATUS(st);
			return 128 + WTERMSIG(st);
		}
		if (mono_ms() >= end)
			return -1;
		sleep_ms(5);
	}
}

int srv_start_env(struct srv *s, const char *const *args, const char *const *env)
{
	memset(s, 0, sizeof s->log_path);
	for (int attempt = 0; attempt < 30; attempt++) {
		uint16_t port = port_random();
		uint16_t mport = (uint16_t)(port + 1000);
		if (!port_free(port) || !port_free(mport))
			continue;

		snprintf(s->log_path, sizeof s->log_path, "/tmp/net001-test-%d-%u.log",
		         (int)getpid(), port);
		int fd = open(s->log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			return -1;
		char ps[8], ms[8];
		snprintf(ps, sizeof ps, "%u", port);
		snprintf(ms, sizeof ms, "%u", mport);
		bool own_mport = args_have(args, "--metrics-port");
		s->pid = spawn(args, env, fd, ps, own_mport ? NULL : ms);
		close(fd);
		s->port = port;
		s->metrics_port = own_mport ? 0 : mport;

		uint64_t end = mono_ms() + 10000;
		while (mono_ms() < end) {
			if (srv_log_contains(s, "listening on"))
				return 0;
			bool exited;
			int st = wait_status(s->pid, 0, &exited);
			if (exited) {
				/* Lost a race for the port: try another. */
				if (srv_log_contains(s, "Address already in use"))
					break;
				fprintf(stderr, "harness: server exited with %d:\n", st);
				srv_log_print(s);
				unlink(s->log_path);
				s->pid = 0;
				return -1;
			}
			sleep_ms(5);
		}
		if (s->pid > 0 && !srv_log_contains(s, "Address already in use")) {
			fprintf(stderr, "harness: server did not start within 10 s\n");
			kill(s->pid, SIGKILL);
			waitpid(s->pid, NULL, 0);
			s->pid = 0;
			return -1;
		}
		unlink(s->log_path);
	}
	fprintf(stderr, "harness: no free port found\n");
	return -1;
}

int srv_start(struct srv *s, const char *const *args)
{
	return srv_start_env(s, args, NULL);
}

int srv_wait(struct srv *s, int timeout_ms)
{
	bool exited;
	int st = wait_status(s->pid, timeout_ms, &exited);
	if (!exited)
		return -1;
	s->pid = 0;
	return st;
}

int srv_stop(struct srv *s, int timeout_ms)
{
	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	bool exited;
	int st = wait_status(s->pid, timeout_ms, &exited);
	if (!exited) {
		fprintf(stderr, "harness: server ignored SIGTERM for %d ms; killing\n", timeout_ms);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		st = -1;
	}
	if (st != 0) {
		fprintf(stderr, "harness: server exit status %d; its log:\n", st);
		srv_log_print(s);
	}
	s->pid = 0;
	unlink(s->log_path);
	return st;
}

/* Whether every thread in /proc/PID/task is in state T (stopped). */
static bool all_threads_stopped(pid_t pid)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool all = true;
	struct dirent *e;
	while (all && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[sizeof dir + 256 + 8], buf[512];
		snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* "pid (comm) S ...": the state follows the last ')'. */
		char *rp = strrchr(buf, ')');
		if (!rp || rp[1] != ' ' || rp[2] != 'T')
			all = false;
	}
	closedir(d);
	return all;
}

int srv_freeze(const struct srv *s, int timeout_ms)
{
	if (s->pid <= 0 || kill(s->pid, SIGSTOP) < 0)
		return -1;
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	while (!all_threads_stopped(s->pid)) {
		if (mono_ms() >= end)
			return -1;
		sleep_ms(2);
	}
	return 0;
}

void srv_cleanup(struct srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGCONT);
		srv_stop(s, 10000);
	}
	if (s->log_path[0])
		unlink(s->log_path);
}

void srv_log_print(const struct srv *s)
{
	FILE *f = fopen(s->log_path, "r");
	char line[512];
	while (f && fgets(line, sizeof line, f))
		fputs(line, stderr);
	if (f)
		fclose(f);
}

size_t srv_log_count(const struct srv *s, const char *needle)
{
	FILE *f = fopen(s->log_path, "r");
	if (!f)
		return 0;
	char line[1024];
	size_t n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

bool srv_log_contains(const struct srv *s, const char *needle)
{
	return srv_log_count(s, needle) > 0;
}

long srv_rss_kb(const struct srv *s)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

int srv_run_exit(const char *const *args, const char *const *env, char *err,
                 size_t errlen, int timeout_ms)
{
	char path[] = "/tmp/net001-test-run-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	pid_t pid = spawn(args, env, fd, NULL, NULL);
	bool exited;
	int st = wait_status(pid, timeout_ms, &exited);
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		st = -1;
	}
	ssize_t n = pread(fd, err, errlen - 1, 0);
	err[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	return st;
}

/* ---- raw client --------------------------------------------------------- */

static int connect_opts(uint16_t port, const char *src, int rcvbuf)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (src) {
		struct sockaddr_in b = { .sin_family = AF_INET };
		inet_pton(AF_INET, src, &b.sin_addr);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&b, sizeof b) < 0) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int tc_connect_from(uint16_t port, const char *src)
{
	return connect_opts(port, src, 0);
}

int tc_connect_small(uint16_t port, int rcvbuf)
{
	return connect_opts(port, NULL, rcvbuf);
}

int tc_connect(uint16_t port)
{
	return connect_opts(port, NULL, 0);
}

int tc_send(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int tc_send_frame(int fd, uint8_t type, const void *payload, size_t len)
{
	uint8_t *buf = malloc(FRAME_OVERHEAD + len);
	if (!buf)
		return -1;
	size_t n = frame_encode(buf, type, payload, (uint16_t)len);
	int r = tc_send(fd, buf, n);
	free(buf);
	return r;
}

/* Read exactly n bytes before the deadline. */
static int read_full(int fd, uint8_t *p, size_t n, uint64_t deadline)
{
	while (n) {
		int64_t left = (int64_t)(deadline - mono_ms());
		if ((int64_t)deadline - (int64_t)mono_ms() <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t k = recv(fd, p, n, 0);
		if (k == 0)
			return -EPIPE;
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int tc_read_frame(int fd, struct tc_frame *f, int timeout_ms)
{
	uint8_t hdr[FRAME_HEADER_SIZE], crc[FRAME_CRC_SIZE];
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	int r = read_full(fd, hdr, sizeof hdr, deadline);
	if (r < 0)
		return r;
	if (frame_get_u32(hdr) != FRAME_MAGIC || hdr[4] != FRAME_VERSION)
		return -EPROTO;
	f->type = hdr[5];
	f->len = frame_get_u16(hdr + 6);
	r = read_full(fd, f->payload, f->len, deadline);
	if (r < 0)
		return r;
	r = read_full(fd, crc, sizeof crc, deadline);
	if (r < 0)
		return r;
	uint32_t c = frame_crc(frame_crc(0, hdr, sizeof hdr), f->payload, f->len);
	return c == frame_get_u32(crc) ? 0 : -EPROTO;
}

bool tc_expect_error(int fd, uint16_t code, int timeout_ms)
{
	struct tc_frame *f = malloc(sizeof *f);
	bool ok = f && tc_read_frame(fd, f, timeout_ms) == 0 && f->type == FRAME_ERROR &&
	          f->len >= 2 && frame_get_u16(f->payload) == code;
	if (f && !ok)
		fprintf(stderr, "tc_expect_error(%u): got type %#x len %u code %u\n", code,
		        f->type, f->len, f->len >= 2 ? frame_get_u16(f->payload) : 0);
	free(f);
	return ok;
}

bool tc_wait_closed(int fd, int timeout_ms)
{
	uint8_t buf[4096];
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int64_t left = (int64_t)deadline - (int64_t)mono_ms();
		if (left <= 0)
			return false;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)left);
		if (r == 0)
			return false;
		if (r < 0)
			continue;
		ssize_t k = recv(fd, buf, sizeof buf, 0);
		if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
			return true;
	}
}

bool tc_quiet(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	return poll(&pfd, 1, timeout_ms) == 0;
}

bool tc_ping(int fd, uint64_t value, int timeout_ms)
{
	uint8_t p[8];
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(value >> (56 - 8 * i));
	if (tc_send_frame(fd, FRAME_PING, p, 8) < 0)
		return false;
	struct tc_frame *f = malloc(sizeof *f);
	bool ok = f && tc_read_frame(fd, f, timeout_ms) == 0 && f->type == FRAME_PONG &&
	          f->len == 8 && memcmp(f->payload, p, 8) == 0;
	free(f);
	return ok;
}

int srv_slowdown(void)
{
	const char *e = getenv("NET001_SANITIZED");
	return e && *e ? 8 : 1;
}

long srv_rss_bound_kb(long release_kb)
{
	const char *e = getenv("NET001_SANITIZED");
	if (!e || !*e)
		return release_kb;
	return release_kb * (strcmp(e, "thread") == 0 ? 32 : 8);
}

int srv_core_of(const struct srv *s, int fd)
{
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	if (getsockname(fd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	char needle[48];
	snprintf(needle, sizeof needle, "(127.0.0.1:%u) open", ntohs(a.sin_port));
	for (uint64_t end = mono_ms() + 2000; mono_ms() < end; sleep_ms(20)) {
		FILE *f = fopen(s->log_path, "r");
		char line[512];
		int core = -1;
		while (f && fgets(line, sizeof line, f)) {
			const char *at = strstr(line, needle) ? strstr(line, "core ") : NULL;
			if (at && sscanf(at, "core %d:", &core) == 1)
				break;
		}
		if (f)
			fclose(f);
		if (core >= 0)
			return core;
	}
	return -1;
}

int tc_connect_on_core(const struct srv *s, int core, int rcvbuf)
{
	for (int i = 0; i < 64; i++) {
		int fd = rcvbuf > 0 ? tc_connect_small(s->port, rcvbuf) : tc_connect(s->port);
		if (fd < 0)
			return -1;
		if (tc_ping(fd, (uint64_t)i, 5000) && srv_core_of(s, fd) == core)
			return fd;
		close(fd);
	}
	return -1;
}
