/*
 * cli.c - net001-cli, a command-line NET-001 client in the manner of
 * redis-cli, on libnet001 (client.h).
 *
 * One command per run, one connection per command. Results go to stdout,
 * one-line errors to stderr, and the exit status says what went wrong:
 *
 *   0  success
 *   1  the server said no (ERROR frame, failed auth) or broke the protocol
 *   2  usage error (bad option, argument or file)
 *   3  could not connect, connection lost, or timed out
 */
#include "net/client/client.h"
#include "net001_build.h"
#include "proto/authdigest.h"
#include "proto/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "net001-cli"

enum {
	EXIT_OK = 0,
	EXIT_SERVER = 1,
	EXIT_USAGE = 2,
	EXIT_CONN = 3,
};

#define DEFAULT_HOST       "127.0.0.1"
#define DEFAULT_PORT       5000
#define DEFAULT_TIMEOUT_MS 5000
/* Below the server's default 60 s idle timeout, with room to spare. */
#define DEFAULT_KEEPALIVE_MS 20000
#define LISTEN_SLICE_MS 250

struct cli {
	const char *host;
	uint16_t port;
	int timeout_ms;
	char *auth_user;  /* from --auth USER:TOKEN, or NULL */
	char *auth_token;
	bool tls;         /* --tls, --tls-ca or --tls-insecure */
	const char *tls_ca;
	bool tls_insecure;
};

/* Set by SIGINT/SIGTERM; the waits it interrupts return -EINTR. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
"Usage: " PROG " [OPTIONS] COMMAND [ARGS]\n"
"\n"
"A command-line client for a NET-001 server (net001-server).\n"
"\n"
"Options (before the command):\n"
"  --host H          server name or IPv4/IPv6 address (default " DEFAULT_HOST ")\n"
"  --port P          server port (default %d)\n"
"  --timeout MS      connect timeout and wait for each answer (default %d)\n"
"  --auth USER:TOKEN authenticate right after connecting (split at the\n"
"                    first ':'); needed when the server has an auth file\n"
"  --tls             TLS, checking the server's certificate against the\n"
"                    system's CAs and the --host name\n"
"  --tls-ca FILE     TLS, trusting the CAs in FILE (PEM) instead\n"
"  --tls-insecure    TLS without any certificate check (testing only)\n"
"  --help            this text\n"
"  --version         print the version\n"
"\n"
"Commands:\n"
"  ping [-c N] [-i MS]   send N PINGs (default 1; 0: until Ctrl-C), MS apart\n"
"                        (default 1000); print each round-trip time and a\n"
"                        min/avg/max summary\n"
"  echo TEXT             send ECHO, print the reply\n"
"  broadcast TEXT        send BROADCAST to every other client, then wait for\n"
"                        a round trip so a refusal (AUTH_REQUIRED ...) is seen\n"
"  listen [-n N] [-k MS] print each BROADCAST received, one per line (control\n"
"                        bytes and '\\' escaped as \\xNN, \\n, \\\\), until N have\n"
"                        arrived or Ctrl-C; a PING every MS (default %d,\n"
"                        0: never) keeps the server's idle timeout away\n"
"  auth USER TOKEN       send AUTH, print the session id\n"
"  send FILE|-           send the file's bytes (or stdin's) as DATA frames:\n"
"                        one frame per 65535 bytes, so a larger file becomes\n"
"                        several frames; an empty file is one empty frame\n"
"  hash-token TOKEN      print the SHA-256 of TOKEN in hex, as a server auth\n"
"                        file line wants it: USER:HEX (no connection)\n"
"\n"
"Arguments that start with '-' follow '--': " PROG " echo -- -x\n"
"\n"
"Exit status: 0 ok, 1 server error or failed auth, 2 usage error,\n"
"3 connection failure or timeout.\n",
		DEFAULT_PORT, DEFAULT_TIMEOUT_MS, DEFAULT_KEEPALIVE_MS);
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	va_end(ap);
	return EXIT_USAGE;
}

/* getopt() said '?' (opterr is 0): name the option it choked on. */
static int bad_option(const char *cmd, char **argv)
{
	if (optopt > 0 && optopt < 128)
		return usage_error("%sbad or incomplete option '-%c'", cmd, optopt);
	return usage_error("%sbad or incomplete option '%s'", cmd, argv[optind - 1]);
}

