/*
 * config.c - command line and environment for net001-server. See config.h.
 *
 * The flags are a table for the shared option parser (core/opt.h), which
 * keeps no global state, prints nothing and matches names exactly (no
 * abbreviations, so a future flag can never change the meaning of an
 * existing command line). What is particular to the server is here: the
 * host and file checks, and the rules between settings.
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
#include "core/log.h"
#include "core/opt.h"

#define PROGRAM "net001-server"

enum opt_id {
	OPT_HELP = 1,
	OPT_VERSION,
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
	OPT_BROADCAST_LOG,
	OPT_AUTH_FILE,
	OPT_DEBUG,
	OPT_NO_PIN,
	OPT_LOG_FORMAT,
	OPT_TLS,
	OPT_CERT,
	OPT_KEY,
	OPT_CLUSTER,
	OPT_CLUSTER_SUBJECT,
	OPT_NODE_ID,
	OPT_CLUSTER_BACKLOG,
	OPT_METRICS_HOST,
	OPT_CLUSTER_CA,
	OPT_CLUSTER_CERT,
	OPT_CLUSTER_KEY,
};

static opt_fn set_host, set_file, set_cluster, set_subject, set_node_id;

/* In the order of enum log_format (core/log.h). */
static const char *const log_formats[] = { "text", "json", NULL };

#define NUM(n, i, e, lo, hi, field) \
	{ .name = n, .kind = OPT_UINT, .id = i, .env = e, .min = lo, .max = hi, \
	  OPT_AT(struct config, field) }

static const struct opt opts[] = {
	{ .name = "host", .kind = OPT_CALL, .id = OPT_HOST, .fn = set_host,
	  .off = offsetof(struct config, host) },
	NUM("port", OPT_PORT, NULL, 1, 65535, port),
	NUM("max-connections", OPT_MAX_CONNECTIONS, "MAX_CONNECTIONS", 1,
	    CONFIG_MAX_CONNECTIONS_MAX, max_connections),
	NUM("threads", OPT_THREADS, NULL, 1, CONFIG_THREADS_MAX, threads),
	NUM("idle-timeout", OPT_IDLE_TIMEOUT, NULL, 0, CONFIG_IDLE_TIMEOUT_MAX, idle_timeout),
	NUM("rate-limit", OPT_RATE_LIMIT, "RATE_LIMIT", 0, CONFIG_RATE_LIMIT_MAX, rate_limit),
	NUM("global-rate-limit", OPT_GLOBAL_RATE_LIMIT, "GLOBAL_RATE_LIMIT", 0,
	    CONFIG_GLOBAL_RATE_LIMIT_MAX, global_rate_limit),
	NUM("max-payload", OPT_MAX_PAYLOAD, NULL, CONFIG_MAX_PAYLOAD_MIN,
	    CONFIG_MAX_PAYLOAD_MAX, max_payload),
	NUM("metrics-port", OPT_METRICS_PORT, NULL, 0, 65535, metrics_port),
	{ .name = "metrics-host", .kind = OPT_CALL, .id = OPT_METRICS_HOST, .fn = set_host,
	  .off = offsetof(struct config, metrics_host) },
	{ .name = "max-output", .kind = OPT_SIZE, .id = OPT_MAX_OUTPUT,
	  .min = CONFIG_MAX_OUTPUT_MIN, .max = CONFIG_MAX_OUTPUT_MAX,
	  OPT_AT(struct config, max_output) },
	{ .name = "broadcast-log", .kind = OPT_SIZE, .id = OPT_BROADCAST_LOG,
	  .min = CONFIG_BROADCAST_LOG_MIN, .max = CONFIG_BROADCAST_LOG_MAX,
	  OPT_AT(struct config, broadcast_log) },
	{ .name = "auth-file", .kind = OPT_CALL, .id = OPT_AUTH_FILE, .fn = set_file,
	  .off = offsetof(struct config, auth_file) },
	{ .name = "debug", .kind = OPT_FLAG, .id = OPT_DEBUG, OPT_AT(struct config, debug) },
	{ .name = "no-pin", .kind = OPT_FLAG, .id = OPT_NO_PIN, OPT_AT(struct config, no_pin) },
	{ .name = "log-format", .kind = OPT_CHOICE, .id = OPT_LOG_FORMAT,
	  .env = "NET001_LOG_FORMAT", .choices = log_formats, OPT_AT(struct config, log_format) },
	{ .name = "tls", .kind = OPT_FLAG, .id = OPT_TLS, OPT_AT(struct config, tls) },
	{ .name = "cert", .kind = OPT_CALL, .id = OPT_CERT, .fn = set_file,
	  .off = offsetof(struct config, cert) },
	{ .name = "key", .kind = OPT_CALL, .id = OPT_KEY, .fn = set_file,
	  .off = offsetof(struct config, key) },
	{ .name = "cluster", .kind = OPT_CALL, .id = OPT_CLUSTER, .env = "NET001_CLUSTER",
	  .fn = set_cluster },
	{ .name = "cluster-subject", .kind = OPT_CALL, .id = OPT_CLUSTER_SUBJECT,
	  .fn = set_subject },
	{ .name = "node-id", .kind = OPT_CALL, .id = OPT_NODE_ID, .fn = set_node_id },
	{ .name = "cluster-backlog", .kind = OPT_SIZE, .id = OPT_CLUSTER_BACKLOG,
	  .min = CONFIG_CLUSTER_BACKLOG_MIN, .max = CONFIG_CLUSTER_BACKLOG_MAX,
	  OPT_AT(struct config, cluster_backlog) },
	{ .name = "cluster-ca", .kind = OPT_CALL, .id = OPT_CLUSTER_CA, .fn = set_file,
	  .off = offsetof(struct config, cluster_ca) },
	{ .name = "cluster-cert", .kind = OPT_CALL, .id = OPT_CLUSTER_CERT, .fn = set_file,
	  .off = offsetof(struct config, cluster_cert) },
	{ .name = "cluster-key", .kind = OPT_CALL, .id = OPT_CLUSTER_KEY, .fn = set_file,
	  .off = offsetof(struct config, cluster_key) },
	{ .name = "help", .short_name = 'h', .kind = OPT_STOP, .id = OPT_HELP },
	{ .name = "version", .short_name = 'V', .kind = OPT_STOP, .id = OPT_VERSION },
};

