/* benchopt: defaults, accepted forms, and every rejection. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "perf/benchopt.h"

#define MAXARGS 8

/* Inline arrays: Criterion re-creates parameters in a fresh process. */
struct bad_case {
	char args[MAXARGS][40];
	char err_has[40]; /* substring the error must contain */
};

static int parse(struct benchopt *o, const char (*args)[40], char *err)
{
	char *argv[MAXARGS + 1] = { "net001-bench" };
	int argc = 1;
	for (int i = 0; i < MAXARGS && args[i][0]; i++)
		argv[argc++] = (char *)args[i];
	return benchopt_parse(o, argc, argv, err);
}

Test(benchopt, defaults)
{
	struct benchopt o;
	char err[BENCHOPT_ERR_MAX];
	char *argv[] = { "net001-bench" };
	cr_assert_eq(benchopt_parse(&o, 1, argv, err), 0);
	cr_assert_str_eq(o.host, "127.0.0.1");
	cr_assert_eq(o.port, 5000);
	cr_assert_eq(o.type, BENCH_PING);
	cr_assert_eq(o.payload, 8, "a PING carries 8 bytes");
	cr_assert_eq(o.rate, 0.0);
	cr_assert_eq(o.threads, 1);
}

Test(benchopt, accepts_both_forms)
{
	struct benchopt o;
	char err[BENCHOPT_ERR_MAX];
	char *argv[] = { "net001-bench", "--type=echo", "--payload", "65535",
	                 "--connections=1000", "--threads", "2", "--rate", "2500.5",
	                 "--auth", "alice:s3:cret", "--duration", "0.5", "--json" };
	cr_assert_eq(benchopt_parse(&o, sizeof argv / sizeof argv[0], argv, err), 0, "%s", err);
	cr_assert_eq(o.type, BENCH_ECHO);
	cr_assert_eq(o.payload, 65535);
	cr_assert_eq(o.connections, 1000);
	cr_assert_eq(o.threads, 2);
	cr_assert_float_eq(o.rate, 2500.5, 1e-9);
	cr_assert_float_eq(o.duration, 0.5, 1e-9);
	cr_assert(o.json);
	cr_assert_eq(o.auth_user_len, 5);
	cr_assert(memcmp(o.auth_user, "alice", 5) == 0);
	cr_assert_str_eq(o.auth_token, "s3:cret", "the token may hold ':'");
}

Test(benchopt, flood_and_targets)
{
	struct benchopt o;
	char err[BENCHOPT_ERR_MAX];
	char *a1[] = { "net001-bench", "--flood", "--receivers", "10" };
	cr_assert_eq(benchopt_parse(&o, 4, a1, err), 0, "%s", err);
	cr_assert(o.flood);
	cr_assert_eq(o.type, BENCH_BROADCAST, "--flood implies broadcast");
	cr_assert_eq(o.connections, 1, "one publisher by default");
	cr_assert_eq(o.target, TARGET_NET001);
	cr_assert_not(o.pipeline_given);

	/* Open loop flood: broadcasts/s on schedule. */
	char *ar[] = { "net001-bench", "--flood", "--rate", "2500", "--receivers", "4" };
	cr_assert_eq(benchopt_parse(&o, 6, ar, err), 0, "%s", err);
	cr_assert(o.flood);
	cr_assert_float_eq(o.rate, 2500.0, 1e-9);
	cr_assert_eq(o.check_every, 16, "the flood checks one message in 16 fully by default");

	char *ac[] = { "net001-bench", "--flood", "--check-every", "1" };
	cr_assert_eq(benchopt_parse(&o, 4, ac, err), 0, "%s", err);
	cr_assert_eq(o.check_every, 1);

	char *a2[] = { "net001-bench", "--target=redis", "--connections", "3", "--pipeline", "8" };
	cr_assert_eq(benchopt_parse(&o, 6, a2, err), 0, "%s", err);
	cr_assert(o.flood, "redis and nats run the flood");
	cr_assert_eq(o.type, BENCH_BROADCAST);
	cr_assert_eq(o.target, TARGET_REDIS);
	cr_assert_eq(o.connections, 3);
	cr_assert(o.pipeline_given);
	cr_assert_str_eq(benchopt_target_name(o.target), "redis");

	char *a3[] = { "net001-bench", "--csv", "--progress" };
	cr_assert_eq(benchopt_parse(&o, 3, a3, err), 0, "%s", err);
	cr_assert(o.csv);
	cr_assert(o.progress);

	char *a5[] = { "net001-bench", "--type", "broadcast", "--receivers", "4",
	               "--receivers-at", "5000,5001" };
	cr_assert_eq(benchopt_parse(&o, 7, a5, err), 0, "%s", err);
	cr_assert_eq(o.nreceivers_at, 2);
	cr_assert_eq(o.receivers_at[0], 5000);
	cr_assert_eq(o.receivers_at[1], 5001);

	char *a4[] = { "net001-bench", "--help", "--bogus" };
	cr_assert_eq(benchopt_parse(&o, 3, a4, err), 0, "--help stops the parse");
	cr_assert(o.help);
}

