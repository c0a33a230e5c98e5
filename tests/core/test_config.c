/*
 * config tests: defaults, every flag in both spellings, environment vs
 * flag precedence, every kind of bad value for every numeric flag and
 * environment variable, the metrics-port rule, TLS rules, unknown and
 * incomplete arguments, repeats, help and version.
 *
 * Each Criterion test runs in its own process, so setenv() here cannot leak
 * into another test; the suite's init clears the variables the parser
 * reads so the runner's own environment cannot either.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

#define MAXARGS 32

static void clear_env(void)
{
	unsetenv("MAX_CONNECTIONS");
	unsetenv("RATE_LIMIT");
	unsetenv("GLOBAL_RATE_LIMIT");
}

TestSuite(config, .init = clear_env);

/* Parse a NULL-terminated list of arguments (program name added). */
static int parse(struct config *c, char *err, size_t errlen, ...)
{
	char *argv[MAXARGS + 1];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"net001-server";
	va_start(ap, errlen);
	for (char *a; (a = va_arg(ap, char *)) != NULL;) {
		cr_assert_lt(argc, MAXARGS);
		argv[argc++] = a;
	}
	va_end(ap);
	argv[argc] = NULL;
	memset(err, 'X', errlen - 1);
	err[errlen - 1] = '\0';
	return config_parse(c, argc, argv, err, errlen);
}

#define PARSE(c, err, ...) parse(c, err, sizeof(err), __VA_ARGS__, (char *)NULL)

/* A parse that must succeed. */
#define PARSE_OK(c, ...)                                                        \
	do {                                                                    \
		char err_[256];                                                 \
		int rc_ = PARSE(c, err_, __VA_ARGS__);                          \
		cr_assert_eq(rc_, 0, "parse failed (%d): %s", rc_, err_);       \
	} while (0)

/* A parse that must fail with a one-line message containing want. */
static void expect_fail(const char *want, struct config *c, int rc, const char *err)
{
	cr_assert_eq(rc, -EINVAL, "expected -EINVAL, got %d (err '%s')", rc, err);
	cr_assert_neq(err[0], '\0', "empty message");
	cr_assert_neq(err[0], 'X', "message not written");
	cr_assert_null(strchr(err, '\n'), "message has a newline: '%s'", err);
	cr_assert_not_null(strstr(err, want), "message '%s' lacks '%s'", err, want);
	/* Nothing left allocated after a failure. */
	cr_assert_null(c->auth_file);
	cr_assert_null(c->cert);
	cr_assert_null(c->key);
}

#define PARSE_FAIL(want, c, ...)                                                \
	do {                                                                    \
		char err_[256];                                                 \
		int rc_ = PARSE(c, err_, __VA_ARGS__);                          \
		expect_fail(want, c, rc_, err_);                                \
	} while (0)

