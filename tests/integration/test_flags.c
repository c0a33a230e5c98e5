/*
 * Flags and environment (PROTOCOL.md section 5): every bad value is one
 * line on stderr, exit status 2, and nothing listening.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

struct bad {
	char args[4][32];
	char env[48];
	char needle[32]; /* expected in the message */
};

static struct bad bads[] = {
	{ { "--port", "0" }, "", "port" },
	{ { "--port", "65536" }, "", "port" },
	{ { "--port", "12x" }, "", "port" },
	{ { "--port" }, "", "port" },
	{ { "--port", "65000" }, "", "metrics" },
	{ { "--max-connections", "0" }, "", "max-connections" },
	{ { "--max-connections", "-5" }, "", "max-connections" },
	{ { "--threads", "0" }, "", "threads" },
	{ { "--idle-timeout", "abc" }, "", "idle-timeout" },
	{ { "--rate-limit", "1e3" }, "", "rate-limit" },
	{ { "--global-rate-limit", "" }, "", "global-rate-limit" },
	{ { "--max-payload", "65536" }, "", "max-payload" },
	{ { "--max-payload", "4" }, "", "max-payload" },
	{ { "--max-output", "100" }, "", "max-output" },
	{ { "--metrics-port", "70000" }, "", "metrics-port" },
	{ { "--host", "not-an-address" }, "", "host" },
	{ { "--auth-file", "/nonexistent/auth" }, "", "auth" },
	{ { "--tls" }, "", "tls" },
	{ { "--bogus" }, "", "bogus" },
	{ { "stray" }, "", "stray" },
	{ { "" }, "MAX_CONNECTIONS=lots", "MAX_CONNECTIONS" },
	{ { "" }, "RATE_LIMIT=-1", "RATE_LIMIT" },
	{ { "" }, "GLOBAL_RATE_LIMIT=99999999999999", "GLOBAL_RATE_LIMIT" },
};

ParameterizedTestParameters(flags, bad_values_exit_2)
{
	return cr_make_param_array(struct bad, bads, sizeof bads / sizeof bads[0]);
}

ParameterizedTest(struct bad *b, flags, bad_values_exit_2, .timeout = 30)
{
	const char *args[8];
	int n = 0;
	/* A fixed, otherwise valid port, so we can check nothing listens. */
	bool has_port = false;
	for (int i = 0; i < 4 && b->args[i][0]; i++)
		has_port |= strcmp(b->args[i], "--port") == 0;
	if (!has_port) {
		args[n++] = "--port";
		args[n++] = "32100";
	}
	for (int i = 0; i < 4 && (b->args[i][0] || (i == 0 && !b->env[0])); i++)
		args[n++] = b->args[i];
	args[n] = NULL;
	const char *env[2] = { b->env[0] ? b->env : NULL, NULL };

	char err[2048];
	int st = srv_run_exit(args, env, err, sizeof err, 10000);
	cr_assert_eq(st, 2, "exit status 2 for %s %s %s; got %d: %s", b->args[0], b->args[1],
	             b->env, st, err);
	cr_assert_not_null(strstr(err, b->needle), "message names %s: %s", b->needle, err);
	char *nl = strchr(err, '\n');
	cr_assert(nl && nl[1] == 0, "exactly one line: %s", err);
	cr_assert_not(port_listening(32100), "nothing listens");
}

Test(flags, help_lists_every_flag, .timeout = 30)
{
	static const char *const args[] = { "--help", NULL };
	char out[8192];
	cr_assert_eq(srv_run_exit(args, NULL, out, sizeof out, 10000), 0);
	static const char *const want[] = {
		"--host", "--port", "--max-connections", "--debug", "--threads",
		"--idle-timeout", "--rate-limit", "--global-rate-limit", "--max-payload",
		"--metrics-port", "--auth-file", "--max-output", "MAX_CONNECTIONS",
		"RATE_LIMIT", "GLOBAL_RATE_LIMIT",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		cr_assert_not_null(strstr(out, want[i]), "--help mentions %s", want[i]);
}

Test(flags, port_in_use_is_a_clear_error, .timeout = 30)
{
	struct srv s;
	cr_assert_eq(srv_start(&s, NULL), 0);
	char port[8];
	snprintf(port, sizeof port, "%u", s.port);
	const char *const args[] = { "--host", "127.0.0.1", "--port", port,
	                             "--metrics-port", "0", NULL };
	char err[1024];
	int st = srv_run_exit(args, NULL, err, sizeof err, 10000);
	cr_assert_eq(st, 1, "cannot start: %s", err);
	cr_assert_not_null(strstr(err, "Address already in use"), "%s", err);
	cr_assert(tc_ping(tc_connect(s.port), 1, 2000), "the first server is untouched");
	cr_assert_eq(srv_stop(&s, 10000), 0);
}
