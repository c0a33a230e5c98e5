/*
 * core/opt: the shared option parser on a table of every kind: spellings,
 * storage sizes, ranges and messages, environment fallbacks and their
 * precedence, positionals (subcommands), prefixes and hints, stop options.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/opt.h"

struct dst {
	bool flag;
	const char *str;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	uint64_t size;
	double d;
	unsigned choice;
	char called[32];
};

enum { I_HELP = 1, I_FLAG, I_STR, I_U8, I_U16, I_U32, I_U64, I_SIZE, I_D, I_CHOICE, I_CALL };

static const char *const colours[] = { "red", "green", "blue", NULL };

static int call(void *base, const struct opt *o, const char *val, const char *what,
                char *err, size_t errlen)
{
	struct dst *d = base;
	(void)o;
	if (strcmp(val, "bad") == 0) {
		snprintf(err, errlen, "%s: no", what);
		return -EINVAL;
	}
	snprintf(d->called, sizeof d->called, "%s", val);
	return 0;
}

static const struct opt table[] = {
	{ .name = "flag", .short_name = 'f', .kind = OPT_FLAG, .id = I_FLAG, .env = "T_FLAG",
	  OPT_AT(struct dst, flag) },
	{ .name = "str", .short_name = 's', .kind = OPT_STRING, .id = I_STR, .env = "T_STR",
	  OPT_AT(struct dst, str) },
	{ .name = "u8", .kind = OPT_UINT, .id = I_U8, .min = 1, .max = 200, OPT_AT(struct dst, u8) },
	{ .name = "u16", .kind = OPT_UINT, .id = I_U16, .max = 65535, .env = "T_U16",
	  OPT_AT(struct dst, u16) },
	{ .name = "u32", .short_name = 'n', .kind = OPT_UINT, .id = I_U32, .min = 0,
	  .max = UINT32_MAX, .unit = "ms", OPT_AT(struct dst, u32) },
	{ .name = "u64", .kind = OPT_UINT, .id = I_U64, .max = UINT64_MAX, OPT_AT(struct dst, u64) },
	{ .name = "size", .kind = OPT_SIZE, .id = I_SIZE, .min = 1024, .max = 1u << 30,
	  OPT_AT(struct dst, size) },
	{ .name = "d", .short_name = 'i', .kind = OPT_DOUBLE, .id = I_D, .dmin = 0.5, .dmax = 10,
	  .unit = "seconds", OPT_AT(struct dst, d) },
	{ .name = "colour", .kind = OPT_CHOICE, .id = I_CHOICE, .choices = colours,
	  OPT_AT(struct dst, choice) },
	{ .name = "call", .kind = OPT_CALL, .id = I_CALL, .fn = call },
	{ .name = "help", .short_name = 'h', .kind = OPT_STOP, .id = I_HELP },
};

static struct opt_parser parser(struct dst *d)
{
	struct opt_parser p = { .opts = table, .nopts = sizeof table / sizeof table[0],
	                        .base = d, .hint = " (see --help)" };
	return p;
}

/* Parse a NULL-terminated argument list; argv[0] is added. */
static int run(struct opt_parser *p, char *err, ...)
{
	char *argv[32] = { "prog" };
	int argc = 1;
	va_list ap;
	va_start(ap, err);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	return opt_parse(p, argc, argv, 1, err, 256);
}

#define RUN(p, err, ...) run(p, err, __VA_ARGS__, (char *)NULL)

static void clear_env(void)
{
	unsetenv("T_FLAG");
	unsetenv("T_STR");
	unsetenv("T_U16");
}

TestSuite(opt, .init = clear_env);

Test(opt, every_kind_and_spelling)
{
	struct dst d = { .u16 = 7 };
	struct opt_parser p = parser(&d);
	char err[256];
	cr_assert_eq(RUN(&p, err, "--flag", "-s", "x y", "--u8=200", "--u16", "65535", "-n5",
	                 "--u64", "18446744073709551615", "--size", "2MiB", "-i", "2.5",
	                 "--colour=blue", "--call", "hello"), 0, "%s", err);
	cr_assert(d.flag);
	cr_assert_str_eq(d.str, "x y");
	cr_assert_eq(d.u8, 200);
	cr_assert_eq(d.u16, 65535);
	cr_assert_eq(d.u32, 5, "-n5: attached short value");
	cr_assert_eq(d.u64, UINT64_MAX);
	cr_assert_eq(d.size, 2u << 20);
	cr_assert_float_eq(d.d, 2.5, 1e-12);
	cr_assert_eq(d.choice, 2);
	cr_assert_str_eq(d.called, "hello");
	cr_assert(opt_given(&p, I_U8));
	cr_assert(opt_given(&p, I_CALL));
	cr_assert_not(opt_given(&p, I_HELP));
}