/* Parse a decimal integer in [min, max]; false on anything else. */
static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* "host:port", with brackets around an IPv6 literal. */
static void peer_name(const struct cli *o, char *buf, size_t cap)
{
	bool v6 = strchr(o->host, ':') != NULL;
	snprintf(buf, cap, "%s%s%s:%u", v6 ? "[" : "", o->host, v6 ? "]" : "",
	         (unsigned)o->port);
}

/* Report a library error for step `what`; returns the exit status. */
static int fail(struct n1c *c, const char *what, int err)
{
	if (err == N1C_ESERVER) {
		const char *text;
		unsigned code = n1c_server_error(c, &text);
		const char *name = msg_error_name(code);
		fprintf(stderr, PROG ": %s: server error %u %s%s%s\n", what, code,
		        name ? name : "UNKNOWN", *text ? ": " : "", text);
		return EXIT_SERVER;
	}
	fprintf(stderr, PROG ": %s: %s\n", what, n1c_strerror(err));
	if (err == N1C_EPROTO || err == -ENOMEM)
		return EXIT_SERVER;
	/* N1C_ETLS, like a refused or timed-out connection: EXIT_CONN. */
	if (err == N1C_ETOOBIG || err == N1C_EINVAL)
		return EXIT_USAGE;
	return EXIT_CONN;
}

/* Connect, then authenticate if --auth was given. */
static int open_client(const struct cli *o, struct n1c **out)
{
	char peer[300];
	peer_name(o, peer, sizeof peer);
	char what[320];
	snprintf(what, sizeof what, "connect %s", peer);
	int r = n1c_connect(out, o->host, o->port, o->timeout_ms);
	if (r < 0)
		return fail(NULL, what, r);
	if (o->tls) {
		r = n1c_start_tls(*out, o->host, o->tls_ca, !o->tls_insecure);
		if (r < 0) {
			snprintf(what, sizeof what, "TLS with %s", peer);
			r = fail(*out, what, r);
			n1c_close(*out);
			*out = NULL;
			return r;
		}
	}
	if (!o->auth_user)
		return EXIT_OK;

	bool ok = false;
	r = n1c_auth(*out, o->auth_user, o->auth_token, &ok, NULL);
	if (r < 0)
		r = fail(*out, "auth", r);
	else if (!ok) {
		fprintf(stderr, PROG ": auth: authentication failed for user '%s'\n",
		        o->auth_user);
		r = EXIT_SERVER;
	}
	if (r != EXIT_OK) {
		n1c_close(*out);
		*out = NULL;
	}
	return r;
}

static int64_t now_ms(void)
{
	return (int64_t)(clock_now_ns() / 1000000u);
}

