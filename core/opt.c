/*
 * opt.c - the table-driven option parser. See opt.h.
 */
#include "core/opt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/errbuf.h"

struct opt_shown opt_show(const char *v)
{
	struct opt_shown o;
	size_t i;

	for (i = 0; v[i] && i < 40; i++)
		o.s[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
	if (v[i])
		memcpy(o.s + i, "...", 4);
	else
		o.s[i] = '\0';
	return o;
}

/* ---- numbers ------------------------------------------------------------- */

/* Why a number was refused. */
enum num_err {
	NUM_OK,
	NUM_EMPTY,
	NUM_NEGATIVE,
	NUM_JUNK,
	NUM_OVERFLOW,
	NUM_SUFFIX,
};

/* Plain decimal digits only: no sign, spaces, hex or octal. With end, the
 * digits may be followed by anything (a suffix), whose start goes there. */
static enum num_err digits_u64(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	if (!*s)
		return NUM_EMPTY;
	if (*s == '-')
		return NUM_NEGATIVE;
	if (!isdigit((unsigned char)*s))
		return NUM_JUNK;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return NUM_OVERFLOW;
		v = v * 10 + d;
	}
	*out = v;
	if (end) {
		*end = p;
		return NUM_OK;
	}
	return *p ? NUM_JUNK : NUM_OK;
}

/* Bytes, with an optional k/m/g (or KiB/MiB/GiB) binary suffix. */
static enum num_err digits_size(const char *s, uint64_t *out)
{
	const char *p;
	unsigned shift;
	enum num_err e = digits_u64(s, out, &p);

	if (e != NUM_OK)
		return e;
	switch (*p) {
	case '\0':
		return NUM_OK;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	default:
		return NUM_JUNK;
	}
	p++;
	if (*p && strcasecmp(p, "ib") != 0)
		return NUM_SUFFIX;
	if (*out > (UINT64_MAX >> shift))
		return NUM_OVERFLOW;
	*out <<= shift;
	return NUM_OK;
}

static int num_message(enum num_err e, const char *val, uint64_t max, bool size,
                       const char *what, char *err, size_t errlen)
{
	switch (e) {
	case NUM_OK:
		return 0;
	case NUM_EMPTY:
		errbuf_set(err, errlen, "%s: empty value, expected a number", what);
		break;
	case NUM_NEGATIVE:
		errbuf_set(err, errlen, "%s: '%s' is negative", what, opt_show(val).s);
		break;
	case NUM_JUNK:
		errbuf_set(err, errlen, "%s: '%s' is not a %s", what, opt_show(val).s,
		           size ? "size (bytes, or a number with k, m or g)"
		                : "whole decimal number");
		break;
	case NUM_SUFFIX:
		errbuf_set(err, errlen, "%s: '%s' has an unknown suffix "
		           "(use k, m, g or KiB, MiB, GiB)", what, opt_show(val).s);
		break;
	case NUM_OVERFLOW:
		errbuf_set(err, errlen, "%s: '%s' is too large (at most %llu)", what,
		           opt_show(val).s, (unsigned long long)max);
		break;
	}
	return -EINVAL;
}

static int range_check(uint64_t v, const char *val, uint64_t min, uint64_t max,
                       const char *unit, const char *what, char *err, size_t errlen)
{
	if (v >= min && v <= max)
		return 0;
	errbuf_set(err, errlen, "%s: '%s' is out of range (%llu..%llu%s%s)", what,
	           opt_show(val).s, (unsigned long long)min, (unsigned long long)max,
	           unit ? " " : "", unit ? unit : "");
	return -EINVAL;
}

int opt_parse_uint(const char *val, uint64_t min, uint64_t max, const char *unit,
                   const char *what, uint64_t *out, char *err, size_t errlen)
{
	uint64_t v = 0;
	int rc = num_message(digits_u64(val, &v, NULL), val, max, false, what, err, errlen);
	if (rc == 0)
		rc = range_check(v, val, min, max, unit, what, err, errlen);
	if (rc == 0)
		*out = v;
	return rc;
}

int opt_parse_size(const char *val, uint64_t min, uint64_t max,
                   const char *what, uint64_t *out, char *err, size_t errlen)
{
	uint64_t v = 0;
	int rc = num_message(digits_size(val, &v), val, max, true, what, err, errlen);
	if (rc == 0)
		rc = range_check(v, val, min, max, "bytes", what, err, errlen);
	if (rc == 0)
		*out = v;
	return rc;
}

/* digits [. digits] [e [+-] digits], or . digits ...: what strtod reads,
 * less signs, spaces, hex, nan and inf. */
static bool decimal_syntax(const char *s)
{
	const char *p = s;
	size_t mant = 0;

	while (isdigit((unsigned char)*p)) {
		p++;
		mant++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			p++;
			mant++;
		}
	}
	if (mant == 0)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