/* A readable temporary file; the name is written into path. */
static void temp_file(char path[64], const char *content)
{
	strcpy(path, "/tmp/net001-config-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static long online_threads(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		return CPU_COUNT(&set);
	return sysconf(_SC_NPROCESSORS_ONLN);
}

/* ---- defaults ----------------------------------------------------------- */

static void assert_defaults(const struct config *c)
{
	cr_assert_str_eq(c->host, "0.0.0.0");
	cr_assert_eq(c->port, 5000);
	cr_assert_eq(c->max_connections, NET001_MAX_CONNECTIONS_DEFAULT);
	cr_assert_eq(c->max_connections, 10000);
	long n = online_threads();
	cr_assert_eq(c->threads, (uint32_t)(n > 1024 ? 1024 : n));
	cr_assert_eq(c->idle_timeout, 60);
	cr_assert_eq(c->rate_limit, 1000);
	cr_assert_eq(c->global_rate_limit, 50000);
	cr_assert_eq(c->max_payload, 65535);
	cr_assert_eq(c->metrics_port, 6000);
	cr_assert_eq(c->max_output, 8u << 20);
	cr_assert_null(c->auth_file);
	cr_assert_not(c->debug);
	cr_assert_not(c->tls);
	cr_assert_null(c->cert);
	cr_assert_null(c->key);
}

Test(config, defaults)
{
	struct config c;
	config_defaults(&c);
	assert_defaults(&c);
}

Test(config, no_arguments_gives_defaults)
{
	struct config c;
	memset(&c, 0x5a, sizeof c); /* parse must not rely on prior state */
	c.auth_file = c.cert = c.key = NULL;
	PARSE_OK(&c, NULL);
	assert_defaults(&c);
	config_free(&c);
}

/* ---- each flag ---------------------------------------------------------- */

Test(config, every_flag_separate_value)
{
	struct config c;
	char auth[64];
	temp_file(auth, "alice:00\n");

	PARSE_OK(&c, "--host", "127.0.0.1", "--port", "1234", "--max-connections", "77",
	         "--threads", "3", "--idle-timeout", "0", "--rate-limit", "0",
	         "--global-rate-limit", "123", "--max-payload", "8",
	         "--metrics-port", "9100", "--max-output", "65547",
	         "--auth-file", auth, "--debug");
	cr_assert_str_eq(c.host, "127.0.0.1");
	cr_assert_eq(c.port, 1234);
	cr_assert_eq(c.max_connections, 77);
	cr_assert_eq(c.threads, 3);
	cr_assert_eq(c.idle_timeout, 0);
	cr_assert_eq(c.rate_limit, 0);
	cr_assert_eq(c.global_rate_limit, 123);
	cr_assert_eq(c.max_payload, 8);
	cr_assert_eq(c.metrics_port, 9100);
	cr_assert_eq(c.max_output, 65547);
	cr_assert_str_eq(c.auth_file, auth);
	cr_assert(c.debug);
	cr_assert_not(c.tls);
	config_free(&c);
	cr_assert_null(c.auth_file);
	config_free(&c); /* idempotent */
	unlink(auth);
}

Test(config, every_flag_equals_value)
{
	struct config c;
	char auth[64], arg[96];
	temp_file(auth, "");
	snprintf(arg, sizeof arg, "--auth-file=%s", auth);

	PARSE_OK(&c, "--host=::1", "--port=65000", "--max-connections=1048576",
	         "--threads=1024", "--idle-timeout=86400", "--rate-limit=100000000",
	         "--global-rate-limit=1000000000", "--max-payload=65535",
	         "--metrics-port=0", "--max-output=16g", arg);
	cr_assert_str_eq(c.host, "::1");
	cr_assert_eq(c.port, 65000);
	cr_assert_eq(c.max_connections, 1048576);
	cr_assert_eq(c.threads, 1024);
	cr_assert_eq(c.idle_timeout, 86400);
	cr_assert_eq(c.rate_limit, 100000000);
	cr_assert_eq(c.global_rate_limit, 1000000000);
	cr_assert_eq(c.max_payload, 65535);
	cr_assert_eq(c.metrics_port, 0);
	cr_assert_eq(c.max_output, UINT64_C(16) << 30);
	cr_assert_str_eq(c.auth_file, auth);
	config_free(&c);
	unlink(auth);
}

Test(config, range_minimums)
{
	struct config c;
	PARSE_OK(&c, "--port", "1", "--max-connections", "1", "--threads", "1",
	         "--max-payload", "8", "--max-output", "65547");
	cr_assert_eq(c.port, 1);
	cr_assert_eq(c.metrics_port, 1001);
	cr_assert_eq(c.max_connections, 1);
	cr_assert_eq(c.threads, 1);
	config_free(&c);
}

Test(config, host_forms)
{
	static const char *const in[] = { "0.0.0.0", "10.1.2.3", "::", "::1",
	                                  "[::1]", "fe80::1", "localhost", "LocalHost",
	                                  "2001:db8::ff00:42:8329" };
	static const char *const want[] = { "0.0.0.0", "10.1.2.3", "::", "::1",
	                                    "::1", "fe80::1", "127.0.0.1", "127.0.0.1",
	                                    "2001:db8::ff00:42:8329" };
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		struct config c;
		PARSE_OK(&c, "--host", in[i]);
		cr_assert_str_eq(c.host, want[i], "--host %s gave %s", in[i], c.host);
		config_free(&c);
	}
}

Test(config, host_bad)
{
	static const char *const bad[] = { "", "1.2.3", "256.1.1.1", "example.com",
	                                   "::g", "[::1", "1.2.3.4 ", " 1.2.3.4",
	                                   "1.2.3.4:80", "[]",
	                                   "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:1" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct config c;
		PARSE_FAIL("--host", &c, "--host", bad[i]);
	}
}