#define show(v) opt_show(v)

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
	c->metrics_host[0] = '\0';
	c->port = 5000;
	c->max_connections = NET001_MAX_CONNECTIONS_DEFAULT;
	c->threads = default_threads();
	c->idle_timeout = 60;
	c->rate_limit = 1000;
	c->global_rate_limit = 50000;
	c->max_payload = 65535;
	c->metrics_port = 5000 + CONFIG_METRICS_PORT_OFFSET;
	c->max_output = UINT64_C(8) << 20;
	c->broadcast_log = NET001_BROADCAST_LOG;
	c->auth_file = NULL;
	c->debug = false;
	c->log_format = LOG_FORMAT_TEXT;
	c->tls = false;
	c->cert = NULL;
	c->key = NULL;
	c->cluster = NULL;
	strcpy(c->cluster_subject, "net001.broadcast");
	c->node_id[0] = '\0';
	c->cluster_backlog = UINT64_C(8) << 20;
	c->cluster_ca = c->cluster_cert = c->cluster_key = NULL;
}

void config_free(struct config *c)
{
	free(c->auth_file);
	free(c->cert);
	free(c->key);
	free(c->cluster);
	free(c->cluster_ca);
	free(c->cluster_cert);
	free(c->cluster_key);
	c->auth_file = c->cert = c->key = c->cluster = NULL;
	c->cluster_ca = c->cluster_cert = c->cluster_key = NULL;
}

