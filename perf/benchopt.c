/*
 * benchopt.c - net001-bench option parsing. See benchopt.h.
 *
 * The options are a table for the shared parser (core/opt.h): "--name
 * value" or "--name=value", numbers plain decimal with nothing after them,
 * each error naming the option. The rules between options are here.
 */
#include "perf/benchopt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errbuf.h"
#include "core/opt.h"
#include "proto/frame.h"
#include "proto/msg.h"

static const char usage[] =
"usage: net001-bench [options]\n"
"  --host ADDR          server address (default 127.0.0.1)\n"
"  --port N             server port (default 5000)\n"
"  --connections N      load connections (default 50; 1 for --flood)\n"
"  --threads N          client threads, each with its own io_uring (default 1)\n"
"  --pipeline N         requests in flight per connection (default 1); --flood:\n"
"                       messages per write (default: 16 KiB of them)\n"
"  --duration SEC       measured window (default 10)\n"
"  --warmup SEC         load before the window, not counted (default 2)\n"
"  --type T             ping | echo | data | broadcast (default ping)\n"
"  --receivers N        broadcast: N extra connections that only listen\n"
"  --receivers-at PORT[,PORT...]\n"
"                       broadcast: the receivers spread round-robin over these\n"
"                       ports on --host (the nodes of a --cluster); the\n"
"                       senders stay on --port\n"
"  --payload BYTES      echo/data/broadcast payload, 0..65535 (default 64)\n"
"  --rate MSGS/S        open loop over all connections (0 = closed loop); with\n"
"                       --flood: broadcasts/s written on schedule, never\n"
"                       waiting, each stamped with the time it was due\n"
"  --flood              broadcast: senders write as fast as the sockets take\n"
"                       (or at --rate), with no bound on broadcasts in flight\n"
"  --check-every N      --flood: check the CRC and payload of every Nth message\n"
"                       a receiver gets (default 16; 1 = all); framing, length\n"
"                       and time stamp are checked on every one\n"
"  --target T           net001 | redis | nats (default net001); redis and nats\n"
"                       run the flood: PUBLISH (RESP) or PUB (NATS) to N\n"
"                       subscribers\n"
"  --connect-only       open the connections, hold them, count the open ones\n"
"  --source-addrs N     bind connections to 127.0.0.1..127.0.0.N\n"
"  --raw-echo           expect the request bytes back verbatim\n"
"  --server-pid PID     report that process's CPU per message and its RSS,\n"
"                       sampled every second\n"
"  --auth USER:TOKEN    send AUTH first on each connection\n"
"  --json               one JSON object on stdout\n"
"  --csv                a header line and one line of values on stdout\n"
"  --progress           a line per second on stderr (default: when stderr is\n"
"                       a terminal); --no-progress: never\n"
"  --help               this text\n";

const char *benchopt_usage(void)
{
	return usage;
}

const char *benchopt_type_name(enum bench_type t)
{
	switch (t) {
	case BENCH_PING: return "ping";
	case BENCH_ECHO: return "echo";
	case BENCH_DATA: return "data";
	case BENCH_BROADCAST: return "broadcast";
	}
	return "?";
}

const char *benchopt_target_name(enum bench_target t)
{
	switch (t) {
	case TARGET_NET001: return "net001";
	case TARGET_REDIS: return "redis";
	case TARGET_NATS: return "nats";
	}
	return "?";
}

