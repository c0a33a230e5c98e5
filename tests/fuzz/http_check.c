/*
 * http_check.c - see http_check.h.
 */
#include "http_check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/http_req.h"
#include "why.h"

/* Inputs longer than this have only some of their prefixes parsed (the
 * exporter's request buffer is 8 KiB; a head never needs more). */
#define ALL_PREFIXES 2048

/* The parser's answer for the first k bytes, from a block of exactly k. */
static int parse_prefix(const uint8_t *p, size_t k, long *out, struct http_req *r,
                        uint8_t **copy)
{
	free(*copy);
	*copy = malloc(k ? k : 1);
	if (!*copy)
		return -ENOMEM;
	memcpy(*copy, p, k);
	*out = http_req_parse((const char *)*copy, k, r);
	return 0;
}

/* The independent reading of a parsed head h[0..r). */
static int check_head(const uint8_t *h, long r, const struct http_req *q, char *why,
                      size_t why_len)
{
	if (r < 4 || memcmp(h + r - 4, "\r\n\r\n", 4) != 0)
		return why_fail(why, why_len, "a head of %ld bytes that does not end in CRLF CRLF", r);
	for (long i = 0; i < r; i++)
		if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r'))
			return why_fail(why, why_len, "a bare LF at %ld in a parsed head", i);
	long s = 0;
	while (s + 1 < r && h[s] == '\r' && h[s + 1] == '\n')
		s += 2;
	const uint8_t *sp = memchr(h + s, ' ', (size_t)(r - s));
	if (!sp)
		return why_fail(why, why_len, "a parsed head whose first line has no space");
	bool get = sp - (h + s) == 3 && memcmp(h + s, "GET", 3) == 0;
	if (get != q->get)
		return why_fail(why, why_len, "method GET is %d, the parser says %d", get, q->get);
	const uint8_t *path = (const uint8_t *)q->path;
	if (path != sp + 1)
		return why_fail(why, why_len, "the path does not start after the method");
	if (q->path_len == 0 || path + q->path_len > h + r || path[0] != '/')
		return why_fail(why, why_len, "a path of %zu bytes out of place", q->path_len);
	for (size_t i = 0; i < q->path_len; i++)
		if (path[i] <= 0x20 || path[i] >= 0x7f || path[i] == '?')
			return why_fail(why, why_len, "byte 0x%02x at %zu of the path", path[i], i);
	const uint8_t *after = path + q->path_len;
	if (*after != ' ' && *after != '?')
		return why_fail(why, why_len, "the path stops at byte 0x%02x", *after);
	const uint8_t *eol = memchr(after, '\r', (size_t)(h + r - after));
	if (!eol || eol - h < 9 || memcmp(eol - 8, "HTTP/1.", 7) != 0 ||
	    (eol[-1] != '0' && eol[-1] != '1') || eol[-9] != ' ')
		return why_fail(why, why_len, "a first line that does not end in SP HTTP/1.x");
	if (q->minor != eol[-1] - '0')
		return why_fail(why, why_len, "HTTP/1.%c read as minor %d", eol[-1], q->minor);
	if (q->minor == 0 && !q->close)
		return why_fail(why, why_len, "an HTTP/1.0 request kept open");
	return 0;
}

static bool same_req(const struct http_req *a, const struct http_req *b,
                     const uint8_t *base_a, const uint8_t *base_b)
{
	return a->get == b->get && a->path_len == b->path_len && a->minor == b->minor &&
	       a->close == b->close && a->host == b->host &&
	       a->content_length == b->content_length &&
	       (const uint8_t *)a->path - base_a == (const uint8_t *)b->path - base_b;
}

int http_check_input(const uint8_t *p, size_t n, char *why, size_t why_len)
{
	uint8_t *copy = NULL, *whole = NULL;
	struct http_req full, q;
	long r, a;
	int rc = parse_prefix(p, n, &r, &full, &whole);
	if (rc < 0)
		goto out;
	if (r < -1 || r > (long)n) {
		rc = why_fail(why, why_len, "answer %ld for %zu bytes", r, n);
		goto out;
	}
	if (r > 0 && (rc = check_head(whole, r, &full, why, why_len)) < 0)
		goto out;

	/* The prefixes: all of them for short inputs, else a spread of them
	 * and those around the head's end. */
	size_t step = n <= ALL_PREFIXES ? 1 : n / 256;
	bool bad_seen = false;
	for (size_t k = 0; k <= n; k += step) {
		size_t ks[3] = { k, r > 0 ? (size_t)r - 1 : 0, r > 0 ? (size_t)r : 0 };
		for (int j = 0; j < (step > 1 ? 3 : 1); j++) {
			size_t kk = ks[j];
			if ((rc = parse_prefix(p, kk, &a, &q, &copy)) < 0)
				goto out;
			long want = r > 0 ? (kk < (size_t)r ? 0 : r) : -2;
			if (want != -2 && a != want) {
				rc = why_fail(why, why_len, "%zu bytes answered %ld; the head is %ld bytes",
				          kk, a, r);
				goto out;
			}
			if (r > 0 && a == r && !same_req(&q, &full, copy, whole)) {
				rc = why_fail(why, why_len, "%zu bytes give another request than %zu", kk,
				          n);
				goto out;
			}
			if (r <= 0 && j == 0) {
				/* 0 ... 0 then, if malformed at all, -1 to the end */
				if (a == -1)
					bad_seen = true;
				else if (a != 0 || bad_seen) {
					rc = why_fail(why, why_len, "%zu bytes answered %ld after%s", kk, a,
					          bad_seen ? " a malformed prefix" : "");
					goto out;
				}
			}
		}
	}
	rc = 0;
out:
	free(copy);
	free(whole);
	return rc;
}