Test(opt, defaults_stay_and_last_wins)
{
	struct dst d = { .u16 = 7, .str = "default" };
	struct opt_parser p = parser(&d);
	char err[256];
	cr_assert_eq(RUN(&p, err, "--u8", "1", "--u8", "2"), 0, "%s", err);
	cr_assert_eq(d.u8, 2);
	cr_assert_eq(d.u16, 7);
	cr_assert_str_eq(d.str, "default");
	cr_assert_not(opt_given(&p, I_U16));
	cr_assert_not(opt_set(&p, I_U16));
}

static void fails(struct dst *d, const char *want, char **args)
{
	struct opt_parser p = parser(d);
	char *argv[16] = { "prog" };
	int argc = 1;
	while (args[argc - 1])
		argv[argc] = args[argc - 1], argc++;
	char err[256];
	memset(err, 'X', sizeof err - 1);
	err[sizeof err - 1] = '\0';
	cr_assert_eq(opt_parse(&p, argc, argv, 1, err, sizeof err), -EINVAL, "accepted for '%s'",
	             want);
	cr_assert_str_eq(err, want);
}

#define FAILS(want, ...) fails(&d, want, (char *[]){ __VA_ARGS__, NULL })

Test(opt, messages)
{
	struct dst d = { 0 };
	FAILS("unknown option '--nope' (see --help)", "--nope");
	FAILS("unknown option '--fla' (see --help)", "--fla");
	FAILS("unknown option '-z' (see --help)", "-z");
	FAILS("unknown option '-fx' (see --help)", "-fx");
	FAILS("unexpected argument 'word' (see --help)", "word");
	FAILS("unexpected argument '-' (see --help)", "-");
	FAILS("unexpected argument 'x' (see --help)", "--", "x");
	FAILS("--str needs a value", "--str");
	FAILS("--str needs a value", "--str", "--flag");
	FAILS("-s needs a value", "-s");
	FAILS("--flag takes no value", "--flag=1");
	FAILS("--str: empty value", "--str=");
	FAILS("--u8: empty value, expected a number", "--u8", "");
	FAILS("--u8: '-1' is negative", "--u8", "-1");
	FAILS("--u8: '0x10' is not a whole decimal number", "--u8", "0x10");
	FAILS("--u8: '0' is out of range (1..200)", "--u8", "0");
	FAILS("--u8: '201' is out of range (1..200)", "--u8=201");
	FAILS("-n: '4294967296' is out of range (0..4294967295 ms)", "-n", "4294967296");
	FAILS("--u64: '18446744073709551616' is too large (at most 18446744073709551615)",
	      "--u64", "18446744073709551616");
	FAILS("--size: '1023' is out of range (1024..1073741824 bytes)", "--size", "1023");
	FAILS("--size: '2g' is out of range (1024..1073741824 bytes)", "--size", "2g");
	FAILS("--size: '2t' is not a size (bytes, or a number with k, m or g)", "--size", "2t");
	FAILS("--size: '2mb' has an unknown suffix (use k, m, g or KiB, MiB, GiB)", "--size", "2mb");
	FAILS("-i: 'nan' is not a number", "-i", "nan");
	FAILS("-i: '1,5' is not a number", "-i", "1,5");
	FAILS("--d: '11' is out of range (0.5..10 seconds)", "--d", "11");
	FAILS("--d: '-1' is negative", "--d=-1");
	FAILS("--colour: 'pink' is not red, green or blue", "--colour", "pink");
	FAILS("--call: no", "--call", "bad");
	FAILS("--u8: 'a?b' is not a whole decimal number", "--u8", "a\nb");
}

