/*
 * benchopt.h - net001-bench command line: parsing and validation, on the
 * shared option parser (core/opt.h).
 *
 * Pure: fills a struct from argv, keeps no state, prints nothing; any
 * thread may call it. Strings in struct benchopt point into argv (or are
 * string literals) and live as long as argv does.
 */
#ifndef NET001_BENCHOPT_H
#define NET001_BENCHOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum bench_type {
	BENCH_PING,
	BENCH_ECHO,
	BENCH_DATA,
	BENCH_BROADCAST,
};

/* The server the load goes to: a NET-001 server (or a raw echo baseline),
 * or, for the broadcast flood only, Redis pub/sub or NATS. */
enum bench_target {
	TARGET_NET001,
	TARGET_REDIS,
	TARGET_NATS,
};

#define BENCH_RECEIVERS_AT_MAX 16

struct benchopt {
	const char *host;       /* "127.0.0.1" */
	const char *auth_user;  /* NULL: no AUTH */
	const char *auth_token;
	size_t auth_user_len;
	size_t auth_token_len;
	double duration;        /* measured window, seconds (> 0) */
	double warmup;          /* seconds before it (>= 0) */
	double rate;            /* msgs/s over all connections; 0 = closed loop */
	uint32_t connections;   /* load (or held) connections */
	uint32_t threads;
	uint32_t pipeline;      /* requests in flight per connection; --flood:
	                           messages per write */
	bool pipeline_given;
	uint32_t receivers;     /* broadcast listeners */
	uint32_t payload;       /* bytes; 8 for ping, fixed */
	uint32_t check_every;   /* --flood: CRC and payload of every Nth message */
	uint32_t source_addrs;  /* 0: let the kernel pick the source */
	pid_t server_pid;       /* 0: none */
	uint16_t port;
	/* --receivers-at: receivers spread round-robin over these ports (of
	 * servers on the same host, e.g. the nodes of a cluster); the load
	 * connections stay on port. 0 ports: receivers on port too. */
	uint16_t receivers_at[BENCH_RECEIVERS_AT_MAX];
	uint32_t nreceivers_at;
	enum bench_type type;
	enum bench_target target;
	bool flood;             /* broadcast: write as fast as the sockets take */
	bool connect_only;
	bool raw_echo;
	bool json;
	bool csv;
	bool progress;          /* --progress: a line per second, even off a tty */
	bool no_progress;       /* --no-progress: none, even on a tty */
	bool help;
};

/* Longest error message benchopt_parse writes. */
#define BENCHOPT_ERR_MAX 200

/*
 * Parse argv into *o (defaults first). Returns 0, or -EINVAL with a
 * one-line message (no newline) in err. --help returns 0 at once with
 * o->help set (later arguments are not looked at).
 */
int benchopt_parse(struct benchopt *o, int argc, char **argv,
                   char err[BENCHOPT_ERR_MAX]);

/* The usage text for --help. */
const char *benchopt_usage(void);

/* "ping", "echo", "data", "broadcast". */
const char *benchopt_type_name(enum bench_type t);

/* "net001", "redis", "nats". */
const char *benchopt_target_name(enum bench_target t);

#endif