/* Sleep ms, cut short by a signal. */
static void nap(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* ---- commands ------------------------------------------------------------- */

static int cmd_ping(const struct cli *o, int argc, char **argv)
{
	long count = 1, interval = 1000;
	int ch;
	optind = 0;
	while ((ch = getopt(argc, argv, "+c:i:")) != -1) {
		switch (ch) {
		case 'c':
			if (!parse_long(optarg, 0, LONG_MAX, &count))
				return usage_error("ping: bad count '%s'", optarg);
			break;
		case 'i':
			if (!parse_long(optarg, 0, 3600000, &interval))
				return usage_error("ping: bad interval '%s'", optarg);
			break;
		default:
			return bad_option("ping: ", argv);
		}
	}
	if (optind != argc)
		return usage_error("ping: unexpected argument '%s'", argv[optind]);

	struct n1c *c;
	int rc = open_client(o, &c);
	if (rc != EXIT_OK)
		return rc;

	char peer[300];
	peer_name(o, peer, sizeof peer);
	long sent = 0, received = 0;
	double min = 0, max = 0, sum = 0;
	for (long seq = 1; count == 0 || seq <= count; seq++) {
		if (seq > 1 && interval > 0)
			nap(interval);
		if (interrupted)
			break;
		uint64_t rtt;
		sent++;
		int r = n1c_ping(c, &rtt);
		if (r == -EINTR) {
			sent--;
			break;
		}
		if (r == N1C_ETIMEOUT) {
			printf("timeout from %s: seq=%ld\n", peer, seq);
			fflush(stdout);
			continue;
		}
		if (r < 0) {
			rc = fail(c, "ping", r);
			goto out;
		}
		double ms = (double)rtt / 1e6;
		if (received == 0 || ms < min)
			min = ms;
		if (received == 0 || ms > max)
			max = ms;
		sum += ms;
		received++;
		printf("PONG from %s: seq=%ld time=%.3f ms\n", peer, seq, ms);
		fflush(stdout);
	}
	printf("--- %s ping statistics ---\n", peer);
	printf("%ld sent, %ld received, %ld lost\n", sent, received, sent - received);
	if (received > 0)
		printf("rtt min/avg/max = %.3f/%.3f/%.3f ms\n", min, sum / (double)received, max);
	if (received < sent) {
		fprintf(stderr, PROG ": ping: %ld of %ld timed out\n", sent - received, sent);
		rc = EXIT_CONN;
	}
out:
	n1c_close(c);
	return rc;
}

/* Commands with exactly n plain arguments and no options. */
static bool plain_args(int argc, char **argv, int n, const char *cmd, int *rc)
{
	optind = 0;
	if (getopt(argc, argv, "+") != -1) {
		*rc = usage_error("%s: bad option (put '--' before an argument "
		                  "that starts with '-')", cmd);
		return false;
	}
	if (argc - optind != n) {
		*rc = usage_error("%s: expected %d argument%s", cmd, n, n == 1 ? "" : "s");
		return false;
	}
	return true;
}

static int cmd_echo(const struct cli *o, int argc, char **argv)
{
	int rc;
	if (!plain_args(argc, argv, 1, "echo", &rc))
		return rc;
	const char *text = argv[optind];
	size_t len = strlen(text);
	if (len > FRAME_MAX_PAYLOAD)
		return usage_error("echo: text longer than 65535 bytes");

	struct n1c *c;
	rc = open_client(o, &c);
	if (rc != EXIT_OK)
		return rc;
	struct n1c_frame reply;
	int r = n1c_echo(c, text, len, &reply);
	if (r < 0) {
		rc = fail(c, "echo", r);
	} else {
		fwrite(reply.payload, 1, reply.len, stdout);
		putchar('\n');
	}
	n1c_close(c);
	return rc;
}

static int cmd_broadcast(const struct cli *o, int argc, char **argv)
{
	int rc;
	if (!plain_args(argc, argv, 1, "broadcast", &rc))
		return rc;
	const char *text = argv[optind];
	size_t len = strlen(text);
	if (len > FRAME_MAX_PAYLOAD)
		return usage_error("broadcast: text longer than 65535 bytes");

	struct n1c *c;
	rc = open_client(o, &c);
	if (rc != EXIT_OK)
		return rc;
	int r = n1c_broadcast(c, text, len);
	if (r == 0)
		r = n1c_sync(c);
	if (r < 0)
		rc = fail(c, "broadcast", r);
	n1c_close(c);
	return rc;
}

/* One payload as one line: control bytes, DEL and '\' escaped. */
static void print_escaped(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];
		if (b == '\\')
			fputs("\\\\", stdout);
		else if (b == '\n')
			fputs("\\n", stdout);
		else if (b < 0x20 || b == 0x7f)
			printf("\\x%02x", b);
		else
			putchar(b);
	}
	putchar('\n');
}

