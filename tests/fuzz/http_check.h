/*
 * http_check.h - invariants of the metrics exporter's request-head parser
 * (metrics/http_req.h), checked over arbitrary bytes.
 *
 * Shared by the libFuzzer target (tests/fuzz/fuzz_http.c) and the Criterion
 * test that replays its corpus (tests/metrics/test_http_req.c). Any thread
 * may call it; it allocates scratch memory per call and frees it.
 */
#ifndef NET001_HTTP_CHECK_H
#define NET001_HTTP_CHECK_H

#include <stddef.h>
#include <stdint.h>

/*
 * Treat p[0..n) as bytes from an HTTP client, arriving one at a time, and
 * check:
 *  - the answers for the prefixes of growing length are a run of
 *    "incomplete" (0), then either "malformed" (-1) to the end, or the
 *    head's length r, first answered at exactly r bytes and unchanged
 *    after it (with the same request);
 *  - a parsed head ends in CRLF CRLF, holds no bare LF, and its request
 *    agrees with an independent reading of its first line: the path lies
 *    inside the head, starts with '/', stops before any '?', holds only
 *    visible ASCII; GET is the method GET exactly; HTTP/1.0 closes.
 * Every prefix is parsed from a heap block of exactly its size, so a
 * sanitizer build catches a read past the bytes received.
 *
 * Returns 0, -EPROTO with a one-line description of the first violation in
 * why[0..why_len), or -ENOMEM.
 */
int http_check_input(const uint8_t *p, size_t n, char *why, size_t why_len);

#endif