int opt_parse_double(const char *val, double min, double max, const char *unit,
                     const char *what, double *out, char *err, size_t errlen)
{
	if (!*val) {
		errbuf_set(err, errlen, "%s: empty value, expected a number", what);
		return -EINVAL;
	}
	if (*val == '-') {
		errbuf_set(err, errlen, "%s: '%s' is negative", what, opt_show(val).s);
		return -EINVAL;
	}
	if (!decimal_syntax(val)) {
		errbuf_set(err, errlen, "%s: '%s' is not a number", what, opt_show(val).s);
		return -EINVAL;
	}
	errno = 0;
	double v = strtod(val, NULL);
	if (!isfinite(v) || v < min || v > max) {
		errbuf_set(err, errlen, "%s: '%s' is out of range (%g..%g%s%s)", what,
		           opt_show(val).s, min, max, unit ? " " : "", unit ? unit : "");
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* ---- storing -------------------------------------------------------------- */

static void store_uint(void *base, const struct opt *o, uint64_t v)
{
	char *dst = (char *)base + o->off;
	switch (o->size) {
	case 1: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
	case 2: { uint16_t x = (uint16_t)v; memcpy(dst, &x, 2); break; }
	case 4: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
	default: memcpy(dst, &v, 8); break;
	}
}

/* One value for option o; what names it for messages. */
static int set_value(void *base, const struct opt *o, const char *val,
                     const char *what, char *err, size_t errlen)
{
	uint64_t u = 0;
	double d = 0;
	int rc;

	switch (o->kind) {
	case OPT_FLAG: {
		bool t = true;
		memcpy((char *)base + o->off, &t, sizeof t);
		return 0;
	}
	case OPT_STRING:
		if (!*val && !(o->flags & OPTF_EMPTY_OK)) {
			errbuf_set(err, errlen, "%s: empty value", what);
			return -EINVAL;
		}
		memcpy((char *)base + o->off, &val, sizeof val);
		return 0;
	case OPT_UINT:
		rc = opt_parse_uint(val, o->min, o->max, o->unit, what, &u, err, errlen);
		if (rc == 0)
			store_uint(base, o, u);
		return rc;
	case OPT_SIZE:
		rc = opt_parse_size(val, o->min, o->max, what, &u, err, errlen);
		if (rc == 0)
			store_uint(base, o, u);
		return rc;
	case OPT_DOUBLE:
		rc = opt_parse_double(val, o->dmin, o->dmax, o->unit, what, &d, err, errlen);
		if (rc == 0)
			memcpy((char *)base + o->off, &d, sizeof d);
		return rc;
	case OPT_CHOICE: {
		char list[200] = "";
		size_t n = 0;
		for (size_t i = 0; o->choices[i]; i++) {
			if (strcmp(val, o->choices[i]) == 0) {
				store_uint(base, o, i);
				return 0;
			}
		}
		for (size_t i = 0; o->choices[i]; i++) {
			const char *sep = i == 0 ? "" : o->choices[i + 1] ? ", " : " or ";
			int w = snprintf(list + n, sizeof list - n, "%s%s", sep, o->choices[i]);
			if (w < 0 || (size_t)w >= sizeof list - n)
				break;
			n += (size_t)w;
		}
		errbuf_set(err, errlen, "%s: '%s' is not %s", what, opt_show(val).s, list);
		return -EINVAL;
	}
	case OPT_CALL:
		return o->fn(base, o, val, what, err, errlen);
	case OPT_STOP:
		return 0;
	}
	return -EINVAL;
}

static bool takes_value(const struct opt *o)
{
	return o->kind != OPT_FLAG && o->kind != OPT_STOP;
}

/* ---- parsing -------------------------------------------------------------- */

static const struct opt *find_long(const struct opt_parser *p, const char *name,
                                   size_t len)
{
	for (size_t i = 0; i < p->nopts; i++) {
		const char *n = p->opts[i].name;
		if (n && strlen(n) == len && memcmp(n, name, len) == 0)
			return &p->opts[i];
	}
	return NULL;
}

static const struct opt *find_short(const struct opt_parser *p, char ch)
{
	for (size_t i = 0; i < p->nopts; i++)
		if (p->opts[i].short_name && p->opts[i].short_name == ch)
			return &p->opts[i];
	return NULL;
}

static const char *hint(const struct opt_parser *p)
{
	return p->hint ? p->hint : "";
}

/* One option at argv[*i]; *i advances past a separate value. Returns 0,
 * an OPT_STOP id, or < 0. */
static int parse_one(struct opt_parser *p, int argc, char **argv, int *i,
                     char *err, size_t errlen)
{
	const char *arg = argv[*i];
	const char *val = NULL;
	const struct opt *o;
	char what[80];

	if (arg[1] == '-') {
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		o = find_long(p, name, len);
		if (!o) {
			errbuf_set(err, errlen, "unknown option '--%.*s'%s",
			           (int)(len > 40 ? 40 : len), opt_show(name).s, hint(p));
			return -EINVAL;
		}
		if (eq)
			val = eq + 1;
		snprintf(what, sizeof what, "--%s", o->name);
	} else {
		o = find_short(p, arg[1]);
		if (!o || (arg[2] && !takes_value(o))) {
			errbuf_set(err, errlen, "unknown option '%s'%s", opt_show(arg).s, hint(p));
			return -EINVAL;
		}
		if (arg[2])
			val = arg + 2;
		snprintf(what, sizeof what, "-%c", o->short_name);
	}

	if (!takes_value(o) && val) {
		errbuf_set(err, errlen, "%s takes no value", what);
		return -EINVAL;
	}
	if (takes_value(o) && !val) {
		/* A following option is a forgotten value, not the value. */
		if (*i + 1 >= argc || (argv[*i + 1][0] == '-' && argv[*i + 1][1] == '-')) {
			errbuf_set(err, errlen, "%s needs a value", what);
			return -EINVAL;
		}
		val = argv[++*i];
	}
	size_t idx = (size_t)(o - p->opts);
	p->given[idx] = true;
	p->from_env[idx] = false;
	if (o->kind == OPT_STOP)
		return o->id > 0 ? o->id : 1;
	return set_value(p->base, o, val, what, err, errlen);
}

/* Environment values for the options argv did not give. */
static int apply_env(struct opt_parser *p, char *err, size_t errlen)
{
	char what[96];

	for (size_t i = 0; i < p->nopts; i++) {
		const struct opt *o = &p->opts[i];
		if (!o->env || p->given[i])
			continue;
		const char *v = getenv(o->env);
		if (!v || !*v)
			continue;
		snprintf(what, sizeof what, "environment variable %s", o->env);
		int rc = takes_value(o) ? set_value(p->base, o, v, what, err, errlen) : 0;
		if (rc)
			return rc;
		if (o->kind == OPT_FLAG) {
			/* A switch from the environment: 1 turns it on, 0 leaves it. */
			if (strcmp(v, "1") == 0) {
				set_value(p->base, o, v, what, err, errlen);
			} else if (strcmp(v, "0") != 0) {
				errbuf_set(err, errlen, "%s: '%s' is not 0 or 1", what, opt_show(v).s);
				return -EINVAL;
			}
		}
		p->from_env[i] = true;
	}
	return 0;
}

static int finish_err(const struct opt_parser *p, int rc, char *err, size_t errlen)
{
	if (rc < 0 && p->prefix && *p->prefix && err && errlen) {
		char tmp[512];
		snprintf(tmp, sizeof tmp, "%s", err);
		errbuf_set(err, errlen, "%s%s", p->prefix, tmp);
	}
	return rc;
}

int opt_parse(struct opt_parser *p, int argc, char **argv, int first,
              char *err, size_t errlen)
{
	int rc = 0;
	int i;

	if (err && errlen)
		err[0] = '\0';
	memset(p->given, 0, sizeof p->given);
	memset(p->from_env, 0, sizeof p->from_env);
	p->next = argc;
	if (p->nopts > OPT_TABLE_MAX) {
		errbuf_set(err, errlen, "option table too large");
		return -EINVAL;
	}

	for (i = first; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			i++;
			if (!p->positionals && i < argc) {
				errbuf_set(err, errlen, "unexpected argument '%s'%s",
				           opt_show(argv[i]).s, hint(p));
				return finish_err(p, -EINVAL, err, errlen);
			}
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			if (p->positionals)
				break;
			errbuf_set(err, errlen, "unexpected argument '%s'%s", opt_show(arg).s,
			           hint(p));
			return finish_err(p, -EINVAL, err, errlen);
		}
		rc = parse_one(p, argc, argv, &i, err, errlen);
		if (rc != 0)
			return finish_err(p, rc, err, errlen);
	}
	p->next = i < argc ? i : argc;
	rc = apply_env(p, err, errlen);
	return finish_err(p, rc, err, errlen);
}

static int index_of(const struct opt_parser *p, int id)
{
	for (size_t i = 0; i < p->nopts; i++)
		if (p->opts[i].id == id)
			return (int)i;
	return -1;
}

bool opt_given(const struct opt_parser *p, int id)
{
	int i = index_of(p, id);
	return i >= 0 && p->given[i];
}

bool opt_set(const struct opt_parser *p, int id)
{
	int i = index_of(p, id);
	return i >= 0 && (p->given[i] || p->from_env[i]);
}
