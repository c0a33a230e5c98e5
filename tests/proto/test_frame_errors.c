/*
 * Frame decoder error paths (PROTOCOL.md sections 1 and 3): every error
 * kind, the order the checks run in, "need more" values, the payload size
 * limits, and the encoder's variants agreeing with each other.
 *
 * Buffers handed to frame_decode are heap blocks of exactly the size
 * passed, so the ASan build catches any read past the end.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

static const uint8_t magic[4] = { 0xDE, 0xAD, 0xBE, 0xEF };

/* splitmix64: a fixed-seed generator, so a failure reproduces. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	cr_assert_not_null(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

static int decode_exact(const struct frame_decoder *d, const uint8_t *p,
                        size_t n, struct frame_view *f)
{
	uint8_t *q = dup_exact(p, n);
	int rc = frame_decode(d, q, n, f);
	free(q);
	return rc;
}

/* A whole valid frame, heap-allocated to its exact size. */
static uint8_t *make_frame(uint8_t type, uint16_t len, uint64_t seed, size_t *size)
{
	uint8_t *buf = malloc(FRAME_OVERHEAD + (size_t)len);
	cr_assert_not_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[FRAME_HEADER_SIZE + i] = (uint8_t)rnd(&seed);
	*size = frame_encode(buf, type, buf + FRAME_HEADER_SIZE, len);
	return buf;
}

/* ---- bad magic ----------------------------------------------------------- */

Test(frame_errors, bad_magic_from_one_byte)
{
	struct frame_view f;
	for (unsigned b = 0; b < 256; b++) {
		uint8_t p[1] = { (uint8_t)b };
		int rc = decode_exact(NULL, p, 1, &f);
		if (b == 0xDE) {
			cr_assert_eq(rc, FRAME_NEED_MORE);
			cr_assert_eq(f.need, 7);
		} else {
			cr_assert_eq(rc, FRAME_EMAGIC, "first byte %02x", b);
		}
	}
}

/* A wrong byte at magic position i is reported from the (i+1)-byte prefix,
 * whatever follows. */
Test(frame_errors, bad_magic_each_position)
{
	struct frame_view f;
	for (size_t i = 0; i < 4; i++) {
		uint8_t p[FRAME_HEADER_SIZE] = { 0xDE, 0xAD, 0xBE, 0xEF, 1, 3, 0, 0 };
		p[i] ^= 0x01;
		for (size_t n = i + 1; n <= sizeof p; n++)
			cr_assert_eq(decode_exact(NULL, p, n, &f), FRAME_EMAGIC,
			             "wrong byte %zu, %zu bytes", i, n);
		for (size_t n = 0; n <= i; n++) {
			cr_assert_eq(decode_exact(NULL, p, n, &f), FRAME_NEED_MORE,
			             "wrong byte %zu not yet present (%zu bytes)", i, n);
			cr_assert_eq(f.need, FRAME_HEADER_SIZE - n);
		}
	}
}

Test(frame_errors, empty_input)
{
	struct frame_view f;
	cr_assert_eq(frame_decode(NULL, NULL, 0, &f), FRAME_NEED_MORE);
	cr_assert_eq(f.need, FRAME_HEADER_SIZE);
	cr_assert_null(f.payload, "no payload pointer before the header");
}

/* ---- bad version --------------------------------------------------------- */

Test(frame_errors, bad_version_from_five_bytes)
{
	struct frame_view f;
	for (unsigned v = 0; v < 256; v++) {
		uint8_t p[5] = { 0xDE, 0xAD, 0xBE, 0xEF, (uint8_t)v };
		int rc = decode_exact(NULL, p, 5, &f);
		if (v == FRAME_VERSION) {
			cr_assert_eq(rc, FRAME_NEED_MORE);
			cr_assert_eq(f.need, 3);
		} else {
			cr_assert_eq(rc, FRAME_EVERSION, "version %02x", v);
		}
		/* Four bytes cannot know the version yet. */
		cr_assert_eq(decode_exact(NULL, p, 4, &f), FRAME_NEED_MORE);
		cr_assert_eq(f.need, 4);
	}
}

