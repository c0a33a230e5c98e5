/* The flood's receiving parsers: RESP (Redis) and the NATS text protocol,
 * whole, split at every byte, and refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "perf/flood.h"

static long resp(const char *s, struct flood_item *it)
{
	return flood_parse_resp((const uint8_t *)s, strlen(s), it);
}

static long nats(const char *s, struct flood_item *it)
{
	return flood_parse_nats((const uint8_t *)s, strlen(s), it);
}

Test(flood_parse, resp_values)
{
	struct flood_item it;
	cr_assert_eq(resp("+PONG\r\n", &it), 7);
	cr_assert_eq(it.kind, '+');
	cr_assert_eq(it.len, 4);
	cr_assert(memcmp(it.p, "PONG", 4) == 0);
	cr_assert_eq(resp(":12\r\n", &it), 5);
	cr_assert_eq(it.kind, ':');
	cr_assert_eq(it.len, 12);
	cr_assert_eq(resp("-ERR wrong\r\n", &it), 12);
	cr_assert_eq(it.kind, '-');
	cr_assert_eq(resp("$-1\r\n", &it), 5);
	cr_assert_eq(it.len, -1);
	cr_assert_eq(resp("$3\r\na\r\n\r\n", &it), 9, "a bulk string may hold CR LF");
	cr_assert(memcmp(it.p, "a\r\n", 3) == 0);

	const char *msg = "*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhe\0lo\r\n";
	size_t n = 4 + 4 + 9 + 4 + 6 + 4 + 7;
	cr_assert_eq(flood_parse_resp((const uint8_t *)msg, n, &it), (long)n);
	cr_assert_eq(it.kind, '*');
	cr_assert_eq(it.nelem, 3);
	cr_assert_eq(it.elem[0].len, 7);
	cr_assert(memcmp(it.elem[0].p, "message", 7) == 0);
	cr_assert_eq(it.elem[2].len, 5);
	cr_assert(memcmp(it.elem[2].p, "he\0lo", 5) == 0, "binary safe");
	/* Every cut before the end needs more. */
	for (size_t cut = 0; cut < n; cut++)
		cr_assert_eq(flood_parse_resp((const uint8_t *)msg, cut, &it), 0, "cut %zu", cut);

	/* subscribe confirmation: an integer element */
	const char *sub = "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n";
	cr_assert_eq(resp(sub, &it), (long)strlen(sub));
	cr_assert_eq(it.elem[2].kind, ':');
	cr_assert_eq(it.elem[2].len, 1);
}

Test(flood_parse, resp_refused)
{
	struct flood_item it;
	cr_assert_eq(resp("?what\r\n", &it), -1);
	cr_assert_eq(resp(":12x\r\n", &it), -1);
	cr_assert_eq(resp("$-2\r\n", &it), -1);
	cr_assert_eq(resp("$3\r\nabcX\r\n", &it), -1, "no CR LF after the bulk");
	cr_assert_eq(resp("*-1\r\n", &it), -1);
	cr_assert_eq(resp("*1\r\n?\r\n", &it), -1);
	static char junk[5000];
	memset(junk, 'a', sizeof junk - 1);
	junk[0] = '+';
	cr_assert_eq(resp(junk, &it), -1, "no line end within 4 KiB");
	/* A NET-001 frame is not RESP. */
	static const uint8_t frame[] = { 0xde, 0xad, 0xbe, 0xef, 1, 0xff, 0, 2 };
	cr_assert_eq(flood_parse_resp(frame, sizeof frame, &it), -1);
}

Test(flood_parse, nats_lines)
{
	struct flood_item it;
	cr_assert_eq(nats("PING\r\n", &it), 6);
	cr_assert_eq(it.kind, 'P');
	cr_assert_eq(nats("PONG\r\n", &it), 6);
	cr_assert_eq(it.kind, 'O');
	cr_assert_eq(nats("+OK\r\n", &it), 5);
	cr_assert_eq(it.kind, '+');
	cr_assert_eq(nats("-ERR 'Slow Consumer'\r\n", &it), 22);
	cr_assert_eq(it.kind, '-');
	const char *info = "INFO {\"server_id\":\"x\"}\r\n";
	cr_assert_eq(nats(info, &it), (long)strlen(info));
	cr_assert_eq(it.kind, 'I');

	const char *m = "MSG subj.x 1 5\r\nhe\r\no\r\n";
	cr_assert_eq(nats(m, &it), (long)strlen(m));
	cr_assert_eq(it.kind, 'M');
	cr_assert_eq(it.len, 5);
	cr_assert(memcmp(it.p, "he\r\no", 5) == 0);
	for (size_t cut = 0; cut < strlen(m); cut++)
		cr_assert_eq(flood_parse_nats((const uint8_t *)m, cut, &it), 0, "cut %zu", cut);
	const char *r = "MSG s 1 reply.to 2\r\nab\r\n";
	cr_assert_eq(nats(r, &it), (long)strlen(r));
	cr_assert_eq(it.len, 2);
	cr_assert_eq(nats("MSG s 1 0\r\n\r\n", &it), 13);
	cr_assert_eq(it.len, 0);
}

Test(flood_parse, nats_refused)
{
	struct flood_item it;
	cr_assert_eq(nats("HELLO\r\n", &it), -1);
	cr_assert_eq(nats("\xde\xad", &it), -1, "at once, not after 4 KiB");
	cr_assert_eq(nats("MSG s 1 x\r\nab\r\n", &it), -1);
	cr_assert_eq(nats("MSG s 1 -2\r\n\r\n", &it), -1);
	cr_assert_eq(nats("MSG s 1 2\r\nabXY", &it), -1, "no CR LF after the payload");
	cr_assert_eq(nats("MSG 2\r\nab\r\n", &it), -1);
}
