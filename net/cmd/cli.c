/*
 * cli.c - net001-cli, a command-line NET-001 client in the manner of
 * redis-cli, on libnet001 (client.h): main(), the options, the commands.
 *
 * One command per run (repeated with -r N -i SEC), one connection per
 * command; with no command, an interactive prompt (cli_repl.c); --stat and
 * --latency watch a server (cli_watch.c). Results go to stdout (text, or
 * one JSON object per line with --json), one-line errors to stderr, and
 * the exit status says what went wrong:
 *
 *   0  success
 *   1  the server said no (ERROR frame, failed auth) or broke the protocol
 *   2  usage error (bad option, argument or file)
 *   3  could not connect, connection lost, or timed out
 *
 * Options go through the shared parser (core/opt.h): the global ones
 * before the command, each command's own after its name.
 */
#include "net/cmd/cli.h"

#include "core/errbuf.h"
#include "core/opt.h"
#include "net001_build.h"
#include "proto/authdigest.h"
#include "proto/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_SLICE_MS 250
#define COUNT_MAX 1000000000u

volatile sig_atomic_t cli_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

/* ---- shared helpers ------------------------------------------------------- */

static bool usage_hint = true; /* one-shot mode: point at --help */

int usage_error(const struct cli *o, const char *fmt, ...)
{
	va_list ap;
	(void)o;
	va_start(ap, fmt);
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (usage_hint)
		fprintf(stderr, "Try '" PROG " --help' for more information.\n");
	va_end(ap);
	return EXIT_USAGE;
}