Test(opt, one_short_line_whatever_the_value)
{
	struct dst d = { 0 };
	struct opt_parser p = parser(&d);
	char big[500], err[256];
	memset(big, '9', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[3] = 'x';
	cr_assert_eq(RUN(&p, err, "--u8", big), -EINVAL);
	cr_assert_lt(strlen(err), 120, "%s", err);
	cr_assert_not_null(strstr(err, "..."), "cut: %s", err);
	cr_assert_null(strchr(err, '\n'));
}

Test(opt, the_first_problem_wins)
{
	struct dst d = { 0 };
	struct opt_parser p = parser(&d);
	char err[256];
	cr_assert_eq(RUN(&p, err, "--size", "1k", "--u8", "x"), -EINVAL);
	cr_assert(strncmp(err, "--u8", 4) == 0, "1k is fine, x is not: %s", err);
	cr_assert_eq(d.size, 1024);
	cr_assert_eq(RUN(&p, err, "--size", "1", "--u8", "x"), -EINVAL);
	cr_assert(strncmp(err, "--size", 6) == 0, "the first problem wins: %s", err);
}

Test(opt, environment_precedence)
{
	struct dst d = { .u16 = 7 };
	struct opt_parser p = parser(&d);
	char err[256];
	setenv("T_U16", "300", 1);
	setenv("T_STR", "from env", 1);
	setenv("T_FLAG", "1", 1);
	cr_assert_eq(RUN(&p, err, "--u8", "3"), 0, "%s", err);
	cr_assert_eq(d.u16, 300, "environment beats the default");
	cr_assert_str_eq(d.str, "from env");
	cr_assert(d.flag);
	cr_assert(opt_set(&p, I_U16));
	cr_assert_not(opt_given(&p, I_U16));

	struct dst d2 = { 0 };
	p = parser(&d2);
	cr_assert_eq(RUN(&p, err, "--u16", "5", "-s", "flag"), 0, "%s", err);
	cr_assert_eq(d2.u16, 5, "a flag beats the environment");
	cr_assert_str_eq(d2.str, "flag");

	/* A bad variable names itself, after the flags are checked. */
	setenv("T_U16", "lots", 1);
	struct dst d3 = { 0 };
	p = parser(&d3);
	cr_assert_eq(RUN(&p, err, "--u8", "1"), -EINVAL);
	cr_assert_str_eq(err, "environment variable T_U16: 'lots' is not a whole decimal number");
	cr_assert_eq(RUN(&p, err, "--u8", "0"), -EINVAL);
	cr_assert(strncmp(err, "--u8", 4) == 0, "a bad flag first: %s", err);
	cr_assert_eq(RUN(&p, err, "--u16", "1"), 0, "a given flag hides a bad variable: %s", err);
	setenv("T_U16", "", 1);
	cr_assert_eq(RUN(&p, err, "--u8", "1"), 0, "empty is unset: %s", err);
	setenv("T_FLAG", "yes", 1);
	cr_assert_eq(RUN(&p, err, "--u8", "1"), -EINVAL);
	cr_assert_str_eq(err, "environment variable T_FLAG: 'yes' is not 0 or 1");
}

Test(opt, positionals_and_prefix)
{
	struct dst d = { 0 };
	struct opt_parser p = parser(&d);
	p.positionals = true;
	p.prefix = "cmd: ";
	p.hint = NULL;
	char err[256];
	char *a1[] = { "prog", "-f", "run", "-x", "--y" };
	cr_assert_eq(opt_parse(&p, 5, a1, 1, err, sizeof err), 0, "%s", err);
	cr_assert_eq(p.next, 2, "stops at the first word");
	cr_assert(d.flag);
	char *a2[] = { "prog", "--u8", "4", "--", "-f" };
	cr_assert_eq(opt_parse(&p, 5, a2, 1, err, sizeof err), 0, "%s", err);
	cr_assert_eq(p.next, 4, "after --");
	char *a3[] = { "prog", "-f" };
	cr_assert_eq(opt_parse(&p, 2, a3, 1, err, sizeof err), 0);
	cr_assert_eq(p.next, 2, "none: argc");
	char *a4[] = { "prog", "-", "x" };
	cr_assert_eq(opt_parse(&p, 3, a4, 1, err, sizeof err), 0);
	cr_assert_eq(p.next, 1, "'-' is an argument (stdin)");
	char *a5[] = { "prog", "sub", "-q" };
	cr_assert_eq(opt_parse(&p, 3, a5, 2, err, sizeof err), -EINVAL, "from index 2");
	cr_assert_str_eq(err, "cmd: unknown option '-q'");
}

Test(opt, stop_options)
{
	struct dst d = { 0 };
	struct opt_parser p = parser(&d);
	char err[256];
	cr_assert_eq(RUN(&p, err, "--u8", "1", "--help", "--bogus"), I_HELP);
	cr_assert_eq(RUN(&p, err, "-h"), I_HELP);
	cr_assert_eq(RUN(&p, err, "--help=1"), -EINVAL);
	cr_assert_str_eq(err, "--help takes no value");
	setenv("T_U16", "junk", 1);
	cr_assert_eq(RUN(&p, err, "--help"), I_HELP, "the environment is not read");
}

Test(opt, number_helpers)
{
	uint64_t u;
	double v;
	char err[128];
	cr_assert_eq(opt_parse_uint("42", 1, 50, NULL, "count", &u, err, sizeof err), 0);
	cr_assert_eq(u, 42);
	cr_assert_eq(opt_parse_uint("51", 1, 50, NULL, "count", &u, err, sizeof err), -EINVAL);
	cr_assert_str_eq(err, "count: '51' is out of range (1..50)");
	cr_assert_eq(opt_parse_size("64k", 0, UINT64_MAX, "sz", &u, err, sizeof err), 0);
	cr_assert_eq(u, 65536);
	cr_assert_eq(opt_parse_double(".25", 0, 1, NULL, "f", &v, err, sizeof err), 0);
	cr_assert_float_eq(v, 0.25, 1e-12);
	cr_assert_eq(opt_parse_double("1e-3", 0, 1, NULL, "f", &v, err, sizeof err), 0);
	cr_assert_float_eq(v, 0.001, 1e-12);
	cr_assert_eq(opt_parse_double("1e", 0, 1, NULL, "f", &v, err, sizeof err), -EINVAL);
	cr_assert_eq(opt_parse_double(".", 0, 1, NULL, "f", &v, err, sizeof err), -EINVAL);
	cr_assert_eq(opt_parse_double("inf", 0, 1e300, NULL, "f", &v, err, sizeof err), -EINVAL);
	cr_assert_eq(opt_parse_double("1e999", 0, 1e300, NULL, "f", &v, err, sizeof err), -EINVAL);
}
