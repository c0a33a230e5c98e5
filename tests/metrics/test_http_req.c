/*
 * The exporter's request-head parser (metrics/http_req.c) without sockets:
 * the answers for requests the HTTP suite sends over loopback, and the
 * fuzz target's checks (tests/fuzz/http_check.c) over its corpus
 * (tests/fuzz/corpus-http/), every input the fuzzer ever failed on
 * (tests/fuzz/regress-http/) and mutations of well-formed heads.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http_check.h"
#include "metrics/http_req.h"
#include "replay.h"

static long parse(const char *s, struct http_req *r)
{
	return http_req_parse(s, strlen(s), r);
}

Test(http_req, answers)
{
	struct http_req r;
	const char *prom = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
	cr_expect_eq(parse(prom, &r), (long)strlen(prom));
	cr_expect(r.get && r.host && !r.close && r.minor == 1);
	cr_expect_eq(r.path_len, strlen("/metrics"));
	cr_expect_eq(strncmp(r.path, "/metrics", r.path_len), 0);

	cr_expect_eq(parse("GET / HTTP/1.0\r\n\r\n", &r), 18);
	cr_expect(r.close, "HTTP/1.0 closes");
	cr_expect_eq(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 31,
	             "empty lines before the request line are skipped");
	const char *close = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n";
	cr_expect_eq(parse(close, &r), (long)strlen(close));
	cr_expect(r.close);
	const char *post = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
	cr_expect_eq(parse(post, &r), (long)strlen(post) - 3, "the head, not the body");
	cr_expect(!r.get && r.close, "a body is never read: the connection closes");

	/* incomplete, then malformed */
	cr_expect_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n", &r), 0);
	cr_expect_eq(parse("GE", &r), 0);
	cr_expect_eq(parse("GET / HTTP/1.1\r\n\r\n", &r), -1, "HTTP/1.1 without Host");
	cr_expect_eq(parse("GET / HTTP/1.1\nHost: a\n\n", &r), -1, "bare LF");
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &r), -1);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &r),
	             -1);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", &r), -1);
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &r), -1, "space before colon");
	cr_expect_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &r), -1, "obs-fold");
	cr_expect_eq(parse("GET * HTTP/1.1\r\nHost: a\r\n\r\n", &r), -1, "not origin-form");
	cr_expect_eq(parse("GET / HTTP/2.0\r\n\r\n", &r), -1);
	/* something else than HTTP is refused at its first byte */
	cr_expect_eq(http_req_parse("\x16\x03\x01", 3, &r), -1, "a TLS ClientHello");
	cr_expect_eq(http_req_parse("\xde\xad", 2, &r), -1, "a NET-001 frame");
}

Test(http_req, corpus, .timeout = 120)
{
	fuzz_replay("corpus-http", "regress-http", 9, http_check_input);
}

/* A short fuzz run with a fixed seed: well-formed heads with bytes
 * flipped, dropped, inserted (CR, LF, space, colon and '?' often), and
 * cut short, then a few more of those bytes behind. */
Test(http_req, mutated_heads, .timeout = 120)
{
	static const char *const heads[] = {
		"GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\n\r\n",
		"\r\nGET /healthz?probe=1 HTTP/1.0\r\n\r\n",
		"HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
	};
	static const char special[] = "\r\n :?/\t";
	uint64_t seed = 0x687474707265ull;
	uint8_t buf[512];
	for (int iter = 0; iter < 3000; iter++) {
		const char *h = heads[fuzz_rnd(&seed) % 3];
		size_t n = strlen(h);
		memcpy(buf, h, n);
		n = fuzz_mutate(buf, n, sizeof buf - 8, special, &seed);
		size_t extra = fuzz_rnd(&seed) % 8;
		for (size_t i = 0; i < extra && n < sizeof buf; i++)
			buf[n++] = (uint8_t)special[fuzz_rnd(&seed) % 7];
		char what[32];
		snprintf(what, sizeof what, "case %d", iter);
		fuzz_check_exact(http_check_input, buf, n, what);
	}
}