static struct bad_case bad[] = {
	{ { "--port", "0" }, "--port" },
	{ { "--port", "65536" }, "--port" },
	{ { "--port", "12ab" }, "--port" },
	{ { "--connections", "0" }, "--connections" },
	{ { "--connections", "-5" }, "--connections" },
	{ { "--threads", "0" }, "--threads" },
	{ { "--threads", "3", "--connections", "2" }, "--threads" },
	{ { "--pipeline", "0" }, "--pipeline" },
	{ { "--duration", "0" }, "--duration" },
	{ { "--duration", "abc" }, "--duration" },
	{ { "--warmup", "-1" }, "--warmup" },
	{ { "--type", "pong" }, "--type" },
	{ { "--receivers", "10" }, "--receivers" },
	{ { "--payload", "65536", "--type", "echo" }, "--payload" },
	{ { "--payload", "16" }, "8 bytes" },
	{ { "--rate", "nan" }, "--rate" },
	{ { "--source-addrs", "255" }, "--source-addrs" },
	{ { "--source-addrs", "2", "--host", "10.0.0.1" }, "127" },
	{ { "--server-pid", "0" }, "--server-pid" },
	{ { "--auth", "nocolon" }, "USER:TOKEN" },
	{ { "--auth", ":tok" }, "user name" },
	{ { "--raw-echo", "--type", "data" }, "--raw-echo" },
	{ { "--connect-only", "--rate", "5" }, "--connect-only" },
	{ { "--bogus" }, "unknown option" },
	{ { "stray" }, "unexpected argument" },
	{ { "--port" }, "needs a value" },
	{ { "--json=1" }, "takes no value" },
	{ { "--json", "--csv" }, "exclude each other" },
	{ { "--progress", "--no-progress" }, "exclude each other" },
	{ { "--target", "kafka" }, "is not net001, redis or nats" },
	{ { "--target", "redis", "--type", "ping" }, "drop --type ping" },
	{ { "--target", "nats", "--auth", "a:b" }, "--auth" },
	{ { "--flood", "--type", "echo" }, "--flood needs --type broadcast" },
	{ { "--flood", "--connect-only" }, "drop --connect-only" },
	{ { "--flood", "--source-addrs", "2" }, "--source-addrs" },
	{ { "--check-every", "4" }, "--check-every applies to --flood" },
	{ { "--flood", "--check-every", "0" }, "--check-every" },
	{ { "--duration", "1e9" }, "out of range (0.001..86400 seconds)" },
	{ { "--receivers-at", "5000" }, "needs --type broadcast" },
	{ { "--type", "broadcast", "--receivers", "2", "--receivers-at", "0" }, "PORT" },
	{ { "--type", "broadcast", "--receivers", "2", "--receivers-at", "1,,2" }, "PORT" },
	{ { "--type", "broadcast", "--receivers", "2", "--receivers-at", "70000" }, "PORT" },
	{ { "--target", "nats", "--receivers", "2", "--receivers-at", "1" }, "drop --target" },
};

ParameterizedTestParameters(benchopt, rejects)
{
	return cr_make_param_array(struct bad_case, bad, sizeof bad / sizeof bad[0]);
}

ParameterizedTest(struct bad_case *c, benchopt, rejects)
{
	struct benchopt o;
	char err[BENCHOPT_ERR_MAX];
	cr_assert_eq(parse(&o, (const char (*)[40])c->args, err), -EINVAL,
	             "accepted %s %s", c->args[0], c->args[1]);
	cr_assert(strstr(err, c->err_has), "error '%s' lacks '%s'", err, c->err_has);
	cr_assert(!strchr(err, '\n'), "one line");
}
