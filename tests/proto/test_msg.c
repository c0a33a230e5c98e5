/*
 * Payload helper tests (PROTOCOL.md sections 2 to 4): AUTH parsing at every
 * boundary, the builders' round trips, ERROR payloads, and the error table
 * against the protocol's own.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/msg.h"

Test(msg, auth_parse_vector)
{
	const uint8_t p[] = "\x05" "alices3cret";
	struct msg_auth a;
	cr_assert_eq(msg_auth_parse(p, 12, &a), 0);
	cr_assert_eq(a.user_len, 5);
	cr_assert_eq(memcmp(a.user, "alice", 5), 0);
	cr_assert_eq(a.token_len, 6);
	cr_assert_eq(memcmp(a.token, "s3cret", 6), 0);
	cr_assert_eq(a.user, p + 1, "views into the payload");
	cr_assert_eq(a.token, p + 6);
}

/* ---- AUTH shapes --------------------------------------------------------- */

struct auth_case {
	char name[40];
	int ulen_byte;  /* value of the first byte; -1: empty payload */
	size_t user;    /* username bytes actually present */
	size_t token;   /* token bytes after them */
	int want;       /* 0 or -EINVAL */
};

static struct auth_case auth_cases[] = {
	{ "empty payload", -1, 0, 0, -EINVAL },
	{ "length byte only", 5, 0, 0, -EINVAL },
	{ "username 0", 0, 0, 6, -EINVAL },
	{ "username 1", 1, 1, 6, 0 },
	{ "username 64", 64, 64, 6, 0 },
	{ "username 65", 65, 65, 6, -EINVAL },
	{ "username 255", 255, 255, 6, -EINVAL },
	{ "no token", 5, 5, 0, -EINVAL },
	{ "token 1", 5, 5, 1, 0 },
	{ "token 256", 5, 5, 256, 0 },
	{ "token 257", 5, 5, 257, -EINVAL },
	{ "username 64, token 256", 64, 64, 256, 0 },
	{ "username 1, token 1", 1, 1, 1, 0 },
	{ "truncated username", 10, 5, 0, -EINVAL },
	{ "truncated, one short", 10, 9, 0, -EINVAL },
	/* The declared length swallows what was meant as the token: the
	 * username is then 64 bytes and nothing is left for a token. */
	{ "username eats token", 64, 60, 4, -EINVAL },
};

ParameterizedTestParameters(msg, auth_shapes)
{
	return cr_make_param_array(struct auth_case, auth_cases,
	                           sizeof auth_cases / sizeof auth_cases[0]);
}

ParameterizedTest(struct auth_case *c, msg, auth_shapes)
{
	size_t n = c->ulen_byte < 0 ? 0 : 1 + c->user + c->token;
	/* Exactly n bytes, so ASan sees any read past the payload. */
	uint8_t *p = malloc(n ? n : 1);
	cr_assert_not_null(p);
	if (n) {
		p[0] = (uint8_t)c->ulen_byte;
		memset(p + 1, 'u', c->user);
		memset(p + 1 + c->user, 't', c->token);
	}
	struct msg_auth a;
	int rc = msg_auth_parse(p, n, &a);
	cr_assert_eq(rc, c->want, "%s: got %d", c->name, rc);
	if (rc == 0) {
		cr_assert_eq(a.user_len, c->user, "%s", c->name);
		cr_assert_eq(a.token_len, c->token, "%s", c->name);
		cr_assert_eq(a.user, p + 1);
		cr_assert_eq(a.token, p + 1 + c->user);
	}
	free(p);
}

