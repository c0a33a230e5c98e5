/*
 * config.h - the server's settings from the command line and environment
 * (PROTOCOL.md section 5).
 *
 * Called from main() before any worker starts; afterwards struct config is
 * read-only and any thread may read it. Strings in it (auth_file, cert,
 * key) are heap copies owned by the struct and live until config_free.
 *
 * Precedence: a command-line flag beats the environment, which beats the
 * default. Every value is checked here, so the engine can trust the
 * ranges below. Flags take `--flag value` or `--flag=value`; a repeated
 * flag's last value wins.
 *
 * Note on names: the build's generated header is also called config.h
 * (build root; NET001_* constants). This header pulls it in with
 * <config.h>, which skips this file's own directory; from outside core/,
 * include this one as "core/config.h".
 */
#ifndef NET001_CORE_CONFIG_H
#define NET001_CORE_CONFIG_H

#include <config.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CONFIG_HOST_MAX              64   /* sizeof host, NUL included */
#define CONFIG_MAX_CONNECTIONS_MAX   1048576u
#define CONFIG_THREADS_MAX           1024u
#define CONFIG_IDLE_TIMEOUT_MAX      86400u
#define CONFIG_RATE_LIMIT_MAX        100000000u   /* per connection, msgs/s */
#define CONFIG_GLOBAL_RATE_LIMIT_MAX 1000000000u  /* whole server, msgs/s */
#define CONFIG_MAX_PAYLOAD_MIN       8u           /* a PING must fit */
#define CONFIG_MAX_PAYLOAD_MAX       65535u
#define CONFIG_MAX_OUTPUT_MIN        65547u       /* one largest frame */
#define CONFIG_MAX_OUTPUT_MAX        (UINT64_C(16) << 30)
#define CONFIG_METRICS_PORT_OFFSET   1000u

struct config {
	char host[CONFIG_HOST_MAX]; /* IPv4 or IPv6 literal, no brackets; "localhost" stored as 127.0.0.1 */
	uint16_t port;              /* 1..65535, default 5000 */
	uint32_t max_connections;   /* whole server; 1..1048576; env MAX_CONNECTIONS */
	uint32_t threads;           /* 1..1024; default online CPUs (capped at 1024) */
	uint32_t idle_timeout;      /* seconds, 0 = off, max 86400; default 60 */
	uint32_t rate_limit;        /* per connection msgs/s, 0 = off; env RATE_LIMIT; default 1000 */
	uint32_t global_rate_limit; /* msgs/s, 0 = off; env GLOBAL_RATE_LIMIT; default 50000 */
	uint32_t max_payload;       /* 8..65535, default 65535 */
	uint32_t metrics_port;      /* 0 = off, else 1..65535 and != port; default port + 1000 */
	uint64_t max_output;        /* bytes, 65547..16 GiB, default 8 MiB */
	char *auth_file;            /* NULL = auth off; readable regular file at parse time */
	bool debug;
	bool tls;                   /* needs cert and key (readable files) */
	char *cert;
	char *key;
};

/* Defaults without reading argv or the environment. Strings are NULL. */
void config_defaults(struct config *c);

/*
 * Parse argv (argv[0] is the program name, skipped) and the environment
 * variables MAX_CONNECTIONS, RATE_LIMIT and GLOBAL_RATE_LIMIT (an empty
 * variable counts as unset; a variable whose flag is given is ignored).
 * c is overwritten from config_defaults first.
 *
 * Returns 0 on success; 1 when --help/-h or --version/-V printed to stdout
 * (caller exits 0); -EINVAL with a one-line message (no newline) in err on
 * any bad, unknown or incomplete flag or bad environment value (the message
 * names the flag or variable); -ENOMEM. Arguments are taken in order, so
 * the first problem or --help wins. On any non-zero return c holds no
 * allocations. Never prints errors, never exits.
 */
int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen);

/* The --help text: every flag, environment variable and default. */
void config_usage(FILE *out);

/* Frees the strings; c can be parsed again or dropped. Idempotent. */
void config_free(struct config *c);

/*
 * The socket address for c->host and the given port (c->port for the
 * server, c->metrics_port for the exporter). Returns 0 or -EINVAL.
 */
int config_sockaddr(const struct config *c, uint16_t port,
                    struct sockaddr_storage *ss, socklen_t *len);

#endif