/* ---- too large ----------------------------------------------------------- */

struct limit {
	uint32_t max;       /* decoder setting; 0 is the protocol's limit */
	uint32_t effective; /* the limit that setting means */
};

static struct limit limits[] = {
	{ 1, 1 }, { 8, 8 }, { 100, 100 }, { 1024, 1024 }, { 16384, 16384 },
	{ 65534, 65534 }, { 65535, 65535 }, { 0, 65535 }, { 100000, 65535 },
};

ParameterizedTestParameters(frame_errors, too_large_boundary)
{
	return cr_make_param_array(struct limit, limits,
	                           sizeof limits / sizeof limits[0]);
}

/* The boundary max is accepted and max + 1 refused, both from the 8-byte
 * header alone (no payload present). */
ParameterizedTest(struct limit *l, frame_errors, too_large_boundary)
{
	struct frame_decoder d = { .max_payload = l->max };
	struct frame_view f;
	uint8_t hdr[FRAME_HEADER_SIZE];

	frame_put_header(hdr, FRAME_ECHO, (uint16_t)l->effective);
	cr_assert_eq(decode_exact(&d, hdr, sizeof hdr, &f), FRAME_NEED_MORE,
	             "max %u: length max is allowed", l->max);
	cr_assert_eq(f.need, l->effective + FRAME_CRC_SIZE);
	cr_assert_eq(f.size, FRAME_OVERHEAD + l->effective);

	if (l->effective < 65535) {
		frame_put_header(hdr, FRAME_ECHO, (uint16_t)(l->effective + 1));
		cr_assert_eq(decode_exact(&d, hdr, sizeof hdr, &f), FRAME_ETOOLARGE,
		             "max %u: length max+1 is refused from the header", l->max);
		cr_assert_eq(f.len, l->effective + 1);
		cr_assert_eq(f.size, FRAME_OVERHEAD + l->effective + 1);
		cr_assert_eq(f.type, FRAME_ECHO);
		/* Seven bytes do not hold the length yet. */
		cr_assert_eq(decode_exact(&d, hdr, 7, &f), FRAME_NEED_MORE);
		cr_assert_eq(f.need, 1);
	}

	/* And a whole frame at the boundary decodes. */
	size_t size;
	uint8_t *buf = make_frame(FRAME_DATA, (uint16_t)l->effective, l->max, &size);
	cr_assert_eq(frame_decode(&d, buf, size, &f), (int)size);
	cr_assert_eq(f.len, l->effective);
	free(buf);
}

/* A zero-filled decoder and a NULL decoder both mean the protocol limit. */
Test(frame_errors, default_limit)
{
	struct frame_decoder d = { 0 };
	struct frame_view f;
	uint8_t hdr[FRAME_HEADER_SIZE];
	frame_put_header(hdr, FRAME_ECHO, 65535);
	cr_assert_eq(frame_decode(&d, hdr, sizeof hdr, &f), FRAME_NEED_MORE);
	cr_assert_eq(frame_decode(NULL, hdr, sizeof hdr, &f), FRAME_NEED_MORE);
	cr_assert_eq(f.need, 65535 + FRAME_CRC_SIZE);
}

/* ---- check order --------------------------------------------------------- */

/* PROTOCOL.md section 3: magic, version, length, CRC; the first failing
 * check decides. */