Test(msg, auth_build_round_trip)
{
	static const size_t ulens[] = { 1, 2, 31, 63, 64 };
	static const size_t tlens[] = { 1, 2, 32, 255, 256 };
	uint8_t user[MSG_AUTH_USER_MAX], token[MSG_AUTH_TOKEN_MAX];
	uint8_t buf[1 + MSG_AUTH_USER_MAX + MSG_AUTH_TOKEN_MAX];

	for (size_t i = 0; i < sizeof user; i++)
		user[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof token; i++)
		token[i] = (uint8_t)(i * 13);

	for (size_t i = 0; i < 5; i++) {
		for (size_t j = 0; j < 5; j++) {
			int n = msg_auth_build(buf, user, ulens[i], token, tlens[j]);
			cr_assert_eq(n, (int)(1 + ulens[i] + tlens[j]));
			struct msg_auth a;
			cr_assert_eq(msg_auth_parse(buf, (size_t)n, &a), 0,
			             "user %zu token %zu", ulens[i], tlens[j]);
			cr_assert_eq(a.user_len, ulens[i]);
			cr_assert_eq(a.token_len, tlens[j]);
			cr_assert_eq(memcmp(a.user, user, ulens[i]), 0);
			cr_assert_eq(memcmp(a.token, token, tlens[j]), 0);
		}
	}

	/* Byte for byte the PROTOCOL.md vector's payload. */
	int n = msg_auth_build(buf, "alice", 5, "s3cret", 6);
	cr_assert_eq(n, 12);
	cr_assert_eq(memcmp(buf, "\x05" "alices3cret", 12), 0);
}

Test(msg, auth_build_refuses_bad_lengths)
{
	uint8_t buf[1 + 65 + 257];
	uint8_t big[300];
	memset(big, 'x', sizeof big);
	memset(buf, 0xA5, sizeof buf);
	cr_assert_eq(msg_auth_build(buf, big, 0, big, 5), -EINVAL);
	cr_assert_eq(msg_auth_build(buf, big, 65, big, 5), -EINVAL);
	cr_assert_eq(msg_auth_build(buf, big, 5, big, 0), -EINVAL);
	cr_assert_eq(msg_auth_build(buf, big, 5, big, 257), -EINVAL);
	cr_assert_eq(buf[0], 0xA5, "nothing written on refusal");
}

Test(msg, auth_reply)
{
	uint8_t sid[MSG_SESSION_ID_LEN], out[MSG_AUTH_REPLY_LEN];
	static const uint8_t zero[MSG_SESSION_ID_LEN];
	for (size_t i = 0; i < sizeof sid; i++)
		sid[i] = (uint8_t)(0xF0 + i);

	cr_assert_eq(msg_auth_reply(out, true, sid), 17);
	cr_assert_eq(out[0], 1);
	cr_assert_eq(memcmp(out + 1, sid, sizeof sid), 0);

	cr_assert_eq(msg_auth_reply(out, false, sid), 17);
	cr_assert_eq(out[0], 0);
	cr_assert_eq(memcmp(out + 1, zero, sizeof zero), 0, "failure: zero session id");

	cr_assert_eq(msg_auth_reply(out, true, NULL), 17);
	cr_assert_eq(memcmp(out + 1, zero, sizeof zero), 0);
}

/* ---- ERROR payloads ------------------------------------------------------ */

Test(msg, error_build_vector)
{
	uint8_t buf[MSG_ERROR_MAX];
	size_t n = msg_error_build(buf, sizeof buf, ERR_BAD_CRC, msg_error_text(ERR_BAD_CRC));
	cr_assert_eq(n, 9);
	cr_assert_eq(memcmp(buf, "\x00\x03" "bad crc", 9), 0, "PROTOCOL.md vector payload");

	uint8_t frame[FRAME_OVERHEAD + MSG_ERROR_MAX];
	size_t fn = frame_encode(frame, FRAME_ERROR, buf, (uint16_t)n);
	static const uint8_t want[] = {
		0xde, 0xad, 0xbe, 0xef, 0x01, 0xff, 0x00, 0x09, 0x00, 0x03, 0x62, 0x61,
		0x64, 0x20, 0x63, 0x72, 0x63, 0x05, 0x86, 0x52, 0x1e };
	cr_assert_eq(fn, sizeof want);
	cr_assert_eq(memcmp(frame, want, fn), 0);
}

