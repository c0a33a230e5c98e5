/*
 * net001-cli without a server: argument errors (exit 2), --help,
 * hash-token, and the connection failures (exit 3) a missing server gives.
 * The binary's path comes from NET001_CLI (set by meson).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ports.h"
#include "test_cli_run.h"

#define RUN(r, ...) cli_run((r), CLI_ARGS(__VA_ARGS__))

static void expect_usage(const char *const *args, const char *needle)
{
	static struct cli_run r;
	cli_run(&r, args);
	cr_assert_eq(r.status, 2, "exit %d for %s; stderr: %s", r.status, args[0], r.err);
	cr_assert_str_eq(r.out, "", "usage errors print nothing on stdout");
	cr_assert(strncmp(r.err, "net001-cli: ", 12) == 0, "stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, needle), "'%s' not in: %s", needle, r.err);
}

#define USAGE(needle, ...) expect_usage((const char *const[]){ __VA_ARGS__, NULL }, needle)

Test(cli, usage_errors_exit_2)
{
	USAGE("no command", "--port", "5000");
	USAGE("unknown command 'frob'", "frob");
	USAGE("--bogus", "--bogus", "ping");
	USAGE("bad --port '0'", "--port", "0", "ping");
	USAGE("bad --port '70000'", "--port", "70000", "ping");
	USAGE("bad --port '12x'", "--port", "12x", "ping");
	USAGE("--port", "--port");
	USAGE("bad --timeout '-5'", "--timeout", "-5", "ping");
	USAGE("bad --timeout 'soon'", "--timeout", "soon", "ping");
	USAGE("bad --auth 'alice'", "--auth", "alice", "ping");
	USAGE("bad --auth ':tok'", "--auth", ":tok", "ping");
	USAGE("bad --auth 'alice:'", "--auth", "alice:", "ping");
	USAGE("empty --host", "--host", "", "ping");
	USAGE("ping: bad count 'x'", "ping", "-c", "x");
	USAGE("ping: bad interval '-1'", "ping", "-i", "-1");
	USAGE("ping: bad or incomplete option '-z'", "ping", "-z");
	USAGE("ping: bad or incomplete option '-c'", "ping", "-c");
	USAGE("ping: unexpected argument 'extra'", "ping", "extra");
	USAGE("echo: expected 1 argument", "echo");
	USAGE("echo: expected 1 argument", "echo", "a", "b");
	USAGE("echo: bad option", "echo", "-n");
	USAGE("broadcast: expected 1 argument", "broadcast");
	USAGE("listen: bad count '0'", "listen", "-n", "0");
	USAGE("listen: unexpected argument 'x'", "listen", "x");
	USAGE("auth: expected 2 arguments", "auth", "alice");
	USAGE("auth: USER must be 1 to 64 bytes",
	      "auth", "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu", "t");
	USAGE("send: expected FILE or -", "send");
	USAGE("send: bad option '-x'", "send", "-x");
	USAGE("/no/such/file", "send", "/no/such/file");
	USAGE("hash-token: expected 1 argument", "hash-token");
}

Test(cli, help_and_version)
{
	static struct cli_run r;
	RUN(&r, "--help");
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.err, "");
	cr_assert(strncmp(r.out, "Usage: net001-cli", 17) == 0, "stdout: %s", r.out);
	static const char *const cmds[] = {
		"ping [-c N] [-i MS]", "echo TEXT", "broadcast TEXT", "listen [-n N]",
		"auth USER TOKEN", "send FILE|-", "hash-token TOKEN", "--auth USER:TOKEN",
		"65535 bytes",
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		cr_assert_not_null(strstr(r.out, cmds[i]), "--help lacks '%s'", cmds[i]);

	RUN(&r, "--version");
	cr_assert_eq(r.status, 0);
	cr_assert(strncmp(r.out, "net001-cli ", 11) == 0, "stdout: %s", r.out);
}

Test(cli, hash_token_is_sha256_hex)
{
	static struct cli_run r;
	RUN(&r, "hash-token", "s3cret");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	/* sha256("s3cret"), from Python's hashlib */
	cr_assert_str_eq(r.out,
		"1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n");
	cr_assert_str_eq(r.err, "");

	RUN(&r, "hash-token", "--", "-dash");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	/* sha256("-dash"), from Python's hashlib */
	cr_assert_str_eq(r.out,
		"b693fbbf1c05e454549b8a9b4c3df4b3bbd6f640f87bfbebc5d9fcf27905a363\n");
}

/* A port bound without listen(): connects are refused. */
static int refused_port(uint16_t *port)
{
	int fd = port_bind_random(AF_INET, 0, port);
	cr_assert_geq(fd, 0, "no free port: %s", strerror(-fd));
	return fd;
}

Test(cli, refused_connection_exits_3)
{
	uint16_t port;
	int fd = refused_port(&port);
	char ps[8], want[96];
	snprintf(ps, sizeof ps, "%u", port);
	static const char *const cmds[][2] = {
		{ "ping", NULL }, { "echo", "hi" }, { "broadcast", "hi" },
		{ "listen", NULL }, { "send", "-" },
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		static struct cli_run r;
		RUN(&r, "--port", ps, cmds[i][0], cmds[i][1]);
		cr_assert_eq(r.status, 3, "%s: exit %d, stderr: %s", cmds[i][0], r.status, r.err);
		snprintf(want, sizeof want,
		         "net001-cli: connect 127.0.0.1:%u: Connection refused\n", port);
		cr_assert_str_eq(r.err, want);
	}
	static struct cli_run r;
	RUN(&r, "--host", "::1", "--port", ps, "auth", "u", "t");
	cr_assert_eq(r.status, 3);
	snprintf(want, sizeof want, "net001-cli: connect [::1]:%u: ", port);
	cr_assert(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
	close(fd);
}

Test(cli, unresolvable_host_exits_3)
{
	static struct cli_run r;
	RUN(&r, "--host", "no-such-host.invalid", "echo", "hi");
	cr_assert_eq(r.status, 3, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strncmp(r.err, "net001-cli: connect no-such-host.invalid:5000: ", 47) == 0,
	          "stderr: %s", r.err);
	cr_assert(strstr(r.err, "resol"), "stderr: %s", r.err);
}