Test(frame_errors, check_order)
{
	struct frame_decoder d = { .max_payload = 4 };
	struct frame_view f;
	/* bad magic, bad version, too large, bad CRC all at once */
	uint8_t p[FRAME_OVERHEAD + 5] = { 0xDE, 0xAD, 0xBE, 0x00, 0x09, 0x05, 0x00, 0x05 };

	cr_assert_eq(decode_exact(&d, p, sizeof p, &f), FRAME_EMAGIC);
	p[3] = 0xEF;
	cr_assert_eq(decode_exact(&d, p, sizeof p, &f), FRAME_EVERSION);
	p[4] = FRAME_VERSION;
	cr_assert_eq(decode_exact(&d, p, sizeof p, &f), FRAME_ETOOLARGE);
	d.max_payload = 5;
	cr_assert_eq(decode_exact(&d, p, sizeof p, &f), FRAME_ECRC);
	frame_encode(p, FRAME_BROADCAST, p + FRAME_HEADER_SIZE, 5);
	cr_assert_eq(decode_exact(&d, p, sizeof p, &f), (int)sizeof p);
}

/* Any type byte is framed; the type check belongs to the server, after the
 * CRC ("a corrupted frame is BAD_CRC whatever its type"). */
Test(frame_errors, every_type_frames)
{
	struct frame_view f;
	for (unsigned t = 0; t < 256; t++) {
		uint8_t p[FRAME_OVERHEAD + 1];
		uint8_t x = 0x5A;
		size_t n = frame_encode(p, (uint8_t)t, &x, 1);
		cr_assert_eq(decode_exact(NULL, p, n, &f), (int)n, "type %u", t);
		cr_assert_eq(f.type, t);
		p[FRAME_HEADER_SIZE] ^= 0x80;
		cr_assert_eq(decode_exact(NULL, p, n, &f), FRAME_ECRC, "type %u", t);
		cr_assert_eq(f.type, t);
	}
}

/* ---- bad CRC ------------------------------------------------------------- */

struct corrupt {
	uint16_t len;
	uint32_t byte;  /* which byte of the frame to corrupt */
	uint8_t mask;
};

static struct corrupt corrupts[] = {
	{ 0, 5, 0x01 },      /* type byte: not part of framing, CRC catches it */
	{ 0, 8, 0x80 },      /* first CRC byte of an empty frame */
	{ 0, 11, 0x01 },     /* last CRC byte */
	{ 8, 8, 0x01 },      /* first payload byte */
	{ 8, 15, 0xFF },     /* last payload byte */
	{ 8, 19, 0x10 },     /* last CRC byte */
	{ 1000, 500, 0x04 },
	{ 65535, 8, 0x01 },
	{ 65535, 65542, 0x40 },
	{ 65535, 65546, 0x01 },
};

ParameterizedTestParameters(frame_errors, bad_crc_then_skip)
{
	return cr_make_param_array(struct corrupt, corrupts,
	                           sizeof corrupts / sizeof corrupts[0]);
}

/* A corrupted frame reports its size; skipping it, the next frame decodes. */
ParameterizedTest(struct corrupt *c, frame_errors, bad_crc_then_skip)
{
	size_t bad_size, good_size;
	uint8_t *bad = make_frame(FRAME_ECHO, c->len, c->byte, &bad_size);
	uint8_t *good = make_frame(FRAME_PING, 8, 7, &good_size);
	size_t n = bad_size + good_size;
	uint8_t *stream = malloc(n);
	cr_assert_not_null(stream);
	memcpy(stream, bad, bad_size);
	memcpy(stream + bad_size, good, good_size);
	stream[c->byte] ^= c->mask;

	struct frame_view f;
	cr_assert_eq(frame_decode(NULL, stream, n, &f), FRAME_ECRC,
	             "len %u, byte %u corrupted", c->len, c->byte);
	cr_assert_eq(f.size, bad_size, "size reported so the caller can skip");
	cr_assert_eq(f.len, c->len);
	cr_assert_eq(f.frame, stream);

	/* The same answer with exactly the bad frame present. */
	cr_assert_eq(frame_decode(NULL, stream, bad_size, &f), FRAME_ECRC);
	cr_assert_eq(f.size, bad_size);
	/* One byte short is still "need more", exactly one. */
	cr_assert_eq(frame_decode(NULL, stream, bad_size - 1, &f), FRAME_NEED_MORE);
	cr_assert_eq(f.need, 1);

	int rc = frame_decode(NULL, stream + bad_size, n - bad_size, &f);
	cr_assert_eq(rc, (int)good_size, "the frame after the bad one decodes");
	cr_assert_eq(f.type, FRAME_PING);
	cr_assert_eq(memcmp(f.payload, good + FRAME_HEADER_SIZE, 8), 0);

	free(stream);
	free(good);
	free(bad);
}

