/*
 * config.c - command line and environment for net001-server. See config.h.
 *
 * A hand-written parser rather than getopt_long: getopt keeps global state
 * (optind) and prints its own errors, and this module must do neither.
 * Options are matched by their exact name (no abbreviations), so a future
 * flag can never change the meaning of an existing command line.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errbuf.h"

#define PROGRAM "net001-server"

enum opt_id {
	OPT_HOST,
	OPT_PORT,
	OPT_MAX_CONNECTIONS,
	OPT_THREADS,
	OPT_IDLE_TIMEOUT,
	OPT_RATE_LIMIT,
	OPT_GLOBAL_RATE_LIMIT,
	OPT_MAX_PAYLOAD,
	OPT_METRICS_PORT,
	OPT_MAX_OUTPUT,
	OPT_AUTH_FILE,
	OPT_DEBUG,
	OPT_TLS,
	OPT_CERT,
	OPT_KEY,
	OPT_HELP,
	OPT_VERSION,
	OPT_COUNT,
};

struct opt {
	const char *name;   /* without the leading "--" */
	char short_name;    /* 0 if none */
	bool has_arg;
	enum opt_id id;
};

static const struct opt opts[] = {
	{ "host",              0,   true,  OPT_HOST },
	{ "port",              0,   true,  OPT_PORT },
	{ "max-connections",   0,   true,  OPT_MAX_CONNECTIONS },
	{ "threads",           0,   true,  OPT_THREADS },
	{ "idle-timeout",      0,   true,  OPT_IDLE_TIMEOUT },
	{ "rate-limit",        0,   true,  OPT_RATE_LIMIT },
	{ "global-rate-limit", 0,   true,  OPT_GLOBAL_RATE_LIMIT },
	{ "max-payload",       0,   true,  OPT_MAX_PAYLOAD },
	{ "metrics-port",      0,   true,  OPT_METRICS_PORT },
	{ "max-output",        0,   true,  OPT_MAX_OUTPUT },
	{ "auth-file",         0,   true,  OPT_AUTH_FILE },
	{ "debug",             0,   false, OPT_DEBUG },
	{ "tls",               0,   false, OPT_TLS },
	{ "cert",              0,   true,  OPT_CERT },
	{ "key",               0,   true,  OPT_KEY },
	{ "help",              'h', false, OPT_HELP },
	{ "version",           'V', false, OPT_VERSION },
};

/* A numeric setting: its range and where it lands in struct config. */
struct num_setting {
	enum opt_id id;
	const char *env;    /* environment variable, or NULL */
	uint64_t min, max;
};

static const struct num_setting nums[] = {
	{ OPT_PORT,              NULL,                1, 65535 },
	{ OPT_MAX_CONNECTIONS,   "MAX_CONNECTIONS",   1, CONFIG_MAX_CONNECTIONS_MAX },
	{ OPT_THREADS,           NULL,                1, CONFIG_THREADS_MAX },
	{ OPT_IDLE_TIMEOUT,      NULL,                0, CONFIG_IDLE_TIMEOUT_MAX },
	{ OPT_RATE_LIMIT,        "RATE_LIMIT",        0, CONFIG_RATE_LIMIT_MAX },
	{ OPT_GLOBAL_RATE_LIMIT, "GLOBAL_RATE_LIMIT", 0, CONFIG_GLOBAL_RATE_LIMIT_MAX },
	{ OPT_MAX_PAYLOAD,       NULL,                CONFIG_MAX_PAYLOAD_MIN, CONFIG_MAX_PAYLOAD_MAX },
	{ OPT_METRICS_PORT,      NULL,                0, 65535 },
	{ OPT_MAX_OUTPUT,        NULL,                CONFIG_MAX_OUTPUT_MIN, CONFIG_MAX_OUTPUT_MAX },
};

/*
 * A user-supplied value made safe for a one-line message: at most 40
 * bytes, control characters shown as '?'.
 */
struct shown {
	char s[48];
};

static struct shown show(const char *v)
{
	struct shown o;
	size_t i;