static int fail(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, BENCHOPT_ERR_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int set_auth(void *base, const struct opt *opt, const char *val,
                    const char *what, char *err, size_t errlen)
{
	struct benchopt *o = base;
	(void)opt;
	const char *colon = strchr(val, ':');
	if (!colon) {
		errbuf_set(err, errlen, "%s: expected USER:TOKEN", what);
		return -EINVAL;
	}
	size_t ul = (size_t)(colon - val), tl = strlen(colon + 1);
	if (ul < 1 || ul > MSG_AUTH_USER_MAX) {
		errbuf_set(err, errlen, "%s: user name must be 1..64 bytes", what);
		return -EINVAL;
	}
	if (tl < 1 || tl > MSG_AUTH_TOKEN_MAX) {
		errbuf_set(err, errlen, "%s: token must be 1..256 bytes", what);
		return -EINVAL;
	}
	o->auth_user = val;
	o->auth_user_len = ul;
	o->auth_token = colon + 1;
	o->auth_token_len = tl;
	return 0;
}

enum opt_id {
	O_HELP = 1, O_HOST, O_PORT, O_CONNECTIONS, O_THREADS, O_PIPELINE, O_DURATION,
	O_WARMUP, O_TYPE, O_RECEIVERS, O_PAYLOAD, O_RATE, O_SOURCE_ADDRS, O_CHECK_EVERY,
	O_SERVER_PID, O_AUTH, O_TARGET, O_FLOOD, O_CONNECT_ONLY, O_RAW_ECHO, O_JSON,
	O_CSV, O_PROGRESS, O_NO_PROGRESS, O_RECEIVERS_AT,
};

static int set_receivers_at(void *base, const struct opt *opt, const char *val,
                            const char *what, char *err, size_t errlen)
{
	struct benchopt *o = base;
	(void)opt;
	o->nreceivers_at = 0;
	for (const char *p = val;;) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || *p < '0' || *p > '9' || v < 1 || v > 65535 ||
		    (*end != ',' && *end != '\0')) {
			errbuf_set(err, errlen, "%s: expected PORT[,PORT...] (1..65535)", what);
			return -EINVAL;
		}
		if (o->nreceivers_at == BENCH_RECEIVERS_AT_MAX) {
			errbuf_set(err, errlen, "%s: at most %d ports", what, BENCH_RECEIVERS_AT_MAX);
			return -EINVAL;
		}
		o->receivers_at[o->nreceivers_at++] = (uint16_t)v;
		if (!*end)
			return 0;
		p = end + 1;
	}
}

static const char *const type_names[] = { "ping", "echo", "data", "broadcast", NULL };
static const char *const target_names[] = { "net001", "redis", "nats", NULL };

#define U(n, i, lo, hi, field) \
	{ .name = n, .kind = OPT_UINT, .id = i, .min = lo, .max = hi, \
	  OPT_AT(struct benchopt, field) }
#define F(n, i, field) { .name = n, .kind = OPT_FLAG, .id = i, OPT_AT(struct benchopt, field) }

static const struct opt opts[] = {
	{ .name = "host", .kind = OPT_STRING, .id = O_HOST, OPT_AT(struct benchopt, host) },
	U("port", O_PORT, 1, 65535, port),
	U("connections", O_CONNECTIONS, 1, 1000000, connections),
	U("threads", O_THREADS, 1, 256, threads),
	U("pipeline", O_PIPELINE, 1, 4096, pipeline),
	{ .name = "duration", .kind = OPT_DOUBLE, .id = O_DURATION, .dmin = 0.001,
	  .dmax = 86400, .unit = "seconds", OPT_AT(struct benchopt, duration) },
	{ .name = "warmup", .kind = OPT_DOUBLE, .id = O_WARMUP, .dmin = 0, .dmax = 3600,
	  .unit = "seconds", OPT_AT(struct benchopt, warmup) },
	{ .name = "type", .kind = OPT_CHOICE, .id = O_TYPE, .choices = type_names,
	  OPT_AT(struct benchopt, type) },
	U("receivers", O_RECEIVERS, 0, 1000000, receivers),
	U("payload", O_PAYLOAD, 0, FRAME_MAX_PAYLOAD, payload),
	{ .name = "rate", .kind = OPT_DOUBLE, .id = O_RATE, .dmin = 0, .dmax = 1e9,
	  .unit = "messages/s", OPT_AT(struct benchopt, rate) },
	U("check-every", O_CHECK_EVERY, 1, 1000000, check_every),
	U("source-addrs", O_SOURCE_ADDRS, 1, 254, source_addrs),
	U("server-pid", O_SERVER_PID, 1, 0x3fffffff, server_pid),
	{ .name = "auth", .kind = OPT_CALL, .id = O_AUTH, .fn = set_auth },
	{ .name = "target", .kind = OPT_CHOICE, .id = O_TARGET, .choices = target_names,
	  OPT_AT(struct benchopt, target) },
	F("flood", O_FLOOD, flood),
	F("connect-only", O_CONNECT_ONLY, connect_only),
	F("raw-echo", O_RAW_ECHO, raw_echo),
	F("json", O_JSON, json),
	F("csv", O_CSV, csv),
	F("progress", O_PROGRESS, progress),
	F("no-progress", O_NO_PROGRESS, no_progress),
	{ .name = "receivers-at", .kind = OPT_CALL, .id = O_RECEIVERS_AT, .fn = set_receivers_at },
	{ .name = "help", .kind = OPT_STOP, .id = O_HELP },
};