/* ---- need more ----------------------------------------------------------- */

struct needcase {
	uint16_t len;
};

static struct needcase needcases[] = { { 0 }, { 1 }, { 8 }, { 300 }, { 65535 } };

ParameterizedTestParameters(frame_errors, need_exact)
{
	return cr_make_param_array(struct needcase, needcases,
	                           sizeof needcases / sizeof needcases[0]);
}

ParameterizedTest(struct needcase *c, frame_errors, need_exact)
{
	size_t size;
	uint8_t *buf = make_frame(FRAME_ECHO, c->len, c->len, &size);
	struct frame_view f;

	for (size_t k = 0; k < size; k++) {
		/* Only the prefix is allocated: a read past it is an ASan error.
		 * Copying every prefix of a 64 KiB frame is quadratic, so the
		 * large one uses exact copies for the header and a sample. */
		bool exact = size < 4096 || k < 64 || k + 64 > size || k % 4093 == 0;
		uint8_t *p = exact ? dup_exact(buf, k) : buf;
		int rc = frame_decode(NULL, p, k, &f);
		cr_assert_eq(rc, FRAME_NEED_MORE, "len %u, %zu bytes", c->len, k);
		size_t want = k < FRAME_HEADER_SIZE ? FRAME_HEADER_SIZE - k : size - k;
		cr_assert_eq(f.need, want, "len %u, %zu bytes", c->len, k);
		cr_assert_eq(f.frame, p);
		if (k >= FRAME_HEADER_SIZE) {
			cr_assert_eq(f.size, size);
			cr_assert_eq(f.len, c->len);
			cr_assert_eq(f.type, FRAME_ECHO);
			cr_assert_eq(f.payload, p + FRAME_HEADER_SIZE);
		} else {
			cr_assert_null(f.payload);
		}
		if (exact)
			free(p);
	}
	cr_assert_eq(frame_decode(NULL, buf, size, &f), (int)size);
	free(buf);
}

/* ---- payload extremes and the encoder variants --------------------------- */

Test(frame_errors, payload_0_and_65535)
{
	static const uint16_t lens[] = { 0, 65535 };
	for (size_t i = 0; i < 2; i++) {
		size_t size;
		uint8_t *buf = make_frame(FRAME_BROADCAST, lens[i], 99, &size);
		cr_assert_eq(size, FRAME_OVERHEAD + (size_t)lens[i]);
		/* Keep a copy of the payload: the original must come back
		 * byte for byte through the view. */
		uint8_t *payload = dup_exact(buf + FRAME_HEADER_SIZE, lens[i]);
		struct frame_view f;
		cr_assert_eq(frame_decode(NULL, buf, size, &f), (int)size);
		cr_assert_eq(f.len, lens[i]);
		cr_assert_eq(f.type, FRAME_BROADCAST);
		cr_assert_eq(memcmp(f.payload, payload, lens[i]), 0);
		cr_assert_eq(frame_get_u16(buf + 6), lens[i]);
		cr_assert_eq(frame_get_u32(buf + FRAME_HEADER_SIZE + lens[i]),
		             frame_crc(0, buf, FRAME_HEADER_SIZE + (size_t)lens[i]));
		free(payload);
		free(buf);
	}
	cr_assert_eq(FRAME_MAX_SIZE, 65547);
}