Test(config, max_output_suffixes)
{
	static const struct { const char *in; uint64_t want; } t[] = {
		{ "65547", 65547 }, { "100k", 100u << 10 }, { "100K", 100u << 10 },
		{ "100KiB", 100u << 10 }, { "100kib", 100u << 10 }, { "8m", 8u << 20 },
		{ "8M", 8u << 20 }, { "8MiB", 8u << 20 }, { "1g", 1u << 30 },
		{ "2G", UINT64_C(2) << 30 }, { "3GiB", UINT64_C(3) << 30 },
		{ "16GiB", UINT64_C(16) << 30 }, { "0064k", 64u << 10 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct config c;
		char err[256];
		int rc = PARSE(&c, err, "--max-output", t[i].in);
		if (t[i].want < CONFIG_MAX_OUTPUT_MIN) {
			expect_fail("out of range", &c, rc, err);
			continue;
		}
		cr_assert_eq(rc, 0, "%s: %s", t[i].in, err);
		cr_assert_eq(c.max_output, t[i].want, "%s", t[i].in);
		config_free(&c);
	}
}

Test(config, debug_and_tls)
{
	struct config c;
	char cert[64], key[64];
	temp_file(cert, "cert");
	temp_file(key, "key");

	char err[256];
	int rc = PARSE(&c, err, "--tls", "--cert", cert, "--key", key, "--debug");
	if (!HAVE_TLS) {
		expect_fail("no TLS support", &c, rc, err);
	} else {
		cr_assert_eq(rc, 0, "%s", err);
		cr_assert(c.tls);
		cr_assert(c.debug);
		cr_assert_str_eq(c.cert, cert);
		cr_assert_str_eq(c.key, key);
		config_free(&c);
		cr_assert_null(c.cert);
		cr_assert_null(c.key);
	}
	unlink(cert);
	unlink(key);
}

Test(config, tls_needs_cert_and_key)
{
	struct config c;
	char cert[64];
	temp_file(cert, "cert");

	PARSE_FAIL("--tls needs", &c, "--tls");
	PARSE_FAIL("--tls needs", &c, "--tls", "--cert", cert);
	PARSE_FAIL("--tls needs", &c, "--key", cert, "--tls");
	PARSE_FAIL("without --tls", &c, "--cert", cert, "--key", cert);
	PARSE_FAIL("--cert", &c, "--tls", "--cert", "/nonexistent/cert.pem", "--key", cert);
	unlink(cert);
}

Test(config, flag_files_must_be_readable)
{
	struct config c;
	char path[64];
	temp_file(path, "");

	PARSE_FAIL("--auth-file", &c, "--auth-file", "/nonexistent/net001-users");
	PARSE_FAIL("No such file", &c, "--auth-file=/nonexistent/net001-users");
	PARSE_FAIL("is a directory", &c, "--auth-file", "/tmp");
	PARSE_FAIL("empty file name", &c, "--auth-file", "");
	PARSE_FAIL("--key", &c, "--tls", "--cert", path, "--key", "/nonexistent");
	unlink(path);
}

Test(config, auth_file_permission_denied)
{
	if (geteuid() == 0)
		cr_skip_test("root reads any file; permission check needs a normal user");
	struct config c;
	char path[64];
	temp_file(path, "alice:00\n");
	cr_assert_eq(chmod(path, 0), 0);
	PARSE_FAIL("Permission denied", &c, "--auth-file", path);
	unlink(path);
}

/* ---- environment -------------------------------------------------------- */

Test(config, environment_values)
{
	struct config c;
	setenv("MAX_CONNECTIONS", "42", 1);
	setenv("RATE_LIMIT", "0", 1);
	setenv("GLOBAL_RATE_LIMIT", "7", 1);
	PARSE_OK(&c, NULL);
	cr_assert_eq(c.max_connections, 42);
	cr_assert_eq(c.rate_limit, 0);
	cr_assert_eq(c.global_rate_limit, 7);
	config_free(&c);
}

Test(config, flag_beats_environment)
{
	struct config c;
	setenv("MAX_CONNECTIONS", "42", 1);
	setenv("RATE_LIMIT", "5", 1);
	setenv("GLOBAL_RATE_LIMIT", "7", 1);
	PARSE_OK(&c, "--max-connections", "43", "--rate-limit=6", "--global-rate-limit", "8");
	cr_assert_eq(c.max_connections, 43);
	cr_assert_eq(c.rate_limit, 6);
	cr_assert_eq(c.global_rate_limit, 8);
	config_free(&c);

	/* Only the flagged one is overridden. */
	PARSE_OK(&c, "--rate-limit", "9");
	cr_assert_eq(c.max_connections, 42);
	cr_assert_eq(c.rate_limit, 9);
	cr_assert_eq(c.global_rate_limit, 7);
	config_free(&c);
}

Test(config, flag_hides_bad_environment)
{
	/* The flag wins, so the variable is never looked at. */
	struct config c;
	setenv("RATE_LIMIT", "lots", 1);
	PARSE_OK(&c, "--rate-limit", "10");
	cr_assert_eq(c.rate_limit, 10);
	config_free(&c);
}

Test(config, empty_environment_is_unset)
{
	struct config c;
	setenv("MAX_CONNECTIONS", "", 1);
	setenv("RATE_LIMIT", "", 1);
	setenv("GLOBAL_RATE_LIMIT", "", 1);
	PARSE_OK(&c, NULL);
	assert_defaults(&c);
	config_free(&c);
}

/* ---- bad numbers: every kind for every flag and variable ---------------- */

struct bad_case {
	char name[24];      /* flag without "--", or environment variable */
	bool env;
	bool equals;        /* --flag=value rather than --flag value */
	char value[40];
	char want[40];      /* expected in the message */
};

struct num_flag {
	const char *name;
	const char *env;
	const char *below;  /* smallest out-of-range value below, or NULL */
	const char *above;  /* smallest out-of-range value above */
};

static const struct num_flag num_flags[] = {
	{ "port",              NULL,                "0", "65536" },
	{ "max-connections",   "MAX_CONNECTIONS",   "0", "1048577" },
	{ "threads",           NULL,                "0", "1025" },
	{ "idle-timeout",      NULL,                NULL, "86401" },
	{ "rate-limit",        "RATE_LIMIT",        NULL, "100000001" },
	{ "global-rate-limit", "GLOBAL_RATE_LIMIT", NULL, "1000000001" },
	{ "max-payload",       NULL,                "7", "65536" },
	{ "metrics-port",      NULL,                NULL, "65536" },
	{ "max-output",        NULL,                "65546", "17179869185" },
};

static const struct { const char *value, *want; } bad_kinds[] = {
	{ "",                        "empty" },
	{ "-1",                      "negative" },
	{ "-0",                      "negative" },
	{ "abc",                     "not a" },
	{ "12x",                     "not a" },
	{ "12 ",                     "not a" },
	{ " 12",                     "not a" },
	{ "+12",                     "not a" },
	{ "0x10",                    "not a" },
	{ "1.5",                     "not a" },
	{ "1e3",                     "not a" },
	{ "18446744073709551616",    "too large" },  /* 2^64 */
	{ "99999999999999999999999", "too large" },
	{ "4294967296",              "out of range" }, /* 2^32: no silent wrap */
};

static struct bad_case bad_cases[512];

static void add_case(size_t *n, const char *name, bool env, bool equals,
                     const char *value, const char *want)
{
	struct bad_case *b = &bad_cases[(*n)++];
	cr_assert_leq(*n, sizeof bad_cases / sizeof bad_cases[0]);
	memset(b, 0, sizeof *b);
	snprintf(b->name, sizeof b->name, "%s", name);
	b->env = env;
	b->equals = equals;
	snprintf(b->value, sizeof b->value, "%s", value);
	snprintf(b->want, sizeof b->want, "%s", want);
}

ParameterizedTestParameters(config, bad_numbers)
{
	size_t n = 0;
	for (size_t f = 0; f < sizeof num_flags / sizeof num_flags[0]; f++) {
		const struct num_flag *nf = &num_flags[f];
		for (size_t k = 0; k < sizeof bad_kinds / sizeof bad_kinds[0]; k++) {
			const char *want = bad_kinds[k].want;
			/* The size parser names sizes, not whole numbers; 2^32
			 * bytes is a valid size, the top is 16 GiB. */
			if (strcmp(nf->name, "max-output") == 0 && k + 1 == sizeof bad_kinds / sizeof bad_kinds[0])
				continue;
			add_case(&n, nf->name, false, k % 2, bad_kinds[k].value, want);
			add_case(&n, nf->name, false, !(k % 2), bad_kinds[k].value, want);
			/* An empty variable means unset, not bad. */
			if (nf->env && bad_kinds[k].value[0])
				add_case(&n, nf->env, true, false, bad_kinds[k].value, want);
		}
		if (nf->below) {
			add_case(&n, nf->name, false, false, nf->below, "out of range");
			if (nf->env)
				add_case(&n, nf->env, true, false, nf->below, "out of range");
		}
		add_case(&n, nf->name, false, true, nf->above, "out of range");
		if (nf->env)
			add_case(&n, nf->env, true, false, nf->above, "out of range");
	}
	/* Sizes: bad suffixes, and limits written with suffixes. */
	static const char *const bad_sizes[][2] = {
		{ "8MB", "unknown suffix" }, { "8mb", "unknown suffix" },
		{ "8Mi", "unknown suffix" }, { "8MiBs", "unknown suffix" },
		{ "1t", "not a size" }, { "8 m", "not a size" }, { "m", "not a size" },
		{ "k8", "not a size" }, { "64k", "out of range" }, { "17g", "out of range" },
		{ "18014398509481984k", "too large" }, /* 2^54 KiB overflows */
		{ "-8m", "negative" },
	};
	for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++)
		add_case(&n, "max-output", false, i % 2, bad_sizes[i][0], bad_sizes[i][1]);
	return cr_make_param_array(struct bad_case, bad_cases, n);
}

