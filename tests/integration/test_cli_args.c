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
	static struct run r;
	cli_run(&r, args);
	cr_assert_eq(r.status, 2, "exit %d for %s; stderr: %s", r.status, args[0], r.err);
	cr_assert_str_eq(r.out, "", "usage errors print nothing on stdout");
	cr_assert(strncmp(r.err, "net001-cli: ", 12) == 0, "stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, needle), "'%s' not in: %s", needle, r.err);
}

#define USAGE(needle, ...) expect_usage((const char *const[]){ __VA_ARGS__, NULL }, needle)

Test(cli, usage_errors_exit_2)
{
	USAGE("unknown command 'frob'", "frob");
	USAGE("unknown option '--bogus'", "--bogus", "ping");
	USAGE("--port: '0' is out of range (1..65535)", "--port", "0", "ping");
	USAGE("--port: '70000' is out of range", "--port", "70000", "ping");
	USAGE("--port: '12x' is not a whole decimal number", "--port", "12x", "ping");
	USAGE("--port needs a value", "--port");
	USAGE("--port needs a value", "--port", "--json", "ping");
	USAGE("--timeout: '-5' is negative", "--timeout", "-5", "ping");
	USAGE("--timeout: 'soon' is not a whole decimal number", "--timeout", "soon", "ping");
	USAGE("--timeout: '0' is out of range (1..2147483647 ms)", "--timeout=0", "ping");
	USAGE("--auth: expected USER:TOKEN", "--auth", "alice", "ping");
	USAGE("--auth: expected USER:TOKEN", "--auth", ":tok", "ping");
	USAGE("--auth: expected USER:TOKEN", "--auth", "alice:", "ping");
	USAGE("--host: empty value", "--host", "", "ping");
	USAGE("--json takes no value", "--json=1", "ping");
	USAGE("--tls-ca: '/no/such/ca.pem': No such file", "--tls-ca", "/no/such/ca.pem", "ping");
	USAGE("-r: 'x' is not a whole decimal number", "-r", "x", "ping");
	USAGE("-i: '-1' is negative", "-r", "2", "-i", "-1", "ping");
	USAGE("--interval: 'soon' is not a number", "--interval", "soon", "ping");
	USAGE("-r needs a command", "-r", "3");
	USAGE("--stat takes no command ('ping')", "--stat", "ping");
	USAGE("exclude each other", "--stat", "--latency");
	USAGE("--stat needs the metrics port", "--port", "65000", "--stat");
	USAGE("--stat needs the metrics port", "--metrics-port", "0", "--stat");
	USAGE("ping: -c: 'x' is not a whole decimal number", "ping", "-c", "x");
	USAGE("ping: --count: 'x' is not a whole decimal number", "ping", "--count=x");
	USAGE("ping: -i: '-1' is negative", "ping", "-i", "-1");
	USAGE("ping: -i: '3600001' is out of range (0..3600000 ms)", "ping", "-i3600001");
	USAGE("ping: unknown option '-z'", "ping", "-z");
	USAGE("ping: -c needs a value", "ping", "-c");
	USAGE("ping: unexpected argument 'extra'", "ping", "extra");
	USAGE("echo: expected 1 argument", "echo");
	USAGE("echo: expected 1 argument", "echo", "a", "b");
	USAGE("echo: unknown option '-n' (an argument that starts with '-' goes after '--')",
	      "echo", "-n");
	USAGE("echo: unexpected argument 'x' (the payload comes from -f)",
	      "echo", "-f", "/dev/null", "x");
	USAGE("/no/such/file", "echo", "-f", "/no/such/file");
	USAGE("broadcast: expected 1 argument", "broadcast");
	USAGE("listen: -n: '0' is out of range", "listen", "-n", "0");
	USAGE("listen: unexpected argument 'x'", "listen", "x");
	USAGE("auth: expected 2 arguments", "auth", "alice");
	USAGE("auth: USER must be 1 to 64 bytes",
	      "auth", "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu", "t");
	USAGE("send: expected FILE or -", "send");
	USAGE("send: unknown option '-x'", "send", "-x");
	USAGE("/no/such/file", "send", "/no/such/file");
	USAGE("hash-token: expected 1 argument", "hash-token");
}

Test(cli, environment_settings)
{
	/* NET001_PORT and NET001_HOST fall back to the environment; a flag
	 * beats them; a bad value names the variable. */
	static struct run r;
	setenv("NET001_PORT", "0", 1);
	RUN(&r, "hash-token", "x");
	cr_assert_eq(r.status, 2, "stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, "environment variable NET001_PORT: '0' is out of range"),
	                   "stderr: %s", r.err);
	RUN(&r, "--port", "7", "hash-token", "x");
	cr_assert_eq(r.status, 0, "a flag hides a bad variable: %s", r.err);
	setenv("NET001_PORT", "", 1);
	RUN(&r, "hash-token", "x");
	cr_assert_eq(r.status, 0, "empty is unset: %s", r.err);
	unsetenv("NET001_PORT");

	/* The secret is never repeated in a message. */
	setenv("NET001_AUTH", "s3cretnocolon", 1);
	RUN(&r, "hash-token", "x");
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "environment variable NET001_AUTH: expected USER:TOKEN"),
	                   "stderr: %s", r.err);
	cr_assert_null(strstr(r.err, "s3cret"), "stderr: %s", r.err);
	unsetenv("NET001_AUTH");
}