/* --host and --metrics-host (o->off: which one). */
static int set_host(void *base, const struct opt *o, const char *val,
                    const char *what, char *err, size_t errlen)
{
	char *dst = (char *)base + o->off;
	char buf[CONFIG_HOST_MAX];
	size_t n = strlen(val);
	struct in_addr a4;
	struct in6_addr a6;

	if (n == 0) {
		errbuf_set(err, errlen, "%s: empty address", what);
		return -EINVAL;
	}
	if (strcasecmp(val, "localhost") == 0) {
		strcpy(dst, "127.0.0.1");
		return 0;
	}
	/* [::1] as in URLs: the brackets are not part of the address. */
	if (val[0] == '[' && n >= 2 && val[n - 1] == ']') {
		val++;
		n -= 2;
	}
	if (n >= sizeof buf) {
		errbuf_set(err, errlen, "%s: '%s' is too long for an address", what,
		           show(val).s);
		return -EINVAL;
	}
	memcpy(buf, val, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a4) != 1 && inet_pton(AF_INET6, buf, &a6) != 1) {
		errbuf_set(err, errlen, "%s: '%s' is not an IPv4 or IPv6 address "
		           "(host names other than localhost are not resolved)", what,
		           show(val).s);
		return -EINVAL;
	}
	memcpy(dst, buf, n + 1);
	return 0;
}

/* The file must exist and be readable now, so a typo fails at start-up.
 * The copy goes into the char * at o->off, replacing an earlier one. */
static int set_file(void *base, const struct opt *o, const char *val,
                    const char *what, char *err, size_t errlen)
{
	char **slot = (char **)((char *)base + o->off);
	struct stat st;
	int fd, rc = 0;

	if (!*val) {
		errbuf_set(err, errlen, "%s: empty file name", what);
		return -EINVAL;
	}
	/* O_NONBLOCK: opening a FIFO must not hang the start-up. */
	fd = open(val, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		errbuf_set(err, errlen, "%s: '%s': %s", what, show(val).s, strerror(errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) != 0) {
		errbuf_set(err, errlen, "%s: '%s': %s", what, show(val).s, strerror(errno));
		rc = -EINVAL;
	} else if (S_ISDIR(st.st_mode)) {
		errbuf_set(err, errlen, "%s: '%s' is a directory", what, show(val).s);
		rc = -EINVAL;
	}
	close(fd);
	if (rc)
		return rc;

	char *copy = strdup(val);
	if (!copy) {
		errbuf_set(err, errlen, "%s: out of memory", what);
		return -ENOMEM;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

/* One NATS server address of a --cluster list: [scheme://][user[:pass]@]
 * host[:port], nothing the NATS client would split or choke on. */
static bool cluster_url_ok(const char *u, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= ' ' || u[i] == 0x7f)
			return false;
	const char *s = memchr(u, ':', n);
	if (s && n - (size_t)(s - u) >= 3 && s[1] == '/' && s[2] == '/') {
		size_t k = (size_t)(s - u);
		if (!((k == 4 && memcmp(u, "nats", 4) == 0) || (k == 3 && memcmp(u, "tls", 3) == 0)))
			return false;
		n -= k + 3;
		u = s + 3;
	}
	const char *at = NULL;
	for (size_t i = 0; i < n; i++)
		if (u[i] == '@')
			at = u + i;
	if (at) {
		n -= (size_t)(at + 1 - u);
		u = at + 1;
	}
	if (n == 0 || memchr(u, '/', n))
		return false;
	/* A port, if any, is 1..65535. */
	const char *colon = NULL;
	for (size_t i = 0; i < n; i++)
		if (u[i] == ':')
			colon = u + i;
	if (colon && u[0] != '[') {
		size_t k = n - (size_t)(colon + 1 - u);
		unsigned long v = 0;
		if (k == 0 || k > 5)
			return false;
		for (size_t i = 0; i < k; i++) {
			if (colon[1 + i] < '0' || colon[1 + i] > '9')
				return false;
			v = v * 10 + (unsigned long)(colon[1 + i] - '0');
		}
		if (v == 0 || v > 65535)
			return false;
		if (colon == u)
			return false;
	}
	return true;
}

static int set_cluster(void *base, const struct opt *o, const char *val,
                       const char *what, char *err, size_t errlen)
{
	struct config *c = base;
	(void)o;
	if (!*val) {
		errbuf_set(err, errlen, "%s: empty list of NATS URLs", what);
		return -EINVAL;
	}
	for (const char *p = val;;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!cluster_url_ok(p, n)) {
			char one[48];
			snprintf(one, sizeof one, "%.*s", (int)(n < 40 ? n : 40), p);
			errbuf_set(err, errlen, "%s: '%s' is not a NATS URL "
			           "(nats://[user:pass@]host:port or tls://...)", what, show(one).s);
			return -EINVAL;
		}
		if (!e)
			break;
		p = e + 1;
	}
	char *copy = strdup(val);
	if (!copy) {
		errbuf_set(err, errlen, "%s: out of memory", what);
		return -ENOMEM;
	}
	free(c->cluster);
	c->cluster = copy;
	return 0;
}

/* A subject to publish on: tokens of printable characters without
 * wildcards, separated by single dots. */
static int set_subject(void *base, const struct opt *o, const char *val,
                       const char *what, char *err, size_t errlen)
{
	struct config *c = base;
	size_t n = strlen(val);
	bool ok = n > 0 && n < sizeof c->cluster_subject && val[0] != '.' && val[n - 1] != '.';
	(void)o;
	for (size_t i = 0; ok && i < n; i++) {
		unsigned char ch = (unsigned char)val[i];
		if (ch <= ' ' || ch >= 0x7f || ch == '*' || ch == '>' ||
		    (ch == '.' && val[i + 1] == '.'))
			ok = false;
	}
	if (!ok) {
		errbuf_set(err, errlen, "%s: '%s' is not a NATS subject to publish on "
		           "(dot-separated tokens of printable characters, no * or >, "
		           "at most %d bytes)", what, show(val).s, CONFIG_SUBJECT_MAX - 1);
		return -EINVAL;
	}
	memcpy(c->cluster_subject, val, n + 1);
	return 0;
}

static int set_node_id(void *base, const struct opt *o, const char *val,
                       const char *what, char *err, size_t errlen)
{
	struct config *c = base;
	size_t n = strlen(val);
	bool ok = n > 0 && n < sizeof c->node_id;
	(void)o;
	for (size_t i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)val[i]) || val[i] == '-' || val[i] == '_' ||
		     val[i] == '.';
	if (!ok) {
		errbuf_set(err, errlen, "%s: '%s': 1 to %d of A-Z a-z 0-9 . _ -", what,
		           show(val).s, CONFIG_NODE_ID_MAX - 1);
		return -EINVAL;
	}
	memcpy(c->node_id, val, n + 1);
	return 0;
}

