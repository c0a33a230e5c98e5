/*
 * baseline.c - setup shared by the raw echo baselines. See baseline.h.
 */
#include "perf/baseline.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/opt.h"

int baseline_parse(struct baseline_opt *o, int argc, char **argv,
                   const char *name, const char *what)
{
	static const struct opt opts[] = {
		{ .name = "host", .kind = OPT_STRING, OPT_AT(struct baseline_opt, host) },
		{ .name = "port", .kind = OPT_UINT, .min = 1, .max = 65535,
		  OPT_AT(struct baseline_opt, port) },
		{ .name = "corrupt", .kind = OPT_UINT, .min = 1, .max = UINT32_MAX,
		  OPT_AT(struct baseline_opt, corrupt) },
		{ .name = "help", .kind = OPT_STOP, .id = 1 },
	};
	struct opt_parser p = { .opts = opts, .nopts = sizeof opts / sizeof opts[0],
	                        .base = o, .hint = " (see --help)" };
	/* --help names the defaults, whatever came before it. */
	const char *def_host = o->host;
	const unsigned def_port = o->port;
	char err[200];

	o->corrupt = 0;
	o->help = false;
	int rc = opt_parse(&p, argc, argv, 1, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", name, err);
		return -EINVAL;
	}
	if (rc > 0) {
		printf("usage: %s [--host ADDR] [--port N] [--corrupt N]\n"
		       "raw echo server (%s); default %s:%u\n",
		       name, what, def_host, def_port);
		o->help = true;
	}
	return 0;
}

void baseline_prepare(sigset_t *mask)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigemptyset(mask);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGTERM);
	sigprocmask(SIG_BLOCK, mask, NULL);
}

int baseline_listen(const char *name, const char *host, uint16_t port,
                    int sock_flags)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	char ps[8];
	snprintf(ps, sizeof ps, "%u", port);
	int ret = getaddrinfo(host, ps, &hints, &res);
	if (ret != 0) {
		fprintf(stderr, "%s: --host %s: %s\n", name, host, gai_strerror(ret));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | sock_flags, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
		ret = -errno;
		fprintf(stderr, "%s: listen on %s:%u: %s\n", name, host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return ret;
	}
	freeaddrinfo(res);
	return fd;
}