ParameterizedTest(struct bad_case *b, config, bad_numbers)
{
	struct config c;
	char err[256], flag[96], what[64];

	if (b->env) {
		cr_assert_eq(setenv(b->name, b->value, 1), 0);
		int rc = PARSE(&c, err, NULL);
		snprintf(what, sizeof what, "environment variable %s", b->name);
		expect_fail(what, &c, rc, err);
		expect_fail(b->want, &c, rc, err);
		return;
	}
	int rc;
	snprintf(what, sizeof what, "--%s", b->name);
	if (b->equals) {
		snprintf(flag, sizeof flag, "--%s=%s", b->name, b->value);
		rc = PARSE(&c, err, flag);
	} else {
		rc = PARSE(&c, err, what, b->value);
	}
	expect_fail(what, &c, rc, err);
	expect_fail(b->want, &c, rc, err);
}

/* ---- metrics port ------------------------------------------------------- */

Test(config, metrics_port_follows_port)
{
	struct config c;
	PARSE_OK(&c, "--port", "8080");
	cr_assert_eq(c.metrics_port, 9080);
	config_free(&c);
	PARSE_OK(&c, "--port", "64535");
	cr_assert_eq(c.metrics_port, 65535);
	config_free(&c);
}

Test(config, metrics_port_overflow)
{
	struct config c;
	PARSE_FAIL("--metrics-port", &c, "--port", "64536");
	PARSE_FAIL("above 65535", &c, "--port=65535");

	/* Giving the metrics port (or turning it off) makes it valid. */
	PARSE_OK(&c, "--port", "65535", "--metrics-port", "0");
	cr_assert_eq(c.port, 65535);
	cr_assert_eq(c.metrics_port, 0);
	config_free(&c);
	PARSE_OK(&c, "--metrics-port", "9000", "--port", "65000");
	cr_assert_eq(c.metrics_port, 9000);
	config_free(&c);
}

