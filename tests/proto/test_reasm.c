/*
 * The shared reassembler (proto/reasm.h), case by case: what is taken from
 * a chunk, when it asks for a buffer and how big, where views point, and
 * every decoder error arriving in place and in held bytes. The long random
 * streams are in test_stream.c.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/reasm.h"

struct feed {
	struct frame_reasm ra;
	const uint8_t *p;
	size_t n;
	struct frame_view f;
};

static int next(struct feed *x, const struct frame_decoder *d)
{
	return frame_reasm_next(&x->ra, d, &x->p, &x->n, &x->f);
}

static void give(struct feed *x, uint32_t cap)
{
	uint8_t *b = malloc(cap);
	cr_assert_not_null(b);
	free(frame_reasm_move(&x->ra, b, cap));
}

static size_t echo(uint8_t *dst, const char *text)
{
	return frame_encode(dst, FRAME_ECHO, text, (uint16_t)strlen(text));
}

Test(reasm, empty_chunk_needs_more_without_a_buffer)
{
	struct feed x = { .ra = FRAME_REASM_INIT, .p = (const uint8_t *)"", .n = 0 };
	cr_assert_eq(next(&x, NULL), FRAME_NEED_MORE);
	cr_assert_null(x.ra.buf);
	cr_assert_eq(x.ra.len, 0u);
}

Test(reasm, frames_in_place_then_a_tail_kept)
{
	uint8_t s[64];
	size_t a = echo(s, "one"), b = echo(s + a, "two");
	size_t c = echo(s + a + b, "three");
	struct feed x = { .ra = FRAME_REASM_INIT, .p = s, .n = a + b + 5 };

	cr_assert_eq(next(&x, NULL), (int)a);
	cr_assert_eq(x.f.frame, s, "in place");
	cr_assert_not(frame_reasm_held(&x.ra, &x.f));
	cr_assert_eq(next(&x, NULL), (int)b);
	cr_assert_eq(x.f.frame, s + a);

	/* 5 bytes of the third: no buffer yet, a header's worth wanted. */
	cr_assert_eq(next(&x, NULL), FRAME_REASM_NOBUF);
	cr_assert_eq(x.ra.want, FRAME_HEADER_SIZE);
	cr_assert_eq(x.n, 5u, "nothing taken");
	give(&x, FRAME_HEADER_SIZE);
	cr_assert_eq(next(&x, NULL), FRAME_NEED_MORE);
	cr_assert_eq(x.n, 0u);
	cr_assert_eq(x.ra.len, 5u);
	cr_assert_null(x.f.payload, "header not complete yet");
	cr_assert_eq(x.f.need, 3u);

	/* The rest: the header completes, then the whole frame is wanted. */
	x.p = s + a + b + 5;
	x.n = c - 5;
	cr_assert_eq(next(&x, NULL), FRAME_REASM_NOBUF);
	cr_assert_eq(x.ra.want, c);
	cr_assert_eq(x.ra.len, FRAME_HEADER_SIZE, "the header was taken");
	cr_assert_eq(x.f.type, FRAME_ECHO, "the header is known before the payload");
	cr_assert_eq(x.f.len, 5u);
	give(&x, (uint32_t)c);
	cr_assert_eq(next(&x, NULL), (int)c);
	cr_assert(frame_reasm_held(&x.ra, &x.f));
	cr_assert_eq(memcmp(x.f.payload, "three", 5), 0);
	cr_assert_eq(x.ra.len, 0u);
	cr_assert_eq(x.n, 0u);
	cr_assert_eq(next(&x, NULL), FRAME_NEED_MORE);
	free(x.ra.buf);
}

Test(reasm, takes_no_byte_past_the_held_frame)
{
	uint8_t s[64];
	size_t a = echo(s, "first"), b = echo(s + a, "second");
	struct feed x = { .ra = FRAME_REASM_INIT, .p = s, .n = 10 };
	give(&x, 64);
	cr_assert_eq(next(&x, NULL), FRAME_NEED_MORE);
	x.p = s + 10;
	x.n = a + b - 10;
	cr_assert_eq(next(&x, NULL), (int)a);
	cr_assert(frame_reasm_held(&x.ra, &x.f));
	cr_assert_eq(x.p, s + a, "stopped at the end of the held frame");
	cr_assert_eq(next(&x, NULL), (int)b);
	cr_assert_eq(x.f.frame, s + a, "the next one in place");
	free(x.ra.buf);
}

Test(reasm, header_checked_before_the_payload_arrives)
{
	struct frame_decoder d = { .max_payload = 100 };
	uint8_t hdr[FRAME_HEADER_SIZE];
	frame_put_header(hdr, FRAME_ECHO, 1000);
	struct feed x = { .ra = FRAME_REASM_INIT, .p = hdr, .n = 6 };
	give(&x, 16);
	cr_assert_eq(next(&x, &d), FRAME_NEED_MORE);
	x.p = hdr + 6;
	x.n = 2;
	/* Too large from the header alone: no buffer of 1012 bytes asked for. */
	cr_assert_eq(next(&x, &d), FRAME_ETOOLARGE);
	cr_assert_eq(x.f.len, 1000u);
	cr_assert(frame_reasm_held(&x.ra, &x.f), "the bad header is in buf");
	cr_assert_eq(x.ra.len, FRAME_HEADER_SIZE);
	frame_reasm_reset(&x.ra);
	cr_assert_eq(x.ra.len, 0u);
	free(x.ra.buf);
}