int benchopt_parse(struct benchopt *o, int argc, char **argv,
                   char err[BENCHOPT_ERR_MAX])
{
	struct opt_parser p = {
		.opts = opts,
		.nopts = sizeof opts / sizeof opts[0],
		.base = o,
		.hint = " (see --help)",
	};

	memset(o, 0, sizeof *o);
	o->host = "127.0.0.1";
	o->port = 5000;
	o->connections = 50;
	o->threads = 1;
	o->pipeline = 1;
	o->duration = 10;
	o->warmup = 2;
	o->type = BENCH_PING;
	o->target = TARGET_NET001;
	o->payload = 64;
	o->check_every = 16;

	int rc = opt_parse(&p, argc, argv, 1, err, BENCHOPT_ERR_MAX);
	if (rc < 0)
		return rc;
	if (rc == O_HELP) {
		o->help = true;
		return 0;
	}
	bool payload_set = opt_given(&p, O_PAYLOAD), receivers_set = opt_given(&p, O_RECEIVERS);
	bool rate_set = opt_given(&p, O_RATE), pipeline_set = opt_given(&p, O_PIPELINE);
	o->pipeline_given = pipeline_set;

	/* Combinations. */
	if (o->target != TARGET_NET001) {
		if (opt_given(&p, O_TYPE) && o->type != BENCH_BROADCAST)
			return fail(err, "--target %s runs the broadcast flood: drop --type %s",
			            benchopt_target_name(o->target), benchopt_type_name(o->type));
		if (o->auth_user || o->raw_echo || o->connect_only)
			return fail(err, "--target %s takes none of --auth, --raw-echo and --connect-only",
			            benchopt_target_name(o->target));
		o->type = BENCH_BROADCAST;
		o->flood = true;
	}
	if (o->flood) {
		if (!opt_given(&p, O_TYPE))
			o->type = BENCH_BROADCAST;
		if (o->type != BENCH_BROADCAST)
			return fail(err, "--flood needs --type broadcast");
		if (o->connect_only || o->raw_echo)
			return fail(err, "--flood sends broadcasts: drop --connect-only and --raw-echo");
		if (o->source_addrs)
			return fail(err, "--source-addrs does not apply to --flood");
		if (!opt_given(&p, O_CONNECTIONS))
			o->connections = 1;
	} else if (opt_given(&p, O_CHECK_EVERY)) {
		return fail(err, "--check-every applies to --flood (the paced bench checks every reply)");
	}
	if (o->type == BENCH_PING) {
		if (payload_set && o->payload != MSG_PING_LEN)
			return fail(err, "--payload: a PING payload is always 8 bytes");
		o->payload = MSG_PING_LEN;
	}
	if (receivers_set && o->type != BENCH_BROADCAST)
		return fail(err, "--receivers only applies to --type broadcast");
	if (o->nreceivers_at && (o->type != BENCH_BROADCAST || o->receivers == 0))
		return fail(err, "--receivers-at needs --type broadcast and --receivers N");
	if (o->nreceivers_at && o->target != TARGET_NET001)
		return fail(err, "--receivers-at spreads receivers over net001 servers: drop --target %s",
		            benchopt_target_name(o->target));
	if (o->raw_echo && o->type != BENCH_PING && o->type != BENCH_ECHO)
		return fail(err, "--raw-echo needs --type ping or echo (nothing else is echoed)");
	if (o->raw_echo && o->auth_user)
		return fail(err, "--raw-echo and --auth exclude each other (a raw echo server has no AUTH)");
	if (o->connect_only && (rate_set || pipeline_set || receivers_set || payload_set))
		return fail(err, "--connect-only sends nothing: drop --rate, --pipeline, --receivers and --payload");
	if (o->json && o->csv)
		return fail(err, "--json and --csv exclude each other");
	if (o->progress && o->no_progress)
		return fail(err, "--progress and --no-progress exclude each other");
	if (o->source_addrs) {
		struct in_addr a;
		if (inet_pton(AF_INET, o->host, &a) != 1 ||
		    (ntohl(a.s_addr) >> 24) != 127)
			return fail(err, "--source-addrs needs a 127.x.x.x --host (loopback source addresses)");
	}
	uint64_t total = (uint64_t)o->connections + o->receivers;
	if (o->threads > total)
		return fail(err, "--threads %u is more than the %llu connections", o->threads,
		            (unsigned long long)total);
	return 0;
}