Test(config, metrics_port_same_as_port)
{
	struct config c;
	PARSE_FAIL("same as --port", &c, "--port", "7000", "--metrics-port", "7000");
	PARSE_FAIL("same as --port", &c, "--metrics-port", "5000");
}

/* ---- argument structure ------------------------------------------------- */

Test(config, unknown_flags)
{
	struct config c;
	PARSE_FAIL("unknown option '--nope'", &c, "--nope");
	PARSE_FAIL("unknown option '--nope'", &c, "--nope=1");
	PARSE_FAIL("unknown option '--por'", &c, "--por", "1"); /* no abbreviations */
	PARSE_FAIL("unknown option '-x'", &c, "-x");
	PARSE_FAIL("unknown option '-p'", &c, "-p", "5000");
	PARSE_FAIL("unexpected argument 'serve'", &c, "serve");
	PARSE_FAIL("unexpected argument '-'", &c, "-");
	PARSE_FAIL("unexpected argument 'x'", &c, "--", "x");
	PARSE_FAIL("unknown option '--PORT'", &c, "--PORT", "1");
	/* An error after a file flag frees the copy. */
	char path[64];
	temp_file(path, "");
	PARSE_FAIL("unknown option", &c, "--auth-file", path, "--bogus");
	unlink(path);
}