Test(cli, repeat_and_json_offline)
{
	static struct run r;
	RUN(&r, "-r", "3", "hash-token", "s3cret");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	const char *h = "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n";
	char want[256];
	snprintf(want, sizeof want, "%s%s%s", h, h, h);
	cr_assert_str_eq(r.out, want);

	RUN(&r, "--json", "hash-token", "s3cret");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_str_eq(r.out, "{\"type\":\"hash_token\",\"sha256\":"
	                 "\"1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\"}\n");
}

Test(cli, script_from_stdin_without_a_server)
{
	/* No command and stdin not a terminal: one command per line. */
	char path[] = "/tmp/net001-cli-script-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char script[] =
		"# a comment, then a blank line\n"
		"\n"
		"hash-token 's3cret'\n"
		"2 hash-token \"a b\\x21\"\n"
		"frob\n"
		"hash-token unbalanced\"\n"
		"help\n"
		"quit\n"
		"hash-token after-quit\n";
	cr_assert_eq(write(fd, script, sizeof script - 1), (ssize_t)(sizeof script - 1));
	close(fd);
	static struct run r;
	cr_assert_eq(cli_spawn(&r, CLI_ARGS("--port", "5000"), path), 0);
	run_finish(&r, 10000);
	unlink(path);
	cr_assert_eq(r.status, 2, "the last failure (a usage error) is the status: %s", r.err);
	/* sha256("s3cret"), then sha256("a b!") twice, from Python's hashlib */
	const char *s1 = "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n";
	const char *s2 = "725e023a3e9aaca0f70784acc254c9526f92ca0ee53f8f67d298cebf86f027ce\n";
	char want[300];
	snprintf(want, sizeof want, "%s%s%s", s1, s2, s2);
	cr_assert(strncmp(r.out, want, strlen(want)) == 0, "stdout: %s", r.out);
	cr_assert_not_null(strstr(r.err, "net001-cli: unknown command 'frob'\n"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "net001-cli: unbalanced quotes\n"), "%s", r.err);
	cr_assert_null(strstr(r.err, "Try '"), "no --help hint per line: %s", r.err);
	cr_assert_not_null(strstr(r.out, "Commands:"), "help: %s", r.out);
	cr_assert_not_null(strstr(r.out, "'N command' runs it N times"), "help: %s", r.out);
	/* sha256("after-quit") */
	cr_assert_null(strstr(r.out, "83d6e57586c4d3a8"), "nothing after quit");
}

Test(cli, no_command_and_empty_stdin_is_done)
{
	static struct run r;
	RUN(&r, "--port", "5000");
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_str_eq(r.out, "");
	cr_assert_str_eq(r.err, "");
}

Test(cli, help_and_version)
{
	static struct run r;
	RUN(&r, "--help");
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.err, "");
	cr_assert(strncmp(r.out, "Usage: net001-cli", 17) == 0, "stdout: %s", r.out);
	static const char *const cmds[] = {
		"ping [-c N] [-i MS]", "echo TEXT", "broadcast TEXT", "listen [-n N]",
		"auth USER TOKEN", "send FILE|-", "hash-token TOKEN", "--auth USER:TOKEN",
		"65535 bytes", "echo -f FILE|-", "broadcast -f FILE|-", "-r, --repeat N",
		"-i, --interval SEC", "--json", "--stat", "--latency", "--latency-history",
		"--metrics-port N", "NET001_HOST", "NET001_PORT", "NET001_AUTH",
		"interactive", ".net001_cli_history",
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		cr_assert_not_null(strstr(r.out, cmds[i]), "--help lacks '%s'", cmds[i]);

	RUN(&r, "--version");
	cr_assert_eq(r.status, 0);
	cr_assert(strncmp(r.out, "net001-cli ", 11) == 0, "stdout: %s", r.out);
	RUN(&r, "-V");
	cr_assert_eq(r.status, 0);
	cr_assert(strncmp(r.out, "net001-cli ", 11) == 0, "stdout: %s", r.out);
}

Test(cli, hash_token_is_sha256_hex)
{
	static struct run r;
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
		static struct run r;
		RUN(&r, "--port", ps, cmds[i][0], cmds[i][1]);
		cr_assert_eq(r.status, 3, "%s: exit %d, stderr: %s", cmds[i][0], r.status, r.err);
		snprintf(want, sizeof want,
		         "net001-cli: connect 127.0.0.1:%u: Connection refused\n", port);
		cr_assert_str_eq(r.err, want);
	}
	static struct run r;
	RUN(&r, "--host", "::1", "--port", ps, "auth", "u", "t");
	cr_assert_eq(r.status, 3);
	snprintf(want, sizeof want, "net001-cli: connect [::1]:%u: ", port);
	cr_assert(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
	close(fd);
}

Test(cli, unresolvable_host_exits_3)
{
	static struct run r;
	RUN(&r, "--host", "no-such-host.invalid", "echo", "hi");
	cr_assert_eq(r.status, 3, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strncmp(r.err, "net001-cli: connect no-such-host.invalid:5000: ", 47) == 0,
	          "stderr: %s", r.err);
	cr_assert(strstr(r.err, "resol"), "stderr: %s", r.err);
}