Test(msg, error_build_truncates)
{
	uint8_t buf[64];
	memset(buf, 0xA5, sizeof buf);
	cr_assert_eq(msg_error_build(buf, 2, 0x1234, "hello"), 2, "room for the code only");
	cr_assert_eq(buf[0], 0x12);
	cr_assert_eq(buf[1], 0x34);
	cr_assert_eq(buf[2], 0xA5, "nothing past cap");

	cr_assert_eq(msg_error_build(buf, 5, 7, "hello"), 5);
	cr_assert_eq(memcmp(buf + 2, "hel", 3), 0);
	cr_assert_eq(buf[5], 0xA5);

	cr_assert_eq(msg_error_build(buf, 7, 7, "hello"), 7, "exact fit");
	cr_assert_eq(msg_error_build(buf, 64, 7, "hello"), 7, "no padding");
	cr_assert_eq(msg_error_build(buf, 64, 7, NULL), 2, "no text");
	cr_assert_eq(msg_error_build(buf, 64, 7, ""), 2);

	memset(buf, 0xA5, sizeof buf);
	cr_assert_eq(msg_error_build(buf, 1, 7, "x"), 0, "cap below 2 writes nothing");
	cr_assert_eq(msg_error_build(buf, 0, 7, "x"), 0);
	cr_assert_eq(buf[0], 0xA5);
}

/* Truncation backs off to a character boundary: the text stays UTF-8. */
Test(msg, error_build_utf8)
{
	uint8_t buf[16];
	const char *text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"; /* a é € 😀 */
	static const struct { size_t cap, keep; } cases[] = {
		{ 3, 1 }, { 4, 1 }, { 5, 3 }, { 6, 3 }, { 7, 3 }, { 8, 6 },
		{ 9, 6 }, { 10, 6 }, { 11, 6 }, { 12, 10 }, { 16, 10 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = msg_error_build(buf, cases[i].cap, 5, text);
		cr_assert_eq(n, 2 + cases[i].keep, "cap %zu", cases[i].cap);
		cr_assert_eq(memcmp(buf + 2, text, cases[i].keep), 0);
	}
	/* A text that is continuation bytes only has no boundary to keep. */
	cr_assert_eq(msg_error_build(buf, 4, 5, "\x80\x80\x80"), 2);
}

Test(msg, error_parse)
{
	uint16_t code;
	const uint8_t *text;
	size_t tlen;
	const uint8_t p[] = "\x00\x03" "bad crc";

	cr_assert_eq(msg_error_parse(p, 9, &code, &text, &tlen), 0);
	cr_assert_eq(code, 3);
	cr_assert_eq(tlen, 7);
	cr_assert_eq(text, p + 2);
	cr_assert_eq(memcmp(text, "bad crc", 7), 0);

	cr_assert_eq(msg_error_parse(p, 2, &code, &text, &tlen), 0, "empty message");
	cr_assert_eq(tlen, 0);
	cr_assert_eq(msg_error_parse(p, 1, &code, &text, &tlen), -EINVAL);
	cr_assert_eq(msg_error_parse(p, 0, &code, &text, &tlen), -EINVAL);

	const uint8_t hi[] = { 0xFF, 0xFE };
	cr_assert_eq(msg_error_parse(hi, 2, &code, &text, &tlen), 0);
	cr_assert_eq(code, 0xFFFE, "big-endian code");
}

/* Every error's own text goes out whole in a MSG_ERROR_MAX payload and
 * comes back through the parser. */
Test(msg, error_round_trip)
{
	for (unsigned c = 1; c <= ERR_MAX; c++) {
		uint8_t buf[MSG_ERROR_MAX];
		const char *t = msg_error_text(c);
		cr_assert_not_null(t);
		cr_assert_gt(strlen(t), 0, "code %u has a text", c);
		size_t n = msg_error_build(buf, sizeof buf, (uint16_t)c, t);
		cr_assert_eq(n, 2 + strlen(t), "code %u text fits", c);
		uint16_t code;
		const uint8_t *text;
		size_t tlen;
		cr_assert_eq(msg_error_parse(buf, n, &code, &text, &tlen), 0);
		cr_assert_eq(code, c);
		cr_assert_eq(tlen, strlen(t));
		cr_assert_eq(memcmp(text, t, tlen), 0);
	}
}

/* ---- the error table, against PROTOCOL.md section 3 ---------------------- */

struct err_row {
	unsigned code;
	char name[20];
	char label[20];
	bool closes;
};

static struct err_row err_rows[] = {
	{ 1, "BAD_MAGIC", "bad_magic", true },
	{ 2, "BAD_VERSION", "bad_version", true },
	{ 3, "BAD_CRC", "bad_crc", false },
	{ 4, "UNSUPPORTED_TYPE", "unsupported_type", false },
	{ 5, "BAD_PAYLOAD", "bad_payload", false },
	{ 6, "FRAME_TOO_LARGE", "frame_too_large", true },
	{ 7, "AUTH_REQUIRED", "auth_required", false },
	{ 8, "AUTH_FAILED", "auth_failed", true },
	{ 9, "RATE_LIMITED", "rate_limited", false },
	{ 10, "SERVER_FULL", "server_full", true },
	{ 11, "IDLE_TIMEOUT", "idle_timeout", true },
	{ 12, "SLOW_CONSUMER", "slow_consumer", true },
	{ 13, "SHUTTING_DOWN", "shutting_down", true },
	{ 14, "INTERNAL", "internal", true },
};

ParameterizedTestParameters(msg, error_table)
{
	return cr_make_param_array(struct err_row, err_rows,
	                           sizeof err_rows / sizeof err_rows[0]);
}

ParameterizedTest(struct err_row *r, msg, error_table)
{
	cr_assert_str_eq(msg_error_name(r->code), r->name, "code %u", r->code);
	cr_assert_str_eq(msg_error_label(r->code), r->label, "code %u", r->code);
	cr_assert_eq(msg_error_closes(r->code), r->closes, "code %u: %s", r->code,
	             r->closes ? "closes" : "continues");
}

Test(msg, error_table_bounds)
{
	cr_assert_eq(ERR_MAX, 14);
	cr_assert_eq(sizeof err_rows / sizeof err_rows[0], ERR_MAX, "every code listed");
	static const unsigned outside[] = { 0, 15, 255, 0xFFFF, 0xFFFFFFFFu };
	for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
		cr_assert_null(msg_error_name(outside[i]), "code %u", outside[i]);
		cr_assert_null(msg_error_label(outside[i]), "code %u", outside[i]);
		cr_assert(msg_error_closes(outside[i]), "unknown code %u closes", outside[i]);
		cr_assert_not_null(msg_error_text(outside[i]));
	}
	/* The enum matches the table's numbering. */
	cr_assert_eq(ERR_BAD_MAGIC, 1);
	cr_assert_eq(ERR_FRAME_TOO_LARGE, 6);
	cr_assert_eq(ERR_AUTH_FAILED, 8);
	cr_assert_eq(ERR_INTERNAL, 14);
}