static int cmd_listen(const struct cli *o, int argc, char **argv)
{
	long limit = 0, keepalive = DEFAULT_KEEPALIVE_MS;
	int ch;
	optind = 0;
	while ((ch = getopt(argc, argv, "+n:k:")) != -1) {
		switch (ch) {
		case 'n':
			if (!parse_long(optarg, 1, LONG_MAX, &limit))
				return usage_error("listen: bad count '%s'", optarg);
			break;
		case 'k':
			if (!parse_long(optarg, 0, INT_MAX, &keepalive))
				return usage_error("listen: bad keepalive '%s'", optarg);
			break;
		default:
			return bad_option("listen: ", argv);
		}
	}
	if (optind != argc)
		return usage_error("listen: unexpected argument '%s'", argv[optind]);

	struct n1c *c;
	int rc = open_client(o, &c);
	if (rc != EXIT_OK)
		return rc;
	/* A round trip proves the server has taken the connection in, so a
	 * broadcast sent after the line below reaches it. */
	int r = n1c_sync(c);
	if (r < 0) {
		rc = fail(c, "listen", r);
		goto out;
	}
	char peer[300];
	peer_name(o, peer, sizeof peer);
	fprintf(stderr, "listening on %s (Ctrl-C to quit)\n", peer);

	long got = 0;
	/* The server's idle timer counts frames from us, not to us: ping on a
	 * clock, whatever arrives. */
	int64_t next_ping = now_ms() + keepalive;
	while (!interrupted && (limit == 0 || got < limit)) {
		struct n1c_frame f;
		/* Short waits: a signal landing just before poll() is seen soon. */
		r = n1c_recv(c, LISTEN_SLICE_MS, &f);
		if (r == 0 && f.type == FRAME_BROADCAST) {
			print_escaped(f.payload, f.len);
			fflush(stdout);
			got++;
		} else if (r == 0 && f.type == FRAME_ERROR) {
			rc = fail(c, "listen", N1C_ESERVER);
			if (msg_error_closes(n1c_server_error(c, NULL)))
				goto out;
			rc = EXIT_OK;
		} else if (r < 0 && r != N1C_ETIMEOUT) {
			break;
		}
		/* f is not used past here: the ping below may reuse its memory.
		 * Broadcasts arriving during the ping are queued for n1c_recv(). */
		r = 0;
		if (keepalive > 0 && now_ms() >= next_ping) {
			next_ping = now_ms() + keepalive;
			r = n1c_ping(c, NULL);
			if (r < 0)
				break;
		}
	}
	if (r < 0 && r != -EINTR)
		rc = fail(c, "listen", r);
out:
	n1c_close(c);
	return rc;
}

static int cmd_auth(const struct cli *o, int argc, char **argv)
{
	int rc;
	if (!plain_args(argc, argv, 2, "auth", &rc))
		return rc;
	const char *user = argv[optind], *token = argv[optind + 1];
	size_t ul = strlen(user), tl = strlen(token);
	if (ul == 0 || ul > MSG_AUTH_USER_MAX)
		return usage_error("auth: USER must be 1 to 64 bytes");
	if (tl == 0 || tl > MSG_AUTH_TOKEN_MAX)
		return usage_error("auth: TOKEN must be 1 to 256 bytes");

	struct n1c *c;
	rc = open_client(o, &c);
	if (rc != EXIT_OK)
		return rc;
	bool ok = false;
	uint8_t session[MSG_SESSION_ID_LEN];
	int r = n1c_auth(c, user, token, &ok, session);
	if (r < 0) {
		rc = fail(c, "auth", r);
	} else if (!ok) {
		fprintf(stderr, PROG ": auth: authentication failed for user '%s'\n", user);
		rc = EXIT_SERVER;
	} else {
		printf("OK session=");
		for (size_t i = 0; i < sizeof session; i++)
			printf("%02x", session[i]);
		putchar('\n');
	}
	n1c_close(c);
	return rc;
}