void cli_peer(const char *host, unsigned port, char *buf, size_t cap)
{
	bool v6 = strchr(host, ':') != NULL;
	snprintf(buf, cap, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

int cli_fail(struct n1c *c, const char *what, int err)
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

int cli_open(const struct cli *o, struct n1c **out)
{
	char peer[300], what[320];
	cli_peer(o->host, o->port, peer, sizeof peer);
	snprintf(what, sizeof what, "connect %s", peer);
	*out = NULL;
	int r = n1c_connect(out, o->host, o->port, (int)o->timeout_ms);
	if (r < 0)
		return cli_fail(NULL, what, r);
	if (o->tls) {
		r = n1c_start_tls(*out, o->host, o->tls_ca, !o->tls_insecure);
		if (r < 0) {
			snprintf(what, sizeof what, "TLS with %s", peer);
			r = cli_fail(*out, what, r);
			n1c_close(*out);
			*out = NULL;
			return r;
		}
	}
	if (!o->has_auth)
		return EXIT_OK;

	bool ok = false;
	r = n1c_auth(*out, o->auth_user, o->auth_token, &ok, NULL);
	if (r < 0)
		r = cli_fail(*out, "auth", r);
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

int64_t cli_now_ms(void)
{
	return (int64_t)(clock_now_ns() / 1000000u);
}

void cli_nap(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* ---- JSON ------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t b = p[0];
	size_t len;
	uint32_t cp;
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf) {
		len = 2;
		cp = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		cp = b & 0x0f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		cp = b & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static bool is_utf8(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

static void json_bytes(FILE *f, const uint8_t *p, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];
		switch (b) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (b < 0x20 || b == 0x7f)
				fprintf(f, "\\u%04x", b);
			else
				fputc(b, f);
		}
	}
	fputc('"', f);
}

void json_string(FILE *f, const char *s)
{
	json_bytes(f, (const uint8_t *)s, strlen(s));
}

void json_payload(FILE *f, const char *key, const uint8_t *p, size_t n)
{
	if (is_utf8(p, n)) {
		fprintf(f, "\"%s\":", key);
		json_bytes(f, p, n);
		return;
	}
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	fprintf(f, "\"%s_base64\":\"", key);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		fputc(b64[(v >> 18) & 63], f);
		fputc(b64[(v >> 12) & 63], f);
		fputc(i + 1 < n ? b64[(v >> 6) & 63] : '=', f);
		fputc(i + 2 < n ? b64[v & 63] : '=', f);
	}
	fputc('"', f);
}

/* ---- commands --------------------------------------------------------------- */

/* One command line, parsed: the command's options and arguments, and a
 * payload read from -f before any connection is made. */
struct cmdline {
	uint64_t count;         /* ping -c, listen -n */
	uint32_t interval_ms;   /* ping -i */
	uint32_t keepalive_ms;  /* listen -k */
	const char *file;       /* echo/broadcast -f */
	char **args;            /* positional arguments */
	int nargs;
	uint8_t *payload;       /* echo/broadcast: the bytes to send */
	size_t len;
	bool from_file;
};

static int cmd_ping(const struct cli *o, struct cmdline *cl)
{
	struct n1c *c;
	int rc = cli_open(o, &c);
	if (rc != EXIT_OK)
		return rc;

	char peer[300];
	cli_peer(o->host, o->port, peer, sizeof peer);
	uint64_t sent = 0, received = 0;
	double min = 0, max = 0, sum = 0;
	for (uint64_t seq = 1; cl->count == 0 || seq <= cl->count; seq++) {
		if (seq > 1 && cl->interval_ms > 0)
			cli_nap(cl->interval_ms);
		if (cli_interrupted)
			break;
		uint64_t rtt;
		sent++;
		int r = n1c_ping(c, &rtt);
		if (r == -EINTR) {
			sent--;
			break;
		}
		if (r == N1C_ETIMEOUT) {
			if (o->json)
				printf("{\"type\":\"timeout\",\"seq\":%llu}\n", (unsigned long long)seq);
			else
				printf("timeout from %s: seq=%llu\n", peer, (unsigned long long)seq);
			fflush(stdout);
			continue;
		}
		if (r < 0) {
			rc = cli_fail(c, "ping", r);
			goto out;
		}
		double ms = (double)rtt / 1e6;
		if (received == 0 || ms < min)
			min = ms;
		if (received == 0 || ms > max)
			max = ms;
		sum += ms;
		received++;
		if (o->json)
			printf("{\"type\":\"pong\",\"seq\":%llu,\"rtt_ms\":%.3f}\n",
			       (unsigned long long)seq, ms);
		else
			printf("PONG from %s: seq=%llu time=%.3f ms\n", peer,
			       (unsigned long long)seq, ms);
		fflush(stdout);
	}
	if (o->json) {
		printf("{\"type\":\"ping_summary\",\"sent\":%llu,\"received\":%llu,\"lost\":%llu",
		       (unsigned long long)sent, (unsigned long long)received,
		       (unsigned long long)(sent - received));
		if (received > 0)
			printf(",\"rtt_min_ms\":%.3f,\"rtt_avg_ms\":%.3f,\"rtt_max_ms\":%.3f",
			       min, sum / (double)received, max);
		printf("}\n");
	} else {
		printf("--- %s ping statistics ---\n", peer);
		printf("%llu sent, %llu received, %llu lost\n", (unsigned long long)sent,
		       (unsigned long long)received, (unsigned long long)(sent - received));
		if (received > 0)
			printf("rtt min/avg/max = %.3f/%.3f/%.3f ms\n", min,
			       sum / (double)received, max);
	}
	if (received < sent) {
		fprintf(stderr, PROG ": ping: %llu of %llu timed out\n",
		        (unsigned long long)(sent - received), (unsigned long long)sent);
		rc = EXIT_CONN;
	}
out:
	n1c_close(c);
	return rc;
}

static int cmd_echo(const struct cli *o, struct cmdline *cl)
{
	struct n1c *c;
	int rc = cli_open(o, &c);
	if (rc != EXIT_OK)
		return rc;
	struct n1c_frame reply;
	int r = n1c_echo(c, cl->payload, cl->len, &reply);
	if (r < 0) {
		rc = cli_fail(c, "echo", r);
	} else if (o->json) {
		printf("{\"type\":\"echo_reply\",\"len\":%u,", reply.len);
		json_payload(stdout, "payload", reply.payload, reply.len);
		printf("}\n");
	} else {
		/* A payload from a file comes back byte for byte; TEXT gets a
		 * newline, as a shell's echo does. */
		fwrite(reply.payload, 1, reply.len, stdout);
		if (!cl->from_file)
			putchar('\n');
	}
	fflush(stdout);
	n1c_close(c);
	return rc;
}

static int cmd_broadcast(const struct cli *o, struct cmdline *cl)
{
	struct n1c *c;
	int rc = cli_open(o, &c);
	if (rc != EXIT_OK)
		return rc;
	int r = n1c_broadcast(c, cl->payload, cl->len);
	if (r == 0)
		r = n1c_sync(c);
	if (r < 0)
		rc = cli_fail(c, "broadcast", r);
	else if (o->json)
		printf("{\"type\":\"broadcast\",\"len\":%zu}\n", cl->len);
	fflush(stdout);
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

static int cmd_listen(const struct cli *o, struct cmdline *cl)
{
	struct n1c *c;
	int rc = cli_open(o, &c);
	if (rc != EXIT_OK)
		return rc;
	/* A round trip proves the server has taken the connection in, so a
	 * broadcast sent after the line below reaches it. */
	int r = n1c_sync(c);
	if (r < 0) {
		rc = cli_fail(c, "listen", r);
		goto out;
	}
	if (!o->has_auth)
		cli_check_auth_needed(o);
	char peer[300];
	cli_peer(o->host, o->port, peer, sizeof peer);
	fprintf(stderr, "listening on %s (Ctrl-C to quit)\n", peer);

	uint64_t got = 0;
	long keepalive = cl->keepalive_ms;
	/* The server's idle timer counts frames from us, not to us: ping on a
	 * clock, whatever arrives. */
	int64_t next_ping = cli_now_ms() + keepalive;
	while (!cli_interrupted && (cl->count == 0 || got < cl->count)) {
		struct n1c_frame f;
		/* Short waits: a signal landing just before poll() is seen soon. */
		r = n1c_recv(c, LISTEN_SLICE_MS, &f);
		if (r == 0 && f.type == FRAME_BROADCAST) {
			if (o->json) {
				printf("{\"type\":\"broadcast\",\"len\":%u,", f.len);
				json_payload(stdout, "payload", f.payload, f.len);
				printf("}\n");
			} else {
				print_escaped(f.payload, f.len);
			}
			fflush(stdout);
			got++;
		} else if (r == 0 && f.type == FRAME_ERROR) {
			rc = cli_fail(c, "listen", N1C_ESERVER);
			if (msg_error_closes(n1c_server_error(c, NULL)))
				goto out;
			rc = EXIT_OK;
		} else if (r < 0 && r != N1C_ETIMEOUT) {
			break;
		}
		/* f is not used past here: the ping below may reuse its memory.
		 * Broadcasts arriving during the ping are queued for n1c_recv(). */
		r = 0;
		if (keepalive > 0 && cli_now_ms() >= next_ping) {
			next_ping = cli_now_ms() + keepalive;
			r = n1c_ping(c, NULL);
			if (r < 0)
				break;
		}
	}
	if (r < 0 && r != -EINTR)
		rc = cli_fail(c, "listen", r);
out:
	n1c_close(c);
	return rc;
}

static int cmd_auth(const struct cli *o, struct cmdline *cl)
{
	const char *user = cl->args[0], *token = cl->args[1];
	struct n1c *c;
	int rc = cli_open(o, &c);
	if (rc != EXIT_OK)
		return rc;
	bool ok = false;
	uint8_t session[MSG_SESSION_ID_LEN];
	int r = n1c_auth(c, user, token, &ok, session);
	if (r < 0) {
		rc = cli_fail(c, "auth", r);
	} else if (!ok) {
		fprintf(stderr, PROG ": auth: authentication failed for user '%s'\n", user);
		rc = EXIT_SERVER;
	} else {
		char hex[2 * MSG_SESSION_ID_LEN + 1];
		for (size_t i = 0; i < sizeof session; i++)
			snprintf(hex + 2 * i, 3, "%02x", session[i]);
		if (o->json)
			printf("{\"type\":\"auth\",\"ok\":true,\"session\":\"%s\"}\n", hex);
		else
			printf("OK session=%s\n", hex);
	}
	fflush(stdout);
	n1c_close(c);
	return rc;
}

/* Fill buf with up to cap bytes (fewer only at end of input). */
static ssize_t read_full(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR) {
			if (cli_interrupted)
				return -EINTR;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int cmd_send(const struct cli *o, struct cmdline *cl)
{
	int rc;
	const char *path = cl->args[0];
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
	rc = cli_open(o, &c);
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
		rc = cli_fail(c, "send", r);
		goto out;
	}
	if (o->json)
		printf("{\"type\":\"send\",\"bytes\":%zu,\"frames\":%zu}\n", total, frames);
	else
		printf("sent %zu bytes in %zu DATA frame%s\n", total, frames,
		       frames == 1 ? "" : "s");
	fflush(stdout);
out:
	n1c_close(c);
free_buf:
	free(buf);
close_fd:
	if (!is_stdin)
		close(fd);
	return rc;
}

static int cmd_hash_token(const struct cli *o, struct cmdline *cl)
{
	const char *token = cl->args[0];
	char hex[AUTHDIGEST_HEX_LEN + 1];
	if (authdigest_hex(token, strlen(token), hex) < 0) {
		fprintf(stderr, PROG ": hash-token: SHA-256 failed\n");
		return EXIT_SERVER;
	}
	if (o->json)
		printf("{\"type\":\"hash_token\",\"sha256\":\"%s\"}\n", hex);
	else
		printf("%s\n", hex);
	fflush(stdout);
	return EXIT_OK;
}

static int cmd_help(const struct cli *o, struct cmdline *cl)
{
	(void)cl;
	cli_usage_commands(stdout);
	if (o->interactive)
		printf("Here also: 'N command' runs it N times (-i SEC apart); quit, exit or\n"
		       "Ctrl-D leaves; Ctrl-C stops a running command.\n");
	fflush(stdout);
	return EXIT_OK;
}

/* ---- command table and parsing ---------------------------------------------- */

static const struct opt ping_opts[] = {
	{ .name = "count", .short_name = 'c', .kind = OPT_UINT, .min = 0, .max = COUNT_MAX,
	  OPT_AT(struct cmdline, count) },
	{ .name = "interval", .short_name = 'i', .kind = OPT_UINT, .min = 0, .max = 3600000,
	  .unit = "ms", OPT_AT(struct cmdline, interval_ms) },
};
static const struct opt listen_opts[] = {
	{ .name = "count", .short_name = 'n', .kind = OPT_UINT, .min = 1, .max = COUNT_MAX,
	  OPT_AT(struct cmdline, count) },
	{ .name = "keepalive", .short_name = 'k', .kind = OPT_UINT, .min = 0, .max = INT_MAX,
	  .unit = "ms", OPT_AT(struct cmdline, keepalive_ms) },
};
static const struct opt file_opts[] = {
	{ .name = "file", .short_name = 'f', .kind = OPT_STRING,
	  OPT_AT(struct cmdline, file) },
};

enum payload_kind { NO_PAYLOAD, PAYLOAD_TEXT_OR_FILE };

struct command {
	const char *name;
	int (*run)(const struct cli *o, struct cmdline *cl);
	const struct opt *opts;
	size_t nopts;
	int nargs;              /* positional arguments; -1: any number */
	const char *args_name;  /* for "expected ..." */
	enum payload_kind payload;
	bool offline;           /* needs no server */
};

#define OPTS(t) t, sizeof t / sizeof t[0]

static const struct command commands[] = {
	{ "ping", cmd_ping, OPTS(ping_opts), 0, NULL, NO_PAYLOAD, false },
	{ "echo", cmd_echo, OPTS(file_opts), 1, "1 argument", PAYLOAD_TEXT_OR_FILE, false },
	{ "broadcast", cmd_broadcast, OPTS(file_opts), 1, "1 argument", PAYLOAD_TEXT_OR_FILE, false },
	{ "listen", cmd_listen, OPTS(listen_opts), 0, NULL, NO_PAYLOAD, false },
	{ "auth", cmd_auth, NULL, 0, 2, "2 arguments", NO_PAYLOAD, false },
	{ "send", cmd_send, NULL, 0, 1, "FILE or -", NO_PAYLOAD, false },
	{ "hash-token", cmd_hash_token, NULL, 0, 1, "1 argument", NO_PAYLOAD, true },
	{ "help", cmd_help, NULL, 0, -1, NULL, NO_PAYLOAD, true },
};

void cli_usage_commands(FILE *out)
{
	fprintf(out,
"Commands:\n"
"  ping [-c N] [-i MS]   send N PINGs (default 1; 0: until Ctrl-C), MS apart\n"
"                        (default 1000); print each round-trip time and a\n"
"                        min/avg/max summary (long forms --count, --interval)\n"
"  echo TEXT             send ECHO, print the reply and a newline\n"
"  echo -f FILE|-        ECHO the file's (or stdin's) bytes, at most 65535,\n"
"                        and write the reply back byte for byte\n"
"  broadcast TEXT        send BROADCAST to every other client, then wait for\n"
"  broadcast -f FILE|-   a round trip so a refusal (AUTH_REQUIRED ...) is seen\n"
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
"  help                  this list\n"
"Arguments that start with '-' follow '--': echo -- -x\n",
		DEFAULT_KEEPALIVE_MS);
}

/* Read a -f payload: at most one frame's worth. */
static int load_payload(const struct cli *o, const char *cmd, struct cmdline *cl)
{
	bool is_stdin = strcmp(cl->file, "-") == 0;
	if (is_stdin && o->interactive)
		return usage_error(o, "%s: -f -: stdin holds the commands here", cmd);
	int fd = is_stdin ? STDIN_FILENO : open(cl->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, PROG ": %s: %s: %s\n", cmd, cl->file, strerror(errno));
		return EXIT_USAGE;
	}
	cl->payload = malloc(FRAME_MAX_PAYLOAD + 1);
	cl->from_file = cl->payload != NULL; /* owned: cmdline_free() */
	ssize_t n = cl->payload ? read_full(fd, cl->payload, FRAME_MAX_PAYLOAD + 1) : -ENOMEM;
	if (!is_stdin)
		close(fd);
	if (n < 0) {
		fprintf(stderr, PROG ": %s: %s: %s\n", cmd, cl->file, strerror((int)-n));
		return EXIT_USAGE;
	}
	if ((size_t)n > FRAME_MAX_PAYLOAD)
		return usage_error(o, "%s: %s: more than 65535 bytes (one frame; send takes more)",
		                   cmd, cl->file);
	cl->len = (size_t)n;
	cl->from_file = true;
	return EXIT_OK;
}

/*
 * Parse a command line (argv[0] is the command) into *cl. Returns EXIT_OK
 * with *cmd set, or the status of a reported error.
 */
static int prepare(const struct cli *o, int argc, char **argv,
                   const struct command **cmd, struct cmdline *cl)
{
	const struct command *k = NULL;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			k = &commands[i];
	if (!k)
		return usage_error(o, "unknown command '%s'", opt_show(argv[0]).s);

	memset(cl, 0, sizeof *cl);
	cl->count = strcmp(k->name, "ping") == 0 ? 1 : 0;
	cl->interval_ms = 1000;
	cl->keepalive_ms = DEFAULT_KEEPALIVE_MS;

	char prefix[32], err[300];
	snprintf(prefix, sizeof prefix, "%s: ", k->name);
	struct opt_parser p = {
		.opts = k->opts,
		.nopts = k->nopts,
		.base = cl,
		.prefix = prefix,
		.hint = " (an argument that starts with '-' goes after '--')",
		.positionals = true,
	};
	int rc = opt_parse(&p, argc, argv, 1, err, sizeof err);
	if (rc != 0)
		return usage_error(o, "%s", err);
	cl->args = argv + p.next;
	cl->nargs = argc - p.next;

	int want = k->nargs;
	if (k->payload == PAYLOAD_TEXT_OR_FILE && cl->file)
		want = 0;
	if (want >= 0 && cl->nargs != want) {
		if (want == 0)
			return usage_error(o, "%s: unexpected argument '%s'%s", k->name,
			                   opt_show(cl->args[0]).s,
			                   cl->file ? " (the payload comes from -f)" : "");
		return usage_error(o, "%s: expected %s", k->name, k->args_name);
	}
	if (strcmp(k->name, "auth") == 0) {
		size_t ul = strlen(cl->args[0]), tl = strlen(cl->args[1]);
		if (ul == 0 || ul > MSG_AUTH_USER_MAX)
			return usage_error(o, "auth: USER must be 1 to 64 bytes");
		if (tl == 0 || tl > MSG_AUTH_TOKEN_MAX)
			return usage_error(o, "auth: TOKEN must be 1 to 256 bytes");
	}
	if (strcmp(k->name, "send") == 0 && strcmp(cl->args[0], "-") == 0 && o->interactive)
		return usage_error(o, "send: -: stdin holds the commands here");
	if (k->payload == PAYLOAD_TEXT_OR_FILE) {
		if (cl->file) {
			rc = load_payload(o, k->name, cl);
			if (rc != EXIT_OK)
				return rc;
		} else {
			cl->payload = (uint8_t *)cl->args[0];
			cl->len = strlen(cl->args[0]);
			if (cl->len > FRAME_MAX_PAYLOAD)
				return usage_error(o, "%s: text longer than 65535 bytes", k->name);
		}
	}
	*cmd = k;
	return EXIT_OK;
}

static void cmdline_free(struct cmdline *cl)
{
	if (cl->from_file)
		free(cl->payload);
	cl->payload = NULL;
	cl->from_file = false;
}

/* Sleep seconds (fractions too), cut short by Ctrl-C. */
static void nap_s(double s)
{
	int64_t end = cli_now_ms() + (int64_t)(s * 1000.0);
	while (!cli_interrupted) {
		int64_t left = end - cli_now_ms();
		if (left <= 0)
			break;
		cli_nap(left > 200 ? 200 : left);
	}
}

/*
 * Run a command line `times` times (0: until Ctrl-C), interval seconds
 * apart. The status is that of the last run that failed, else 0.
 */
static int run_repeated(const struct cli *o, int argc, char **argv, uint32_t times,
                        double interval)
{
	const struct command *k = NULL;
	struct cmdline cl = { 0 };
	int rc = prepare(o, argc, argv, &k, &cl);
	if (rc != EXIT_OK) {
		cmdline_free(&cl);
		return rc;
	}
	int worst = EXIT_OK;
	for (uint32_t i = 0; times == 0 || i < times; i++) {
		if (i > 0)
			nap_s(interval);
		if (cli_interrupted && i > 0)
			break;
		rc = k->run(o, &cl);
		if (rc != EXIT_OK)
			worst = rc;
		if (cli_interrupted)
			break;
	}
	cmdline_free(&cl);
	return worst;
}

int cli_run_command(const struct cli *o, int argc, char **argv)
{
	return run_repeated(o, argc, argv, 1, 0);
}

int cli_run_command_times(const struct cli *o, int argc, char **argv, uint32_t times)
{
	return run_repeated(o, argc, argv, times, o->interval);
}

/* ---- global options and main -------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
"Usage: " PROG " [OPTIONS] [COMMAND [ARGS]]\n"
"\n"
"A command-line client for a NET-001 server (net001-server). Without a\n"
"command: an interactive prompt with history when stdin is a terminal,\n"
"otherwise one command per line read from stdin.\n"
"\n"
"Options (before the command; --flag VALUE or --flag=VALUE; a flag beats its\n"
"environment variable, which beats the default):\n"
"  --host H          server name or IPv4/IPv6 address (default " DEFAULT_HOST ";\n"
"                    env NET001_HOST)\n"
"  --port P          server port (default %d; env NET001_PORT)\n"
"  --timeout MS      connect timeout and wait for each answer (default %d)\n"
"  --auth USER:TOKEN authenticate right after connecting (split at the\n"
"                    first ':'; env NET001_AUTH); needed when the server has\n"
"                    an auth file\n"
"  --tls             TLS, checking the server's certificate against the\n"
"                    system's CAs and the --host name\n"
"  --tls-ca FILE     TLS, trusting the CAs in FILE (PEM) instead\n"
"  --tls-insecure    TLS without any certificate check (testing only)\n"
"  -r, --repeat N    run the command N times (0: until Ctrl-C); with --stat\n"
"                    or --latency: stop after N reports\n"
"  -i, --interval SEC  seconds between runs (default 0) or reports (default 1;\n"
"                    15 for --latency-history); fractions allowed\n"
"  --json            one JSON object per line on stdout instead of text\n"
"  --stat            one line per interval from the server's /metrics:\n"
"                    connections, messages/s, errors/s, deliveries/s\n"
"  --latency         PING continuously; min, max, average round trip\n"
"  --latency-history the same, a new line (and new figures) every -i SEC\n"
"  --metrics-port N  the server's metrics port (default port + %d; 0: none)\n"
"  -h, --help        this text\n"
"  -V, --version     print the version\n"
"\n",
		DEFAULT_PORT, DEFAULT_TIMEOUT_MS, METRICS_PORT_OFFSET);
	cli_usage_commands(out);
	fprintf(out,
"\n"
"Interactive mode: the same commands, one per line; 'N command' runs it N\n"
"times; help, quit. History in ~/.net001_cli_history (or $NET001_CLI_HISTFILE;\n"
"empty: none).\n"
"\n"
"Exit status: 0 ok, 1 server error or failed auth, 2 usage error,\n"
"3 connection failure or timeout.\n");
}

static int set_auth(void *base, const struct opt *opt, const char *val,
                    const char *what, char *err, size_t errlen)
{
	struct cli *o = base;
	(void)opt;
	/* The value holds a secret: no message repeats it. */
	const char *colon = strchr(val, ':');
	if (!colon || colon == val || !colon[1]) {
		errbuf_set(err, errlen, "%s: expected USER:TOKEN (split at the first ':')", what);
		return -EINVAL;
	}
	size_t ul = (size_t)(colon - val), tl = strlen(colon + 1);
	if (ul > MSG_AUTH_USER_MAX || tl > MSG_AUTH_TOKEN_MAX) {
		errbuf_set(err, errlen, "%s: USER is 1 to 64 bytes, TOKEN 1 to 256", what);
		return -EINVAL;
	}
	memcpy(o->auth_user, val, ul);
	o->auth_user[ul] = '\0';
	memcpy(o->auth_token, colon + 1, tl + 1);
	o->auth = val;
	o->has_auth = true;
	return 0;
}