Test(msg, type_labels)
{
	static const struct { unsigned type; const char *label; } rows[] = {
		{ FRAME_PING, "ping" }, { FRAME_PONG, "pong" }, { FRAME_ECHO, "echo" },
		{ FRAME_ECHO_REPLY, "echo_reply" }, { FRAME_BROADCAST, "broadcast" },
		{ FRAME_AUTH, "auth" }, { FRAME_AUTH_REPLY, "auth_reply" },
		{ FRAME_DATA, "data" }, { FRAME_ERROR, "error" },
	};
	size_t known = 0;
	for (unsigned t = 0; t < 256; t++) {
		const char *want = NULL;
		for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
			if (rows[i].type == t)
				want = rows[i].label;
		if (want) {
			cr_assert_str_eq(msg_type_label(t), want, "type %u", t);
			known++;
		} else {
			cr_assert_null(msg_type_label(t), "type %u", t);
		}
	}
	cr_assert_eq(known, 9);
	cr_assert_eq(FRAME_PING, 0x01);
	cr_assert_eq(FRAME_DATA, 0x08);
	cr_assert_eq(FRAME_ERROR, 0xFF);
}

Test(msg, ping_shape)
{
	for (size_t n = 0; n < 20; n++)
		cr_assert_eq(msg_ping_ok(n), n == 8, "length %zu", n);
}
