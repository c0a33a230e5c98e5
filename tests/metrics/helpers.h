/*
 * helpers.h - shared by the metrics test suites: synthetic shards and a
 * metrics server on a random loopback port; the HTTP client and the
 * exposition readers come from tests/support. Test code only; everything
 * it returns is owned by the caller (free with the matching function).
 */
#ifndef NET001_TEST_METRICS_HELPERS_H
#define NET001_TEST_METRICS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exposition.h"
#include "http_client.h"
#include "metrics/metrics.h"
#include "metrics/metrics_server.h"

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

/* Monotonic clock in ns. */
uint64_t now_ns(void);

/*
 * Whether text is one well-formed JSON value, by Python's json module
 * (/usr/bin/python3, which meson's own Python guarantees on the build
 * machine). On failure its message goes into err (NUL-terminated).
 */
bool json_valid(const char *text, char *err, size_t cap);

#endif
