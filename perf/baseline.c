/*
 * baseline.c - setup shared by the raw echo baselines. See baseline.h.
 */
#include "perf/baseline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/opt.h"
#include "core/sock.h"
#include "perf/benchopt.h"

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
                    bool nonblock)
{
	char err[256];
	const struct sock_opts o = { .backlog = 4096, .nonblock = nonblock };
	int fd = sock_listen(host, port, &o, err, sizeof err);
	if (fd < 0)
		fprintf(stderr, "%s: %s\n", name, err);
	return fd;
}