static int set_tls_ca(void *base, const struct opt *opt, const char *val,
                      const char *what, char *err, size_t errlen)
{
	struct cli *o = base;
	(void)opt;
	if (access(val, R_OK) != 0) {
		errbuf_set(err, errlen, "%s: '%s': %s", what, opt_show(val).s, strerror(errno));
		return -EINVAL;
	}
	o->tls_ca = val;
	return 0;
}

enum {
	G_HELP = 1, G_VERSION, G_HOST, G_PORT, G_TIMEOUT, G_AUTH, G_TLS, G_TLS_CA,
	G_TLS_INSECURE, G_REPEAT, G_INTERVAL, G_JSON, G_STAT, G_LATENCY,
	G_LATENCY_HISTORY, G_METRICS_PORT,
};

static const struct opt global_opts[] = {
	{ .name = "host", .kind = OPT_STRING, .id = G_HOST, .env = "NET001_HOST",
	  OPT_AT(struct cli, host) },
	{ .name = "port", .kind = OPT_UINT, .id = G_PORT, .env = "NET001_PORT",
	  .min = 1, .max = 65535, OPT_AT(struct cli, port) },
	{ .name = "timeout", .kind = OPT_UINT, .id = G_TIMEOUT, .min = 1, .max = INT_MAX,
	  .unit = "ms", OPT_AT(struct cli, timeout_ms) },
	{ .name = "auth", .kind = OPT_CALL, .id = G_AUTH, .env = "NET001_AUTH", .fn = set_auth },
	{ .name = "tls", .kind = OPT_FLAG, .id = G_TLS, OPT_AT(struct cli, tls) },
	{ .name = "tls-ca", .kind = OPT_CALL, .id = G_TLS_CA, .fn = set_tls_ca },
	{ .name = "tls-insecure", .kind = OPT_FLAG, .id = G_TLS_INSECURE,
	  OPT_AT(struct cli, tls_insecure) },
	{ .name = "repeat", .short_name = 'r', .kind = OPT_UINT, .id = G_REPEAT, .min = 0,
	  .max = COUNT_MAX, OPT_AT(struct cli, repeat) },
	{ .name = "interval", .short_name = 'i', .kind = OPT_DOUBLE, .id = G_INTERVAL,
	  .dmin = 0, .dmax = 86400, .unit = "seconds", OPT_AT(struct cli, interval) },
	{ .name = "json", .kind = OPT_FLAG, .id = G_JSON, OPT_AT(struct cli, json) },
	{ .name = "stat", .kind = OPT_FLAG, .id = G_STAT, OPT_AT(struct cli, stat) },
	{ .name = "latency", .kind = OPT_FLAG, .id = G_LATENCY, OPT_AT(struct cli, latency) },
	{ .name = "latency-history", .kind = OPT_FLAG, .id = G_LATENCY_HISTORY,
	  OPT_AT(struct cli, latency_history) },
	{ .name = "metrics-port", .kind = OPT_UINT, .id = G_METRICS_PORT, .min = 0,
	  .max = 65535, OPT_AT(struct cli, metrics_port) },
	{ .name = "help", .short_name = 'h', .kind = OPT_STOP, .id = G_HELP },
	{ .name = "version", .short_name = 'V', .kind = OPT_STOP, .id = G_VERSION },
};