Test(config, double_dash_ends_options)
{
	struct config c;
	PARSE_OK(&c, "--port", "7", "--");
	cr_assert_eq(c.port, 7);
	config_free(&c);
}

Test(config, missing_values)
{
	static const char *const flags[] = { "--host", "--port", "--max-connections",
	                                     "--threads", "--idle-timeout", "--rate-limit",
	                                     "--global-rate-limit", "--max-payload",
	                                     "--metrics-port", "--max-output",
	                                     "--auth-file", "--cert", "--key" };
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		struct config c;
		char want[64];
		snprintf(want, sizeof want, "%s needs a value", flags[i]);
		PARSE_FAIL(want, &c, flags[i]);
		PARSE_FAIL(want, &c, flags[i], "--debug");
	}
}

Test(config, switches_take_no_value)
{
	struct config c;
	PARSE_FAIL("--debug takes no value", &c, "--debug=1");
	PARSE_FAIL("--tls takes no value", &c, "--tls=yes");
	PARSE_FAIL("--help takes no value", &c, "--help=1");
}

Test(config, repeated_flag_last_wins)
{
	struct config c;
	char a[64], b[64];
	temp_file(a, "");
	temp_file(b, "");
	setenv("RATE_LIMIT", "3", 1);
	PARSE_OK(&c, "--port", "1111", "--port=2222", "--auth-file", a, "--auth-file", b,
	         "--host", "::1", "--host", "10.0.0.1", "--rate-limit", "1", "--rate-limit", "2",
	         "--max-output", "1g", "--max-output", "100000", "--debug", "--debug");
	cr_assert_eq(c.port, 2222);
	cr_assert_eq(c.metrics_port, 3222);
	cr_assert_str_eq(c.auth_file, b);
	cr_assert_str_eq(c.host, "10.0.0.1");
	cr_assert_eq(c.rate_limit, 2);
	cr_assert_eq(c.max_output, 100000);
	cr_assert(c.debug);
	config_free(&c); /* under ASan: the first auth-file copy was freed too */
	unlink(a);
	unlink(b);
}

Test(config, first_problem_wins)
{
	struct config c;
	PARSE_FAIL("--port", &c, "--port", "x", "--threads", "y");
	PARSE_FAIL("--threads", &c, "--threads", "y", "--port", "x");
	/* A bad flag is reported before a bad environment value. */
	setenv("RATE_LIMIT", "bad", 1);
	PARSE_FAIL("--port", &c, "--port", "x");
	PARSE_FAIL("RATE_LIMIT", &c, "--port", "6");
}

Test(config, long_values_stay_one_short_line)
{
	struct config c;
	char big[600], err[256];
	memset(big, '7', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	int rc = PARSE(&c, err, "--port", big);
	expect_fail("too large", &c, rc, err);
	cr_assert_lt(strlen(err), 160, "message is %zu bytes", strlen(err));

	/* Control characters in a value do not break the line. */
	rc = PARSE(&c, err, "--host", "1.2.3.4\nX: injected");
	expect_fail("--host", &c, rc, err);
}

Test(config, null_error_buffer)
{
	struct config c;
	char *argv[] = { (char *)"net001-server", (char *)"--port", (char *)"0", NULL };
	cr_assert_eq(config_parse(&c, 3, argv, NULL, 0), -EINVAL);
}

/* ---- help and version --------------------------------------------------- */

Test(config, usage_lists_everything)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cr_assert_not_null(f);
	config_usage(f);
	fclose(f);

	static const char *const must[] = {
		"--host", "--port", "--max-connections", "--threads", "--idle-timeout",
		"--rate-limit", "--global-rate-limit", "--max-payload", "--metrics-port",
		"--max-output", "--auth-file", "--tls", "--cert", "--key", "--debug",
		"--help", "--version", "MAX_CONNECTIONS", "RATE_LIMIT", "GLOBAL_RATE_LIMIT",
		"0.0.0.0", "5000", "10000", "1000", "50000", "65535", "port + 1000", "8m",
		"default 60",
	};
	for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
		cr_assert_not_null(strstr(text, must[i]), "usage lacks '%s'", must[i]);
	free(text);
}