/* Rules between settings, once everything is known. */
static int check_combined(struct config *c, const struct opt_parser *p,
                          char *err, size_t errlen)
{
	if (!opt_given(p, OPT_METRICS_PORT)) {
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
	if (c->cluster && !HAVE_CLUSTER) {
		errbuf_set(err, errlen, "%s: this build has no cluster support (libnats)",
		           opt_given(p, OPT_CLUSTER) ? "--cluster" : "environment variable NET001_CLUSTER");
		return -EINVAL;
	}
	static const struct { int id; const char *name; } needs_cluster[] = {
		{ OPT_CLUSTER_SUBJECT, "cluster-subject" }, { OPT_NODE_ID, "node-id" },
		{ OPT_CLUSTER_BACKLOG, "cluster-backlog" }, { OPT_CLUSTER_CA, "cluster-ca" },
		{ OPT_CLUSTER_CERT, "cluster-cert" }, { OPT_CLUSTER_KEY, "cluster-key" },
	};
	for (size_t i = 0; !c->cluster && i < sizeof needs_cluster / sizeof needs_cluster[0]; i++) {
		if (opt_given(p, needs_cluster[i].id)) {
			errbuf_set(err, errlen, "--%s given without --cluster", needs_cluster[i].name);
			return -EINVAL;
		}
	}
	if (!c->cluster_cert != !c->cluster_key) {
		errbuf_set(err, errlen, "--%s needs --%s too",
		           c->cluster_cert ? "cluster-cert" : "cluster-key",
		           c->cluster_cert ? "cluster-key" : "cluster-cert");
		return -EINVAL;
	}
	return 0;
}

static void print_version(void)
{
	printf("%s %s\n", PROGRAM, NET001_VERSION);
	fflush(stdout);
}

int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	struct opt_parser p = {
		.opts = opts,
		.nopts = sizeof opts / sizeof opts[0],
		.base = c,
		.hint = " (see --help)",
	};

	config_defaults(c);
	int rc = opt_parse(&p, argc, argv, 1, err, errlen);
	if (rc == OPT_HELP) {
		config_usage(stdout);
		fflush(stdout);
		rc = 1;
	} else if (rc == OPT_VERSION) {
		print_version();
		rc = 1;
	} else if (rc == 0) {
		rc = check_combined(c, &p, err, errlen);
	}
	if (rc != 0)
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
"  --metrics-host ADDR      address the exporter listens on (default: --host's;\n"
"                           127.0.0.1 keeps /metrics and the dashboard local)\n"
"  --max-output BYTES       unsent output per connection before SLOW_CONSUMER;\n"
"                           bytes or with k, m, g (KiB, MiB, GiB),\n"
"                           %u..16g (default 8m)\n"
"  --broadcast-log BYTES    broadcasts each worker keeps for its receivers\n"
"                           (rounded up to a power of two): broadcasters\n"
"                           pause when a receiver that keeps up is half of\n"
"                           it behind; 256k..1g (default %llum)\n"
"  --auth-file FILE         require AUTH; lines 'user:sha256hex(token)'\n"
"                           (default: authentication off)\n",
		CONFIG_MAX_CONNECTIONS_MAX, (unsigned)NET001_MAX_CONNECTIONS_DEFAULT,
		CONFIG_THREADS_MAX, default_threads(), CONFIG_IDLE_TIMEOUT_MAX,
		CONFIG_RATE_LIMIT_MAX, CONFIG_GLOBAL_RATE_LIMIT_MAX,
		CONFIG_MAX_PAYLOAD_MIN, CONFIG_MAX_PAYLOAD_MAX,
		CONFIG_METRICS_PORT_OFFSET, CONFIG_MAX_OUTPUT_MIN,
		(unsigned long long)NET001_BROADCAST_LOG >> 20);
	/* The rest apart: one string that long is beyond what C compilers must take. */
	fputs(
"  --tls                    TLS 1.2+ on the client port; needs --cert and --key\n"
"  --cert FILE              certificate chain (PEM)\n"
"  --key FILE               private key (PEM)\n"
"  --cluster URL[,URL...]   deliver BROADCASTs across servers through NATS:\n"
"                           nats://[user:pass@]host:port or tls://...\n"
"                           (default: off; env NET001_CLUSTER)\n"
"  --cluster-subject S      NATS subject the servers share\n"
"                           (default net001.broadcast)\n"
"  --node-id ID             this server's name in the cluster, 1..32 of\n"
"                           A-Z a-z 0-9 . _ - (default: random at start)\n"
"  --cluster-backlog BYTES  broadcast bytes held for NATS while it is away\n"
"                           or slow, beyond which they are dropped and\n"
"                           counted; with k, m, g (default 8m)\n"
"  --cluster-ca FILE        CA certificates (PEM) to verify NATS servers with\n"
"                           (TLS to NATS; default: the system's)\n"
"  --cluster-cert FILE      certificate chain (PEM) for NATS servers that ask\n"
"                           for one; with --cluster-key\n"
"  --cluster-key FILE       its private key (PEM)\n"
"  --no-pin                 do not pin workers to CPUs (machines shared with\n"
"                           other busy processes; default: pinned)\n"
"  --debug                  verbose logging\n"
"  --log-format FORMAT      text or json (one JSON object per line)\n"
"                           (default text; env NET001_LOG_FORMAT)\n"
"  -h, --help               print this help and exit\n"
"  -V, --version            print the version and exit\n"
"\n"
"Environment (an empty variable counts as unset):\n"
"  NET001_LOG_FORMAT                               as --log-format\n"
"  MAX_CONNECTIONS, RATE_LIMIT, GLOBAL_RATE_LIMIT   as the flags above\n"
"  NET001_CLUSTER                                  as --cluster\n"
"\n"
"A bad value prints one line on stderr and exits with status 2; status 1:\n"
"could not start; status 3: io_uring not allowed (seccomp, sysctl).\n"
"SIGINT/SIGTERM shut down gracefully; SIGHUP reloads the auth file and\n"
"the TLS certificate.\n",
	      out);
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
