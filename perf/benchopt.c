/*
 * benchopt.c - net001-bench option parsing. See benchopt.h.
 *
 * Every option takes "--name value" or "--name=value". Numbers must be
 * plain decimal with nothing after them; each error names the option.
 */
#include "perf/benchopt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/msg.h"

static const char usage[] =
"usage: net001-bench [options]\n"
"  --host ADDR          server address (default 127.0.0.1)\n"
"  --port N             server port (default 5000)\n"
"  --connections N      load connections (default 50)\n"
"  --threads N          client threads, each with its own io_uring (default 1)\n"
"  --pipeline N         requests in flight per connection (default 1)\n"
"  --duration SEC       measured window (default 10)\n"
"  --warmup SEC         load before the window, not counted (default 2)\n"
"  --type T             ping | echo | data | broadcast (default ping)\n"
"  --receivers N        broadcast: N extra connections that only listen\n"
"  --payload BYTES      echo/data/broadcast payload, 0..65535 (default 64)\n"
"  --rate MSGS/S        open loop over all connections (0 = closed loop)\n"
"  --connect-only       open the connections, hold them, count the open ones\n"
"  --source-addrs N     bind connections to 127.0.0.1..127.0.0.N\n"
"  --raw-echo           expect the request bytes back verbatim\n"
"  --server-pid PID     report that process's CPU per message and RSS\n"
"  --auth USER:TOKEN    send AUTH first on each connection\n"
"  --json               one JSON object on stdout\n"
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

