/*
 * cli.h - what the parts of net001-cli share: the settings from the
 * command line and environment, exit statuses, error reporting and output
 * helpers. cli.c has main() and the commands, cli_repl.c the interactive
 * and script modes, cli_watch.c the watching modes (--stat, --latency,
 * --latency-history) and the /metrics reader.
 *
 * Single-threaded: everything runs on the main thread. The SIGINT/SIGTERM
 * handler only sets cli_interrupted; waits return -EINTR and loops look
 * at the flag.
 */
#ifndef NET001_CLI_H
#define NET001_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "net/client/client.h"

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
#define METRICS_PORT_OFFSET 1000

struct cli {
	const char *host;
	uint16_t port;
	uint32_t timeout_ms;
	const char *auth;       /* USER:TOKEN as given (flag or NET001_AUTH) */
	char auth_user[MSG_AUTH_USER_MAX + 1];
	char auth_token[MSG_AUTH_TOKEN_MAX + 1];
	bool has_auth;
	bool tls;               /* --tls, --tls-ca or --tls-insecure */
	const char *tls_ca;
	bool tls_insecure;
	uint16_t metrics_port;  /* 0: none (no --stat, no auth check) */
	uint32_t repeat;        /* -r: runs of the command; 0 = until Ctrl-C */
	double interval;        /* -i: seconds between runs or reports */
	bool repeat_given;
	bool interval_given;
	bool json;
	bool stat;
	bool latency;
	bool latency_history;
	bool interactive;       /* commands come from a prompt or stdin */
};

extern volatile sig_atomic_t cli_interrupted;

/* "PROG: msg" on stderr; one-shot mode adds the --help hint. EXIT_USAGE. */
int usage_error(const struct cli *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Report a library error for step `what`; returns the exit status. */
int cli_fail(struct n1c *c, const char *what, int err);

/* Connect (TLS, AUTH as configured); on failure reports and returns the
 * exit status with *out NULL. */
int cli_open(const struct cli *o, struct n1c **out);

/* "host:port", with brackets around an IPv6 literal. */
void cli_peer(const char *host, unsigned port, char *buf, size_t cap);

/* Sleep ms, cut short by a signal. */
void cli_nap(long ms);
int64_t cli_now_ms(void);

/* JSON: a string of n bytes ("..." with escapes) when they are UTF-8,
 * else base64 under key_b64. Writes `"key":"..."` or `"key_b64":"..."`. */
void json_payload(FILE *f, const char *key, const uint8_t *p, size_t n);
/* A JSON string literal of a C string (escaped). */
void json_string(FILE *f, const char *s);

/* Run one command line (argv[0] is the command). Returns its status. */
int cli_run_command(const struct cli *o, int argc, char **argv);
/* The same `times` times (0: until Ctrl-C), o->interval seconds apart;
 * the status of the last run that failed, else 0. */
int cli_run_command_times(const struct cli *o, int argc, char **argv, uint32_t times);

/* The command summary of --help and of `help`. */
void cli_usage_commands(FILE *out);

/* Interactive (stdin a terminal) or script (stdin a file or pipe) mode. */
int cli_repl(struct cli *o);

/* --stat, --latency, --latency-history. */
int cli_watch(const struct cli *o);

/*
 * GET /metrics from host:port within timeout_ms into a heap buffer
 * (NUL-terminated body). Returns 0, or a negative n1c/errno code with a
 * message in err.
 */
int metrics_fetch(const char *host, uint16_t port, int timeout_ms, char **body,
                  char *err, size_t errlen);

/* The sum of every sample of family `name` (all label sets); false when
 * the page has none. */
bool metrics_sum(const char *body, const char *name, double *out);

/* Before `listen` without --auth: warn when the server's /metrics says it
 * requires AUTH (net001_config_auth 1). Quiet when it cannot tell. */
void cli_check_auth_needed(const struct cli *o);

#endif
