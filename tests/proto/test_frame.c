/* Frame codec tests: the PROTOCOL.md vectors byte for byte, and the CRC
 * check value. Error paths: test_frame_errors.c; streams: test_stream.c. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "proto/frame.h"

/* Inline arrays, not pointers: Criterion runs each parameter in a fresh
 * process image, so only the struct's own bytes are carried over. */
struct vec {
	char name[24];
	uint8_t type;
	char payload[16];
	size_t plen;
	char hex[80];
};

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;
	unsigned v;
	while (*hex) {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		sscanf(hex, "%2x", &v);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

static struct vec vectors[] = {
	{ "PING ts=1", 0x01, "\0\0\0\0\0\0\0\1", 8,
	  "de ad be ef 01 01 00 08 00 00 00 00 00 00 00 01 9e f2 f1 cc" },
	{ "ECHO hi", 0x03, "hi", 2, "de ad be ef 01 03 00 02 68 69 97 1f e5 14" },
	{ "ECHO empty", 0x03, "", 0, "de ad be ef 01 03 00 00 60 77 f2 de" },
	{ "BROADCAST hello", 0x05, "hello", 5,
	  "de ad be ef 01 05 00 05 68 65 6c 6c 6f 8e 5b 34 d4" },
	{ "AUTH alice/s3cret", 0x06, "\x05" "alices3cret", 12,
	  "de ad be ef 01 06 00 0c 05 61 6c 69 63 65 73 33 63 72 65 74 11 07 bc db" },
	{ "ERROR 3 bad crc", 0xff, "\x00\x03" "bad crc", 9,
	  "de ad be ef 01 ff 00 09 00 03 62 61 64 20 63 72 63 05 86 52 1e" },
};

ParameterizedTestParameters(frame, vectors)
{
	return cr_make_param_array(struct vec, vectors,
	                           sizeof vectors / sizeof vectors[0]);
}

ParameterizedTest(struct vec *v, frame, vectors)
{
	uint8_t want[64], got[64];
	size_t n = unhex(v->hex, want);

	cr_assert_eq(frame_encode(got, v->type, v->payload, (uint16_t)v->plen), n,
	             "%s: size", v->name);
	cr_assert_arr_eq(got, want, n, "%s: encoded bytes", v->name);

	uint8_t hdr[8], crc[4];
	frame_wrap(hdr, crc, v->type, v->payload, (uint16_t)v->plen);
	cr_assert_arr_eq(hdr, want, 8, "%s: wrap header", v->name);
	cr_assert_arr_eq(crc, want + n - 4, 4, "%s: wrap crc", v->name);

	struct frame_view f;
	cr_assert_eq(frame_decode(NULL, want, n, &f), (int)n, "%s: decode", v->name);
	cr_assert_eq(f.type, v->type);
	cr_assert_eq(f.len, v->plen);
	cr_assert_eq(f.payload, want + 8, "payload is a view, not a copy");
	cr_assert_arr_eq(f.payload, v->payload, v->plen);
}

Test(frame, check_value)
{
	cr_assert_eq(frame_crc(0, "123456789", 9), 0xCBF43926u);
	uint32_t c = frame_crc(0, "1234", 4);
	cr_assert_eq(frame_crc(c, "56789", 5), 0xCBF43926u, "chained CRC");
}

ParameterizedTestParameters(frame, vector_prefixes)
{
	return cr_make_param_array(struct vec, vectors,
	                           sizeof vectors / sizeof vectors[0]);
}

/* Every prefix of a vector is "need more", with exactly what is missing:
 * the rest of the header first, then the rest of the frame. */
ParameterizedTest(struct vec *v, frame, vector_prefixes)
{
	uint8_t want[64];
	size_t n = unhex(v->hex, want);
	struct frame_view f;

	for (size_t k = 0; k < n; k++) {
		cr_assert_eq(frame_decode(NULL, want, k, &f), FRAME_NEED_MORE,
		             "%s: prefix %zu", v->name, k);
		size_t need = k < FRAME_HEADER_SIZE ? FRAME_HEADER_SIZE - k : n - k;
		cr_assert_eq(f.need, need, "%s: need after %zu bytes", v->name, k);
	}
}

/* frame_crc_retype agrees with computing the CRC again, for every type
 * change and a spread of lengths up to the maximum. */
Test(frame, crc_retype_matches_recompute)
{
	static uint8_t buf[FRAME_MAX_SIZE];
	unsigned seed = 12345;
	static const uint16_t lens[] = { 0, 1, 2, 7, 8, 9, 63, 64, 1000, 4096, 40000, 65534, 65535 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		uint16_t len = lens[i];
		for (size_t j = 0; j < len; j++)
			buf[FRAME_HEADER_SIZE + j] = (uint8_t)rand_r(&seed);
		for (int k = 0; k < 8; k++) {
			uint8_t from = (uint8_t)rand_r(&seed), to = (uint8_t)rand_r(&seed);
			frame_encode(buf, from, buf + FRAME_HEADER_SIZE, len);
			uint32_t before = frame_get_u32(buf + FRAME_HEADER_SIZE + len);
			frame_encode(buf, to, buf + FRAME_HEADER_SIZE, len);
			uint32_t after = frame_get_u32(buf + FRAME_HEADER_SIZE + len);
			cr_assert_eq(frame_crc_retype(before, from, to, len), after,
			             "len %u, type %#x -> %#x", len, from, to);
		}
	}
	/* PING ts=1 -> its PONG, from the PROTOCOL.md vector. */
	uint8_t ping[20] = { 0xde, 0xad, 0xbe, 0xef, 1, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1,
	                     0x9e, 0xf2, 0xf1, 0xcc };
	uint8_t pong[20];
	frame_encode(pong, FRAME_PONG, ping + 8, 8);
	cr_assert_eq(frame_crc_retype(0x9ef2f1ccu, FRAME_PING, FRAME_PONG, 8),
	             frame_get_u32(pong + 16));
}
