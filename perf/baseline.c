/*
 * baseline.c - setup shared by the raw echo baselines. See baseline.h.
 */
#include "perf/baseline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/sock.h"
#include "perf/benchopt.h"

int baseline_parse(struct baseline_opt *o, int argc, char **argv,
                   const char *name, const char *what)
{
	/* --help names the defaults, whatever came before it. */
	const char *def_host = o->host;
	const unsigned def_port = o->port;
	uint64_t port = o->port;

	o->corrupt = 0;
	o->help = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0) {
			printf("usage: %s [--host ADDR] [--port N] [--corrupt N]\n"
			       "raw echo server (%s); default %s:%u\n",
			       name, what, def_host, def_port);
			o->help = true;
			return 0;
		} else if (strcmp(a, "--host") == 0 && v) {
			o->host = v;
			i++;
		} else if (strcmp(a, "--port") == 0) {
			if (benchopt_parse_u64(v, 1, 65535, &port)) {
				fprintf(stderr, "%s: --port: expected 1..65535\n", name);
				return -EINVAL;
			}
			i++;
		} else if (strcmp(a, "--corrupt") == 0) {
			if (benchopt_parse_u64(v, 1, UINT32_MAX, &o->corrupt)) {
				fprintf(stderr, "%s: --corrupt: expected a count >= 1\n", name);
				return -EINVAL;
			}
			i++;
		} else {
			fprintf(stderr, "%s: unknown or incomplete option '%s'\n", name, a);
			return -EINVAL;
		}
	}
	o->port = (uint16_t)port;
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
