/*
 * opt.h - the one command-line and environment parser of every net001
 * program: net001-server (core/config.c), net001-cli and its commands
 * (net/cmd/cli.c), net001-bench (perf/benchopt.c).
 *
 * A program describes its options in a table (struct opt): a long name, a
 * short alias, a kind (flag, string, whole number with a range, size with
 * k/m/g suffixes, decimal number, one of a list, or a function of its
 * own), an environment variable to fall back on, and where the value goes
 * (an offset into a struct of the caller's, "base"). opt_parse() walks
 * argv once, in order:
 *
 *   --name value, --name=value     long options (exact names only: no
 *                                  abbreviations, so a new option can never
 *                                  change what an old command line means)
 *   -x value, -xvalue              short aliases, where a table has them
 *   --                             ends the options
 *
 * A separate value may not start with "--" (`--port --debug` is "--port
 * needs a value", not a port called "--debug"); such a value can be given
 * as --name=--value. A repeated option's last value wins. After argv,
 * every option with an environment variable that argv did not give takes
 * the variable's value (an empty variable counts as unset): a flag beats
 * the environment, which beats the default (whatever the caller put in
 * base before the call).
 *
 * Errors are one line, no newline, naming the option as it was written
 * ("--port", "-c") or the variable ("environment variable RATE_LIMIT"),
 * with the offending value cut to 40 bytes and control characters shown
 * as '?'. The first problem wins; a bad flag is reported before a bad
 * environment value.
 *
 * Pure: no global state (unlike getopt's optind), prints nothing, exits
 * never; any thread may call it on its own struct opt_parser. Strings
 * stored by OPT_STRING point into argv or the environment and live as long
 * as those do. Nothing here needs more than libc, so the CLI can link it
 * without the server's libraries.
 */
#ifndef NET001_CORE_OPT_H
#define NET001_CORE_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum opt_kind {
	OPT_FLAG,   /* no value: sets the bool at off to true */
	OPT_STRING, /* a string: stores the const char * at off (non-empty
	               unless OPTF_EMPTY_OK) */
	OPT_UINT,   /* plain decimal digits (no sign, space, hex, fraction) in
	               [min, max]; stored as an unsigned integer of size bytes */
	OPT_SIZE,   /* like OPT_UINT, with an optional binary suffix k, m, g or
	               KiB, MiB, GiB (case ignored) */
	OPT_DOUBLE, /* decimal digits with an optional fraction and exponent
	               (no sign, nan or inf) in [dmin, dmax]; stored as double */
	OPT_CHOICE, /* exactly one of choices[] (NULL-terminated); stores the
	               index as an unsigned integer of size bytes */
	OPT_CALL,   /* the value is handed to fn, which stores it */
	OPT_STOP,   /* no value: parsing stops, opt_parse() returns id (> 0);
	               for --help and --version */
};

/* Flags of an option. */
#define OPTF_EMPTY_OK 1u  /* OPT_STRING: an empty value is allowed */

struct opt;

/*
 * An OPT_CALL handler: check val and store it into base. what names the
 * option for messages ("--host", "environment variable NET001_HOST").
 * Returns 0, or -EINVAL (or -ENOMEM) with a one-line message in err.
 */
typedef int opt_fn(void *base, const struct opt *o, const char *val,
                   const char *what, char *err, size_t errlen);

struct opt {
	const char *name;       /* long name without "--"; NULL: short only */
	char short_name;        /* 0: none */
	enum opt_kind kind;
	int id;                 /* the caller's: opt_given(), OPT_STOP's return */
	const char *env;        /* environment variable, or NULL */
	size_t off;             /* destination in base (not for OPT_STOP) */
	unsigned char size;     /* OPT_UINT, OPT_SIZE, OPT_CHOICE: 1, 2, 4 or 8 */
	uint64_t min, max;      /* OPT_UINT, OPT_SIZE */
	double dmin, dmax;      /* OPT_DOUBLE */
	const char *unit;       /* after a range in messages ("bytes"), or NULL */
	const char *const *choices; /* OPT_CHOICE */
	opt_fn *fn;             /* OPT_CALL */
	unsigned flags;         /* OPTF_* */
};

/* Where a value goes: OPT_AT(struct config, port). */
#define OPT_AT(type, field) \
	.off = offsetof(type, field), .size = (unsigned char)sizeof(((type *)0)->field)

/* Most options a table may hold. */
#define OPT_TABLE_MAX 64

struct opt_parser {
	/* Set by the caller. */
	const struct opt *opts;
	size_t nopts;           /* at most OPT_TABLE_MAX */
	void *base;
	const char *prefix;     /* before every message ("ping: "), or NULL */
	const char *hint;       /* after unknown-option and unexpected-argument
	                           messages (" (see --help)"), or NULL */
	bool positionals;       /* stop at the first argument that is not an
	                           option, or after "--", and leave the rest
	                           (subcommands and their arguments); otherwise
	                           such an argument is an error */
	/* Set by opt_parse(). */
	bool given[OPT_TABLE_MAX]; /* by table index: given in argv */
	bool from_env[OPT_TABLE_MAX]; /* by table index: taken from the environment */
	int next;               /* index of the first argument not parsed */
};

/*
 * Parse argv[first..argc). Returns 0; the id of an OPT_STOP option at the
 * moment it is met (later arguments are not looked at, the environment is
 * not read); or -EINVAL (-ENOMEM from a handler) with a one-line message
 * in err (err may be NULL). p->next is the index of the first positional
 * argument when p->positionals (argc when there is none), else argc.
 */
int opt_parse(struct opt_parser *p, int argc, char **argv, int first,
              char *err, size_t errlen);

/* Whether the option with this id was given in argv. */
bool opt_given(const struct opt_parser *p, int id);
/* Whether it was given in argv or by its environment variable. */
bool opt_set(const struct opt_parser *p, int id);

/*
 * The number parsers on their own, for values that come from elsewhere
 * (a subcommand's argument). what names the value in the message; the
 * ranges and messages are those of OPT_UINT, OPT_SIZE and OPT_DOUBLE.
 */
int opt_parse_uint(const char *val, uint64_t min, uint64_t max, const char *unit,
                   const char *what, uint64_t *out, char *err, size_t errlen);
int opt_parse_size(const char *val, uint64_t min, uint64_t max,
                   const char *what, uint64_t *out, char *err, size_t errlen);
int opt_parse_double(const char *val, double min, double max, const char *unit,
                     const char *what, double *out, char *err, size_t errlen);

/*
 * A value made safe for a one-line message: at most 40 bytes (then
 * "..."), control characters shown as '?'.
 */
struct opt_shown {
	char s[48];
};
struct opt_shown opt_show(const char *v);

#endif