Test(config, help_returns_one, .init = cr_redirect_stdout)
{
	struct config c;
	char err[64];
	cr_assert_eq(PARSE(&c, err, "--help"), 1);
	cr_assert_eq(PARSE(&c, err, "-h"), 1);
	cr_assert_eq(PARSE(&c, err, "--port", "1", "--help", "--bogus"), 1);
	cr_assert_null(c.auth_file);
	fflush(stdout);
	cr_assert_stdout_neq_str("");
}

Test(config, help_text_on_stdout, .init = cr_redirect_stdout)
{
	struct config c;
	char err[64];
	cr_assert_eq(PARSE(&c, err, "--help"), 1);
	fflush(stdout);

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	config_usage(f);
	fclose(f);
	cr_assert_stdout_eq_str(text);
	free(text);
}

Test(config, version, .init = cr_redirect_stdout)
{
	struct config c;
	char err[64];
	cr_assert_eq(PARSE(&c, err, "--version"), 1);
	cr_assert_eq(PARSE(&c, err, "-V"), 1);
	fflush(stdout);
	cr_assert_stdout_eq_str("net001-server " NET001_VERSION "\n"
	                        "net001-server " NET001_VERSION "\n");
}

/* ---- socket address ----------------------------------------------------- */

Test(config, sockaddr)
{
	struct config c;
	struct sockaddr_storage ss;
	socklen_t len;

	PARSE_OK(&c, "--host", "127.0.0.1", "--port", "4321");
	cr_assert_eq(config_sockaddr(&c, c.port, &ss, &len), 0);
	cr_assert_eq(ss.ss_family, AF_INET);
	cr_assert_eq(len, sizeof(struct sockaddr_in));
	cr_assert_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 4321);
	cr_assert_eq(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x7f000001);
	config_free(&c);

	PARSE_OK(&c, "--host", "[::1]");
	cr_assert_eq(config_sockaddr(&c, (uint16_t)c.metrics_port, &ss, &len), 0);
	cr_assert_eq(ss.ss_family, AF_INET6);
	cr_assert_eq(len, sizeof(struct sockaddr_in6));
	cr_assert_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 6000);
	cr_assert(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr));
	config_free(&c);

	strcpy(c.host, "nonsense");
	cr_assert_eq(config_sockaddr(&c, 1, &ss, &len), -EINVAL);
}

/* ---- log format ----------------------------------------------------------- */

Test(config, log_format)
{
	struct config c;
	unsetenv("NET001_LOG_FORMAT");
	PARSE_OK(&c, "--port", "5001");
	cr_assert_eq(c.log_format, LOG_FORMAT_TEXT);
	PARSE_OK(&c, "--log-format", "json");
	cr_assert_eq(c.log_format, LOG_FORMAT_JSON);
	PARSE_OK(&c, "--log-format=json", "--log-format", "text");
	cr_assert_eq(c.log_format, LOG_FORMAT_TEXT);

	setenv("NET001_LOG_FORMAT", "json", 1);
	PARSE_OK(&c, "--port", "5001");
	cr_assert_eq(c.log_format, LOG_FORMAT_JSON);
	PARSE_OK(&c, "--log-format", "text");
	cr_assert_eq(c.log_format, LOG_FORMAT_TEXT, "the flag beats the variable");
	setenv("NET001_LOG_FORMAT", "", 1);
	PARSE_OK(&c, "--port", "5001");
	cr_assert_eq(c.log_format, LOG_FORMAT_TEXT, "an empty variable counts as unset");

	PARSE_FAIL("--log-format: 'JSON' is not text or json", &c, "--log-format", "JSON");
	PARSE_FAIL("--log-format", &c, "--log-format");
	setenv("NET001_LOG_FORMAT", "xml", 1);
	PARSE_FAIL("environment variable NET001_LOG_FORMAT: 'xml' is not text or json", &c,
	           "--port", "5001");
}
