/*
 * helpers.h - shared by the metrics test suites: synthetic shards, a
 * metrics server on a random loopback port, a tiny blocking HTTP client and
 * a reader for exposition lines. Test code only; everything it returns is
 * owned by the caller (free with the matching function).
 */
#ifndef NET001_TEST_METRICS_HELPERS_H
#define NET001_TEST_METRICS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "metrics_server.h"

/* n zeroed, cache-line aligned shards and the pointer array the API takes. */
struct shard_set {
	struct metrics_shard *shards;
	struct metrics_shard **ptrs;
	unsigned n;
};
void shards_make(struct shard_set *s, unsigned n);
void shards_free(struct shard_set *s);

/*
 * Start a server for cfg on a random port in [10000, 32000) of 127.0.0.1,
 * retrying on EADDRINUSE. Returns what metrics_server_start returned.
 */
int server_start_random(struct metrics_server_config *cfg,
                        struct metrics_server **out);

/* A blocking loopback connection with a 10 s receive timeout and a buffer
 * for bytes read past one response. */
struct conn {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
};
int conn_open(struct conn *c, uint16_t port);
/* The same with SO_RCVBUF set to rcvbuf (0: default) before connecting. */
int conn_open_rcvbuf(struct conn *c, uint16_t port, int rcvbuf);
void conn_close(struct conn *c);
/* Write all of s. Returns 0 or -errno. */
int conn_send(struct conn *c, const char *s, size_t n);

struct resp {
	int status;          /* -1 if no complete response arrived */
	char *head;          /* status line and headers, NUL-terminated */
	char *body;          /* Content-Length bytes, NUL-terminated */
	size_t body_len;
};
/* Read one response (Content-Length framed). Returns 0, or -1 on EOF or
 * error before it was complete. */
int conn_read_response(struct conn *c, struct resp *r);
void resp_free(struct resp *r);
/* Value of header name (case-insensitive) copied into dst; false if absent. */
bool resp_header(const struct resp *r, const char *name, char *dst, size_t cap);

/* One request on a fresh connection: GET path HTTP/1.1 with Host and
 * Connection: close. Returns the status, -1 on failure. */
int http_get(uint16_t port, const char *path, struct resp *r);

/* True when the peer has closed: recv returns 0 (waits up to the receive
 * timeout). Bytes still unread are skipped. */
bool conn_wait_eof(struct conn *c);

/*
 * The value of the sample whose series (name plus labels, exactly as
 * rendered, e.g. net001_errors_total{code="bad_crc"}) starts a line of text.
 * Returns false if no such line.
 */
bool sample(const char *text, const char *series, double *out);
/* The same for integer samples, parsed exactly. */
bool sample_u64(const char *text, const char *series, uint64_t *out);

/* Number of lines of text equal to line. */
unsigned count_lines(const char *text, const char *line);

/* Full path of promtool in $PATH, or NULL. */
const char *promtool_path(void);

/* Monotonic clock in ns. */
uint64_t now_ns(void);

#endif