static int fail(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, BENCHOPT_ERR_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int benchopt_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double min, double max, double *out)
{
	if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Options that take a value, with the index used by the switch below. */
enum opt_id {
	O_HOST, O_PORT, O_CONNECTIONS, O_THREADS, O_PIPELINE, O_DURATION,
	O_WARMUP, O_TYPE, O_RECEIVERS, O_PAYLOAD, O_RATE, O_SOURCE_ADDRS,
	O_SERVER_PID, O_AUTH,
	/* flags */
	O_CONNECT_ONLY, O_RAW_ECHO, O_JSON, O_HELP,
};

static const struct {
	const char *name;
	enum opt_id id;
} opts[] = {
	{ "host", O_HOST }, { "port", O_PORT }, { "connections", O_CONNECTIONS },
	{ "threads", O_THREADS }, { "pipeline", O_PIPELINE },
	{ "duration", O_DURATION }, { "warmup", O_WARMUP }, { "type", O_TYPE },
	{ "receivers", O_RECEIVERS }, { "payload", O_PAYLOAD }, { "rate", O_RATE },
	{ "source-addrs", O_SOURCE_ADDRS }, { "server-pid", O_SERVER_PID },
	{ "auth", O_AUTH }, { "connect-only", O_CONNECT_ONLY },
	{ "raw-echo", O_RAW_ECHO }, { "json", O_JSON }, { "help", O_HELP },
};

int benchopt_parse(struct benchopt *o, int argc, char **argv,
                   char err[BENCHOPT_ERR_MAX])
{
	bool payload_set = false, receivers_set = false, rate_set = false;
	bool pipeline_set = false;
	uint64_t u;

	memset(o, 0, sizeof *o);
	o->host = "127.0.0.1";
	o->port = 5000;
	o->connections = 50;
	o->threads = 1;
	o->pipeline = 1;
	o->duration = 10;
	o->warmup = 2;
	o->type = BENCH_PING;
	o->payload = 64;
	err[0] = '\0';

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strncmp(arg, "--", 2) != 0)
			return fail(err, "unexpected argument '%s' (see --help)", arg);
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		int id = -1;
		for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
			if (strlen(opts[k].name) == nlen &&
			    memcmp(opts[k].name, name, nlen) == 0) {
				id = (int)opts[k].id;
				break;
			}
		}
		if (id < 0)
			return fail(err, "unknown option '%s' (see --help)", arg);

		const char *val = NULL;
		if (id < O_CONNECT_ONLY) {
			if (eq) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				return fail(err, "--%.*s needs a value", (int)nlen, name);
			}
		} else if (eq) {
			return fail(err, "--%.*s takes no value", (int)nlen, name);
		}

		switch ((enum opt_id)id) {
		case O_HOST:
			if (!*val)
				return fail(err, "--host: empty address");
			o->host = val;
			break;
		case O_PORT:
			if (benchopt_parse_u64(val, 1, 65535, &u))
				return fail(err, "--port: '%s' is not a port (1..65535)", val);
			o->port = (uint16_t)u;
			break;
		case O_CONNECTIONS:
			if (benchopt_parse_u64(val, 1, 1000000, &u))
				return fail(err, "--connections: '%s' is not in 1..1000000", val);
			o->connections = (uint32_t)u;
			break;
		case O_THREADS:
			if (benchopt_parse_u64(val, 1, 256, &u))
				return fail(err, "--threads: '%s' is not in 1..256", val);
			o->threads = (uint32_t)u;
			break;
		case O_PIPELINE:
			if (benchopt_parse_u64(val, 1, 4096, &u))
				return fail(err, "--pipeline: '%s' is not in 1..4096", val);
			o->pipeline = (uint32_t)u;
			pipeline_set = true;
			break;
		case O_DURATION:
			if (parse_seconds(val, 0.001, 86400, &o->duration))
				return fail(err, "--duration: '%s' is not a number of seconds in (0, 86400]", val);
			break;
		case O_WARMUP:
			if (parse_seconds(val, 0, 3600, &o->warmup))
				return fail(err, "--warmup: '%s' is not a number of seconds in [0, 3600]", val);
			break;
		case O_TYPE:
			if (strcmp(val, "ping") == 0)
				o->type = BENCH_PING;
			else if (strcmp(val, "echo") == 0)
				o->type = BENCH_ECHO;
			else if (strcmp(val, "data") == 0)
				o->type = BENCH_DATA;
			else if (strcmp(val, "broadcast") == 0)
				o->type = BENCH_BROADCAST;
			else
				return fail(err, "--type: '%s' is not ping, echo, data or broadcast", val);
			break;
		case O_RECEIVERS:
			if (benchopt_parse_u64(val, 0, 1000000, &u))
				return fail(err, "--receivers: '%s' is not in 0..1000000", val);
			o->receivers = (uint32_t)u;
			receivers_set = true;
			break;
		case O_PAYLOAD:
			if (benchopt_parse_u64(val, 0, FRAME_MAX_PAYLOAD, &u))
				return fail(err, "--payload: '%s' is not in 0..65535", val);
			o->payload = (uint32_t)u;
			payload_set = true;
			break;
		case O_RATE:
			if (parse_seconds(val, 0, 1e9, &o->rate))
				return fail(err, "--rate: '%s' is not a rate in [0, 1e9] messages/s", val);
			rate_set = true;
			break;
		case O_SOURCE_ADDRS:
			if (benchopt_parse_u64(val, 1, 254, &u))
				return fail(err, "--source-addrs: '%s' is not in 1..254", val);
			o->source_addrs = (uint32_t)u;
			break;
		case O_SERVER_PID:
			if (benchopt_parse_u64(val, 1, 0x3fffffff, &u))
				return fail(err, "--server-pid: '%s' is not a process id", val);
			o->server_pid = (pid_t)u;
			break;
		case O_AUTH: {
			const char *colon = strchr(val, ':');
			if (!colon)
				return fail(err, "--auth: expected USER:TOKEN");
			size_t ul = (size_t)(colon - val), tl = strlen(colon + 1);
			if (ul < 1 || ul > MSG_AUTH_USER_MAX)
				return fail(err, "--auth: user name must be 1..64 bytes");
			if (tl < 1 || tl > MSG_AUTH_TOKEN_MAX)
				return fail(err, "--auth: token must be 1..256 bytes");
			o->auth_user = val;
			o->auth_user_len = ul;
			o->auth_token = colon + 1;
			o->auth_token_len = tl;
			break;
		}
		case O_CONNECT_ONLY:
			o->connect_only = true;
			break;
		case O_RAW_ECHO:
			o->raw_echo = true;
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_HELP:
			o->help = true;
			break;
		}
	}

	/* Combinations. */
	if (o->type == BENCH_PING) {
		if (payload_set && o->payload != MSG_PING_LEN)
			return fail(err, "--payload: a PING payload is always 8 bytes");
		o->payload = MSG_PING_LEN;
	}
	if (receivers_set && o->type != BENCH_BROADCAST)
		return fail(err, "--receivers only applies to --type broadcast");
	if (o->raw_echo && o->type != BENCH_PING && o->type != BENCH_ECHO)
		return fail(err, "--raw-echo needs --type ping or echo (nothing else is echoed)");
	if (o->raw_echo && o->auth_user)
		return fail(err, "--raw-echo and --auth exclude each other (a raw echo server has no AUTH)");
	if (o->connect_only && (rate_set || pipeline_set || receivers_set || payload_set))
		return fail(err, "--connect-only sends nothing: drop --rate, --pipeline, --receivers and --payload");
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