/* Fill buf with up to cap bytes (fewer only at end of input). */
static ssize_t read_full(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int cmd_send(const struct cli *o, int argc, char **argv)
{
	int rc;
	/* "-" means stdin, so no option parsing past "--" here. */
	if (argc >= 2 && strcmp(argv[1], "--") == 0) {
		argv++;
		argc--;
	} else if (argc >= 2 && argv[1][0] == '-' && argv[1][1] != '\0') {
		return usage_error("send: bad option '%s'", argv[1]);
	}
	if (argc != 2)
		return usage_error("send: expected FILE or -");
	const char *path = argv[1];
	bool is_stdin = strcmp(path, "-") == 0;
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, PROG ": send: %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	uint8_t *buf = malloc(FRAME_MAX_PAYLOAD);
	if (!buf) {
		fprintf(stderr, PROG ": send: out of memory\n");
		rc = EXIT_SERVER;
		goto close_fd;
	}

	struct n1c *c;
	rc = open_client(o, &c);
	if (rc != EXIT_OK)
		goto free_buf;

	size_t total = 0, frames = 0;
	int r = 0;
	for (;;) {
		ssize_t n = read_full(fd, buf, FRAME_MAX_PAYLOAD);
		if (n < 0) {
			fprintf(stderr, PROG ": send: %s: %s\n", path, strerror((int)-n));
			rc = EXIT_USAGE;
			goto out;
		}
		if (n == 0 && frames > 0)
			break;
		r = n1c_data(c, buf, (size_t)n);
		if (r < 0)
			break;
		frames++;
		total += (size_t)n;
		if ((size_t)n < FRAME_MAX_PAYLOAD)
			break;
	}
	if (r == 0)
		r = n1c_sync(c);
	if (r < 0) {
		rc = fail(c, "send", r);
		goto out;
	}
	printf("sent %zu bytes in %zu DATA frame%s\n", total, frames, frames == 1 ? "" : "s");
out:
	n1c_close(c);
free_buf:
	free(buf);
close_fd:
	if (!is_stdin)
		close(fd);
	return rc;
}

static int cmd_hash_token(const struct cli *o, int argc, char **argv)
{
	(void)o;
	int rc;
	if (!plain_args(argc, argv, 1, "hash-token", &rc))
		return rc;
	const char *token = argv[optind];
	char hex[AUTHDIGEST_HEX_LEN + 1];
	if (authdigest_hex(token, strlen(token), hex) < 0) {
		fprintf(stderr, PROG ": hash-token: SHA-256 failed\n");
		return EXIT_SERVER;
	}
	puts(hex);
	return EXIT_OK;
}

static const struct {
	const char *name;
	int (*run)(const struct cli *o, int argc, char **argv);
} commands[] = {
	{ "ping", cmd_ping },
	{ "echo", cmd_echo },
	{ "broadcast", cmd_broadcast },
	{ "listen", cmd_listen },
	{ "auth", cmd_auth },
	{ "send", cmd_send },
	{ "hash-token", cmd_hash_token },
};

int main(int argc, char **argv)
{
	struct cli o = {
		.host = DEFAULT_HOST,
		.port = DEFAULT_PORT,
		.timeout_ms = DEFAULT_TIMEOUT_MS,
	};
	enum { OPT_HOST = 256, OPT_PORT, OPT_TIMEOUT, OPT_AUTH, OPT_VERSION, OPT_TLS,
	       OPT_TLS_CA, OPT_TLS_INSECURE };
	static const struct option longopts[] = {
		{ "tls", no_argument, NULL, OPT_TLS },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "tls-insecure", no_argument, NULL, OPT_TLS_INSECURE },
		{ "host", required_argument, NULL, OPT_HOST },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "auth", required_argument, NULL, OPT_AUTH },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};

	opterr = 0;
	int ch;
	long v;
	while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_HOST:
			if (!*optarg)
				return usage_error("empty --host");
			o.host = optarg;
			break;
		case OPT_PORT:
			if (!parse_long(optarg, 1, 65535, &v))
				return usage_error("bad --port '%s' (1 to 65535)", optarg);
			o.port = (uint16_t)v;
			break;
		case OPT_TIMEOUT:
			if (!parse_long(optarg, 1, INT_MAX, &v))
				return usage_error("bad --timeout '%s' (milliseconds, > 0)", optarg);
			o.timeout_ms = (int)v;
			break;
		case OPT_AUTH: {
			char *colon = strchr(optarg, ':');
			if (!colon || colon == optarg || !colon[1])
				return usage_error("bad --auth '%s' (USER:TOKEN)", optarg);
			*colon = '\0';
			o.auth_user = optarg;
			o.auth_token = colon + 1;
			if (strlen(o.auth_user) > MSG_AUTH_USER_MAX ||
			    strlen(o.auth_token) > MSG_AUTH_TOKEN_MAX)
				return usage_error("bad --auth: USER is 1 to 64 bytes, "
				                   "TOKEN 1 to 256");
			break;
		}
		case OPT_TLS:
			o.tls = true;
			break;
		case OPT_TLS_CA:
			if (access(optarg, R_OK) != 0)
				return usage_error("--tls-ca %s: %s", optarg, strerror(errno));
			o.tls = true;
			o.tls_ca = optarg;
			break;
		case OPT_TLS_INSECURE:
			o.tls = true;
			o.tls_insecure = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case OPT_VERSION:
			printf(PROG " %s\n", NET001_VERSION);
			return EXIT_OK;
		default:
			return bad_option("", argv);
		}
	}
	if (optind >= argc)
		return usage_error("no command given");

	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		struct sigaction sa = { .sa_handler = on_signal };
		sigemptyset(&sa.sa_mask);
		/* No SA_RESTART: a blocked wait must see the signal and stop. */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		return commands[i].run(&o, argc - optind, argv + optind);
	}
	return usage_error("unknown command '%s'", name);
}