Test(frame_errors, wrap_equals_encode)
{
	uint64_t seed = 0x6672616d65ULL;
	uint8_t *payload = malloc(65535);
	uint8_t *enc = malloc(FRAME_MAX_SIZE);
	uint8_t *inplace = malloc(FRAME_MAX_SIZE + 1);
	cr_assert(payload && enc && inplace);

	for (int i = 0; i < 300; i++) {
		uint8_t type = (uint8_t)rnd(&seed);
		uint64_t r = rnd(&seed);
		uint16_t len = (uint16_t)(i == 0 ? 0 : i == 1 ? 65535 :
		                          r % 4 == 0 ? r >> 16 : (r >> 16) % 2048);
		for (size_t k = 0; k < len; k++)
			payload[k] = (uint8_t)rnd(&seed);

		size_t n = frame_encode(enc, type, payload, len);
		cr_assert_eq(n, FRAME_OVERHEAD + (size_t)len);

		uint8_t hdr[FRAME_HEADER_SIZE], crc[FRAME_CRC_SIZE];
		frame_wrap(hdr, crc, type, payload, len);
		cr_assert_eq(memcmp(hdr, enc, sizeof hdr), 0, "case %d (len %u)", i, len);
		cr_assert_eq(memcmp(crc, enc + FRAME_HEADER_SIZE + len, sizeof crc), 0,
		             "case %d (len %u)", i, len);
		cr_assert_eq(memcmp(enc + FRAME_HEADER_SIZE, payload, len), 0);

		/* In place: the payload is already at dst + 8. */
		memset(inplace, 0xA5, FRAME_MAX_SIZE + 1);
		memcpy(inplace + FRAME_HEADER_SIZE, payload, len);
		cr_assert_eq(frame_encode(inplace, type, inplace + FRAME_HEADER_SIZE, len), n);
		cr_assert_eq(memcmp(inplace, enc, n), 0, "in place, case %d (len %u)", i, len);
		cr_assert_eq(inplace[n], 0xA5, "nothing written past the frame");

		struct frame_view f;
		cr_assert_eq(frame_decode(NULL, enc, n, &f), (int)n);
		cr_assert_eq(f.type, type);
	}
	free(inplace);
	free(enc);
	free(payload);
}

/* The payload may start anywhere below dst + 8 too (memmove semantics),
 * and a NULL payload is fine for an empty frame. */
Test(frame_errors, encode_overlap_and_empty)
{
	uint8_t buf[FRAME_OVERHEAD + 16], want[FRAME_OVERHEAD + 16];
	const uint8_t text[16] = "0123456789abcdef";
	size_t n = frame_encode(want, FRAME_DATA, text, 16);
	memcpy(buf + 3, text, 16);
	cr_assert_eq(frame_encode(buf, FRAME_DATA, buf + 3, 16), n);
	cr_assert_eq(memcmp(buf, want, n), 0);

	cr_assert_eq(frame_encode(buf, FRAME_ECHO, NULL, 0), FRAME_OVERHEAD);
	const uint8_t empty_echo[] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x03, 0x00, 0x00,
	                               0x60, 0x77, 0xf2, 0xde };
	cr_assert_eq(memcmp(buf, empty_echo, sizeof empty_echo), 0);
	uint8_t hdr[FRAME_HEADER_SIZE], crc[FRAME_CRC_SIZE];
	frame_wrap(hdr, crc, FRAME_ECHO, NULL, 0);
	cr_assert_eq(memcmp(crc, empty_echo + 8, 4), 0);
}

Test(frame_errors, byte_helpers)
{
	uint8_t b[4];
	frame_put_u16(b, 0xBEEF);
	cr_assert_eq(b[0], 0xBE);
	cr_assert_eq(b[1], 0xEF);
	cr_assert_eq(frame_get_u16(b), 0xBEEF);
	frame_put_u32(b, 0xDEADBEEF);
	cr_assert_eq(memcmp(b, magic, 4), 0);
	cr_assert_eq(frame_get_u32(b), FRAME_MAGIC);
}