	for (i = 0; v[i] && i < 40; i++)
		o.s[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
	if (v[i])
		memcpy(o.s + i, "...", 4);
	else
		o.s[i] = '\0';
	return o;
}

static uint32_t default_threads(void)
{
	/* The CPUs we may run on, which inside a container or under taskset
	 * is fewer than the online count; workers are pinned to them. */
	cpu_set_t set;
	long n = 0;

	if (sched_getaffinity(0, sizeof set, &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > (long)CONFIG_THREADS_MAX)
		n = CONFIG_THREADS_MAX;
	return (uint32_t)n;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	strcpy(c->host, "0.0.0.0");
	c->port = 5000;
	c->max_connections = NET001_MAX_CONNECTIONS_DEFAULT;
	c->threads = default_threads();
	c->idle_timeout = 60;
	c->rate_limit = 1000;
	c->global_rate_limit = 50000;
	c->max_payload = 65535;
	c->metrics_port = 5000 + CONFIG_METRICS_PORT_OFFSET;
	c->max_output = UINT64_C(8) << 20;
	c->auth_file = NULL;
	c->debug = false;
	c->tls = false;
	c->cert = NULL;
	c->key = NULL;
}

void config_free(struct config *c)
{
	free(c->auth_file);
	free(c->cert);
	free(c->key);
	c->auth_file = c->cert = c->key = NULL;
}

/* Why a number was refused. */
enum num_err {
	NUM_OK,
	NUM_EMPTY,
	NUM_NEGATIVE,
	NUM_JUNK,
	NUM_OVERFLOW,
	NUM_SUFFIX,
};

/* Plain decimal digits only: no sign, spaces, hex or octal. */
static enum num_err parse_u64(const char *s, uint64_t *out, const char **end)
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
static enum num_err parse_size(const char *s, uint64_t *out)
{
	const char *p;
	unsigned shift;
	enum num_err e = parse_u64(s, out, &p);

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

static const struct num_setting *num_setting(enum opt_id id)
{
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
		if (nums[i].id == id)
			return &nums[i];
	return NULL;
}

static void store_num(struct config *c, enum opt_id id, uint64_t v)
{
	switch (id) {
	case OPT_PORT:              c->port = (uint16_t)v; break;
	case OPT_MAX_CONNECTIONS:   c->max_connections = (uint32_t)v; break;
	case OPT_THREADS:           c->threads = (uint32_t)v; break;
	case OPT_IDLE_TIMEOUT:      c->idle_timeout = (uint32_t)v; break;
	case OPT_RATE_LIMIT:        c->rate_limit = (uint32_t)v; break;
	case OPT_GLOBAL_RATE_LIMIT: c->global_rate_limit = (uint32_t)v; break;
	case OPT_MAX_PAYLOAD:       c->max_payload = (uint32_t)v; break;
	case OPT_METRICS_PORT:      c->metrics_port = (uint32_t)v; break;
	case OPT_MAX_OUTPUT:        c->max_output = v; break;
	default:                    break;
	}
}

/*
 * Parse and range-check one numeric value; what is "--port" or
 * "environment variable RATE_LIMIT" for the message.
 */
static int set_num(struct config *c, const struct num_setting *ns, const char *what,
                   const char *val, char *err, size_t errlen)
{
	uint64_t v = 0;
	bool size = ns->id == OPT_MAX_OUTPUT;
	enum num_err e = size ? parse_size(val, &v) : parse_u64(val, &v, NULL);

	switch (e) {
	case NUM_OK:
		break;
	case NUM_EMPTY:
		errbuf_set(err, errlen, "%s: empty value, expected a number", what);
		return -EINVAL;
	case NUM_NEGATIVE:
		errbuf_set(err, errlen, "%s: '%s' is negative", what, show(val).s);
		return -EINVAL;
	case NUM_JUNK:
		errbuf_set(err, errlen, "%s: '%s' is not a %s", what, show(val).s,
		           size ? "size (bytes, or a number with k, m or g)"
		                : "whole decimal number");
		return -EINVAL;
	case NUM_SUFFIX:
		errbuf_set(err, errlen, "%s: '%s' has an unknown suffix "
		           "(use k, m, g or KiB, MiB, GiB)", what, show(val).s);
		return -EINVAL;
	case NUM_OVERFLOW:
		errbuf_set(err, errlen, "%s: '%s' is too large (at most %llu)", what,
		           show(val).s, (unsigned long long)ns->max);
		return -EINVAL;
	}
	if (v < ns->min || v > ns->max) {
		errbuf_set(err, errlen, "%s: '%s' is out of range (%llu..%llu%s)", what,
		           show(val).s, (unsigned long long)ns->min,
		           (unsigned long long)ns->max, size ? " bytes" : "");
		return -EINVAL;
	}
	store_num(c, ns->id, v);
	return 0;
}

static int set_host(struct config *c, const char *val, char *err, size_t errlen)
{
	char buf[CONFIG_HOST_MAX];
	size_t n = strlen(val);
	struct in_addr a4;
	struct in6_addr a6;

	if (n == 0) {
		errbuf_set(err, errlen, "--host: empty address");
		return -EINVAL;
	}
	if (strcasecmp(val, "localhost") == 0) {
		strcpy(c->host, "127.0.0.1");
		return 0;
	}
	/* [::1] as in URLs: the brackets are not part of the address. */
	if (val[0] == '[' && n >= 2 && val[n - 1] == ']') {
		val++;
		n -= 2;
	}
	if (n >= sizeof buf) {
		errbuf_set(err, errlen, "--host: '%s' is too long for an address", show(val).s);
		return -EINVAL;
	}
	memcpy(buf, val, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a4) != 1 && inet_pton(AF_INET6, buf, &a6) != 1) {
		errbuf_set(err, errlen, "--host: '%s' is not an IPv4 or IPv6 address "
		           "(host names other than localhost are not resolved)", show(val).s);
		return -EINVAL;
	}
	memcpy(c->host, buf, n + 1);
	return 0;
}

/* The file must exist and be readable now, so a typo fails at start-up. */
static int set_file(char **slot, const char *flag, const char *val,
                    char *err, size_t errlen)
{
	struct stat st;
	int fd, rc = 0;

	if (!*val) {
		errbuf_set(err, errlen, "--%s: empty file name", flag);
		return -EINVAL;
	}
	/* O_NONBLOCK: opening a FIFO must not hang the start-up. */
	fd = open(val, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		errbuf_set(err, errlen, "--%s: '%s': %s", flag, show(val).s, strerror(errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) != 0) {
		errbuf_set(err, errlen, "--%s: '%s': %s", flag, show(val).s, strerror(errno));
		rc = -EINVAL;
	} else if (S_ISDIR(st.st_mode)) {
		errbuf_set(err, errlen, "--%s: '%s' is a directory", flag, show(val).s);
		rc = -EINVAL;
	}
	close(fd);
	if (rc)
		return rc;

	char *copy = strdup(val);
	if (!copy) {
		errbuf_set(err, errlen, "--%s: out of memory", flag);
		return -ENOMEM;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

static const struct opt *find_long(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

static const struct opt *find_short(char ch)
{
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (opts[i].short_name && opts[i].short_name == ch)
			return &opts[i];
	return NULL;
}

/* Environment values for the settings whose flag was not given. */
static int apply_env(struct config *c, const bool given[OPT_COUNT],
                     char *err, size_t errlen)
{
	char what[64];

	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		const struct num_setting *ns = &nums[i];
		if (!ns->env || given[ns->id])
			continue;
		const char *v = getenv(ns->env);
		if (!v || !*v)
			continue;
		snprintf(what, sizeof what, "environment variable %s", ns->env);
		int rc = set_num(c, ns, what, v, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* Rules between settings, once everything is known. */
static int check_combined(struct config *c, const bool given[OPT_COUNT],
                          char *err, size_t errlen)
{
	if (!given[OPT_METRICS_PORT]) {
		uint32_t mp = (uint32_t)c->port + CONFIG_METRICS_PORT_OFFSET;
		if (mp > 65535) {
			errbuf_set(err, errlen, "--port %u: the default metrics port (port + %u = %u) "
			           "is above 65535; give --metrics-port N (0 turns metrics off)",
			           c->port, CONFIG_METRICS_PORT_OFFSET, mp);
			return -EINVAL;
		}
		c->metrics_port = mp;
	} else if (c->metrics_port == c->port) {
		errbuf_set(err, errlen, "--metrics-port %u: same as --port", c->metrics_port);
		return -EINVAL;
	}

	if (c->tls && (!c->cert || !c->key)) {
		errbuf_set(err, errlen, "--tls needs both --cert FILE and --key FILE");
		return -EINVAL;
	}
	if (!c->tls && (c->cert || c->key)) {
		/* Refuse rather than silently serve plain text. */
		errbuf_set(err, errlen, "--%s given without --tls", c->cert ? "cert" : "key");
		return -EINVAL;
	}
	if (c->tls && !HAVE_TLS) {
		errbuf_set(err, errlen, "--tls: this build has no TLS support");
		return -EINVAL;
	}
	return 0;
}

static void print_version(void)
{
	printf("%s %s\n", PROGRAM, NET001_VERSION);
	fflush(stdout);
}

/* One argument; returns 0, 1 (help/version printed) or < 0; *i advances
 * past a separate value. */
static int parse_one(struct config *c, bool given[OPT_COUNT], int argc, char **argv,
                     int *i, char *err, size_t errlen)
{
	const char *arg = argv[*i];
	const char *val = NULL;
	const struct opt *o;
	char flag[80];

	if (arg[0] == '-' && arg[1] == '-') {
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		o = find_long(name, len);
		if (!o) {
			errbuf_set(err, errlen, "unknown option '--%.*s' (see --help)",
			           (int)(len > 40 ? 40 : len), show(name).s);
			return -EINVAL;
		}
		if (eq)
			val = eq + 1;
	} else if (arg[0] == '-' && arg[1] && !arg[2]) {
		o = find_short(arg[1]);
		if (!o) {
			errbuf_set(err, errlen, "unknown option '%s' (see --help)", show(arg).s);
			return -EINVAL;
		}
	} else {
		errbuf_set(err, errlen, "unexpected argument '%s' (see --help)", show(arg).s);
		return -EINVAL;
	}
	snprintf(flag, sizeof flag, "--%s", o->name);

	if (!o->has_arg && val) {
		errbuf_set(err, errlen, "%s takes no value", flag);
		return -EINVAL;
	}
	if (o->has_arg && !val) {
		/* A following option is a forgotten value, not the value:
		 * `--port --debug` would otherwise eat --debug. Values that
		 * really start with "--" can be given as --flag=--value. */
		if (*i + 1 >= argc || (argv[*i + 1][0] == '-' && argv[*i + 1][1] == '-')) {
			errbuf_set(err, errlen, "%s needs a value", flag);
			return -EINVAL;
		}
		val = argv[++*i];
	}
	given[o->id] = true;

	switch (o->id) {
	case OPT_HELP:
		config_usage(stdout);
		fflush(stdout);
		return 1;
	case OPT_VERSION:
		print_version();
		return 1;
	case OPT_DEBUG:
		c->debug = true;
		return 0;
	case OPT_TLS:
		c->tls = true;
		return 0;
	case OPT_HOST:
		return set_host(c, val, err, errlen);
	case OPT_AUTH_FILE:
		return set_file(&c->auth_file, o->name, val, err, errlen);
	case OPT_CERT:
		return set_file(&c->cert, o->name, val, err, errlen);
	case OPT_KEY:
		return set_file(&c->key, o->name, val, err, errlen);
	default:
		return set_num(c, num_setting(o->id), flag, val, err, errlen);
	}
}

int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	bool given[OPT_COUNT] = { false };
	int rc = 0;

	config_defaults(c);
	if (err && errlen)
		err[0] = '\0';

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			if (i + 1 < argc) {
				errbuf_set(err, errlen, "unexpected argument '%s' (see --help)",
				           show(argv[i + 1]).s);
				rc = -EINVAL;
				goto fail;
			}
			break;
		}
		rc = parse_one(c, given, argc, argv, &i, err, errlen);
		if (rc)
			goto fail;
	}
	rc = apply_env(c, given, err, errlen);
	if (rc)
		goto fail;
	rc = check_combined(c, given, err, errlen);
	if (rc)
		goto fail;
	return 0;

fail:
	config_free(c);
	return rc;
}

void config_usage(FILE *out)
{
	fprintf(out,
"Usage: " PROGRAM " [OPTION]...\n"
"NET-001 message server (io_uring, one worker thread per core).\n"
"\n"
"Options (--flag VALUE or --flag=VALUE; a flag beats its environment\n"
"variable, which beats the default; a repeated flag's last value wins):\n"
"  --host ADDR              IPv4 or IPv6 address to listen on, or localhost\n"
"                           (default 0.0.0.0)\n"
"  --port N                 TCP port, 1..65535 (default 5000)\n"
"  --max-connections N      open connections, whole server, 1..%u\n"
"                           (default %u; env MAX_CONNECTIONS)\n"
"  --threads N              worker threads, one io_uring each, 1..%u\n"
"                           (default: CPUs this process may use, %u here)\n"
"  --idle-timeout SEC       close a connection after SEC seconds without a\n"
"                           complete frame, 0 = off, max %u (default 60)\n"
"  --rate-limit N           messages/s per connection, 0 = off, max %u\n"
"                           (default 1000; env RATE_LIMIT)\n"
"  --global-rate-limit N    messages/s, whole server, 0 = off, max %u\n"
"                           (default 50000; env GLOBAL_RATE_LIMIT)\n"
"  --max-payload N          largest accepted payload, %u..%u (default 65535)\n"
"  --metrics-port N         Prometheus /metrics port, 0 = off\n"
"                           (default port + %u; required when that is above 65535)\n"
"  --max-output BYTES       unsent output per connection before SLOW_CONSUMER;\n"
"                           bytes or with k, m, g (KiB, MiB, GiB),\n"
"                           %u..16g (default 8m)\n"
"  --auth-file FILE         require AUTH; lines 'user:sha256hex(token)'\n"
"                           (default: authentication off)\n"
"  --tls                    TLS 1.2+ on the client port; needs --cert and --key\n"
"  --cert FILE              certificate chain (PEM)\n"
"  --key FILE               private key (PEM)\n"
"  --debug                  verbose logging\n"
"  -h, --help               print this help and exit\n"
"  -V, --version            print the version and exit\n"
"\n"
"Environment (an empty variable counts as unset):\n"
"  MAX_CONNECTIONS, RATE_LIMIT, GLOBAL_RATE_LIMIT   as the flags above\n"
"\n"
"A bad value prints one line on stderr and exits with status 2.\n"
"SIGINT/SIGTERM shut down gracefully; SIGHUP reloads the auth file.\n",
		CONFIG_MAX_CONNECTIONS_MAX, (unsigned)NET001_MAX_CONNECTIONS_DEFAULT,
		CONFIG_THREADS_MAX, default_threads(), CONFIG_IDLE_TIMEOUT_MAX,
		CONFIG_RATE_LIMIT_MAX, CONFIG_GLOBAL_RATE_LIMIT_MAX,
		CONFIG_MAX_PAYLOAD_MIN, CONFIG_MAX_PAYLOAD_MAX,
		CONFIG_METRICS_PORT_OFFSET, CONFIG_MAX_OUTPUT_MIN);
}

int config_sockaddr(const struct config *c, uint16_t port,
                    struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, c->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof *s4;
		return 0;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET6, c->host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof *s6;
		return 0;
	}
	return -EINVAL;
}