Test(reasm, bad_magic_in_place_takes_nothing)
{
	uint8_t s[32];
	size_t a = echo(s, "x");
	s[a] = 0x16; /* a TLS record where the next frame should start */
	s[a + 1] = 0x03;
	struct feed x = { .ra = FRAME_REASM_INIT, .p = s, .n = a + 2 };
	cr_assert_eq(next(&x, NULL), (int)a);
	cr_assert_eq(next(&x, NULL), FRAME_EMAGIC);
	cr_assert_eq(x.p, s + a, "the bad bytes are still at *p");
	cr_assert_eq(x.n, 2u);
	cr_assert_eq(x.f.frame, s + a);
}

Test(reasm, bad_magic_and_version_arriving_in_held_bytes)
{
	static const uint8_t start[] = { 0xDE, 0xAD };
	static const uint8_t bad_magic[] = { 0xBE, 0x00, 0x01 };
	static const uint8_t bad_version[] = { 0xBE, 0xEF, 0x02 };

	struct feed x = { .ra = FRAME_REASM_INIT, .p = start, .n = 2 };
	give(&x, 8);
	cr_assert_eq(next(&x, NULL), FRAME_NEED_MORE);
	x.p = bad_magic;
	x.n = sizeof bad_magic;
	cr_assert_eq(next(&x, NULL), FRAME_EMAGIC);
	cr_assert(frame_reasm_held(&x.ra, &x.f));
	cr_assert_eq(x.ra.len, 5u);

	frame_reasm_reset(&x.ra);
	x.p = start;
	x.n = 2;
	cr_assert_eq(next(&x, NULL), FRAME_NEED_MORE);
	x.p = bad_version;
	x.n = sizeof bad_version;
	cr_assert_eq(next(&x, NULL), FRAME_EVERSION);
	free(frame_reasm_detach(&x.ra));
	cr_assert_null(x.ra.buf);
	cr_assert_eq(x.ra.cap, 0u);
}

Test(reasm, bad_crc_is_skipped_in_place_and_held)
{
	uint8_t s[64];
	size_t a = echo(s, "broken"), b = echo(s + a, "fine");
	s[a - 1] ^= 0x01;
	struct feed x = { .ra = FRAME_REASM_INIT, .p = s, .n = a + b };
	cr_assert_eq(next(&x, NULL), FRAME_ECRC);
	cr_assert_eq(x.f.size, a);
	cr_assert_eq(x.p, s + a, "skipped");
	cr_assert_eq(next(&x, NULL), (int)b);

	/* The same, split inside the broken frame. */
	x.p = s;
	x.n = 9;
	give(&x, 64);
	cr_assert_eq(next(&x, NULL), FRAME_NEED_MORE);
	x.p = s + 9;
	x.n = a + b - 9;
	cr_assert_eq(next(&x, NULL), FRAME_ECRC);
	cr_assert(frame_reasm_held(&x.ra, &x.f));
	cr_assert_eq(x.ra.len, 0u, "the stream stays in step");
	cr_assert_eq(next(&x, NULL), (int)b);
	cr_assert_eq(memcmp(x.f.payload, "fine", 4), 0);
	free(x.ra.buf);
}

Test(reasm, move_keeps_the_held_bytes_and_detach_hands_back)
{
	uint8_t s[32];
	size_t a = echo(s, "moved");
	struct feed x = { .ra = FRAME_REASM_INIT, .p = s, .n = 10 };
	give(&x, 10);
	cr_assert_eq(next(&x, NULL), FRAME_REASM_NOBUF, "10 bytes cannot hold the frame");
	cr_assert_eq(x.ra.want, a);
	give(&x, (uint32_t)a);
	cr_assert_eq(next(&x, NULL), FRAME_NEED_MORE);
	uint8_t *mine = malloc(32);
	cr_assert_not_null(mine);
	uint8_t *old = frame_reasm_move(&x.ra, mine, 32);
	cr_assert_neq(old, mine);
	free(old);
	cr_assert_eq(memcmp(mine, s, 10), 0);
	x.p = s + 10;
	x.n = a - 10;
	cr_assert_eq(next(&x, NULL), (int)a);
	cr_assert_eq(x.f.frame, mine);
	/* Keep the frame past the next call: take the buffer. */
	cr_assert_eq(frame_reasm_detach(&x.ra), mine);
	cr_assert_not(frame_reasm_held(&x.ra, &x.f));
	cr_assert_eq(memcmp(x.f.payload, "moved", 5), 0);
	free(mine);
}