int main(int argc, char **argv)
{
	struct cli o = {
		.host = DEFAULT_HOST,
		.port = DEFAULT_PORT,
		.timeout_ms = DEFAULT_TIMEOUT_MS,
		.repeat = 1,
	};
	struct opt_parser p = {
		.opts = global_opts,
		.nopts = sizeof global_opts / sizeof global_opts[0],
		.base = &o,
		.hint = " (see --help)",
		.positionals = true,
	};
	char err[300];

	int rc = opt_parse(&p, argc, argv, 1, err, sizeof err);
	if (rc < 0)
		return usage_error(&o, "%s", err);
	if (rc == G_HELP) {
		usage(stdout);
		return EXIT_OK;
	}
	if (rc == G_VERSION) {
		printf(PROG " %s\n", NET001_VERSION);
		return EXIT_OK;
	}
	if (o.tls_ca || o.tls_insecure)
		o.tls = true;
	o.repeat_given = opt_given(&p, G_REPEAT);
	o.interval_given = opt_given(&p, G_INTERVAL);
	if (!opt_given(&p, G_METRICS_PORT)) {
		unsigned mp = (unsigned)o.port + METRICS_PORT_OFFSET;
		o.metrics_port = mp <= 65535 ? (uint16_t)mp : 0;
	}

	int modes = o.stat + o.latency + o.latency_history;
	if (modes > 1)
		return usage_error(&o, "--stat, --latency and --latency-history exclude each other");
	if (modes && p.next < argc)
		return usage_error(&o, "--%s takes no command ('%s')",
		                   o.stat ? "stat" : o.latency ? "latency" : "latency-history",
		                   opt_show(argv[p.next]).s);
	if (o.stat && o.metrics_port == 0)
		return usage_error(&o, "--stat needs the metrics port: port + %d is above 65535 "
		                   "or --metrics-port is 0", METRICS_PORT_OFFSET);

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocked wait must see the signal and stop. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (modes)
		return cli_watch(&o);
	if (p.next >= argc) {
		if (o.repeat_given)
			return usage_error(&o, "-r needs a command");
		o.interactive = true;
		usage_hint = false;
		return cli_repl(&o);
	}
	return run_repeated(&o, argc - p.next, argv + p.next, o.repeat, o.interval);
}
