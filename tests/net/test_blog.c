/*
 * blog tests: the broadcast log's frame index. blog_frame_of() and
 * blog_start() against a walk over the frames, with positions and frame
 * numbers that cross 2^32 (the index keeps starts modulo 2^32), the ring
 * wrapping many times, and every kind of position: a frame's first byte,
 * its last, the middle, the head.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/blog.h"
#include "proto/frame.h"

#define KEEP 4096u /* frames remembered behind the head (a power of two) */

struct ref {
	uint64_t start[KEEP];
	uint64_t first, next; /* frame numbers remembered: [first, next) */
};

static uint64_t ref_start(const struct ref *r, uint64_t n)
{
	return r->start[n & (KEEP - 1)];
}

/* Append one frame of len payload bytes; forget the oldest ones so that
 * what is remembered stays in the ring (tail = the oldest start). */
static void append(struct blog *l, struct ref *r, uint16_t len)
{
	static uint8_t frame[FRAME_MAX_SIZE];
	static uint8_t payload[FRAME_MAX_SIZE];
	size_t size = frame_encode(frame, FRAME_BROADCAST, payload, len);
	while (r->next > r->first &&
	       (l->head + size - ref_start(r, r->first) > l->cap || r->next - r->first == KEEP))
		r->first++;
	l->tail = r->next > r->first ? ref_start(r, r->first) : l->head;
	cr_assert_geq(blog_room(l), size);
	r->start[r->next & (KEEP - 1)] = l->head;
	cr_assert_eq(blog_append(l, frame, (uint32_t)size, 1), ref_start(r, r->next));
	r->next++;
}

/* The last frame starting at or before p, by walking. */
static uint64_t walk(const struct blog *l, const struct ref *r, uint64_t from, uint64_t p)
{
	uint64_t f = from;
	while (f + 1 < r->next && ref_start(r, f + 1) <= p)
		f++;
	cr_assert_eq(blog_frame_size(l, ref_start(r, f)),
	             (f + 1 < r->next ? ref_start(r, f + 1) : l->head) - ref_start(r, f));
	return f;
}

static void check(const struct blog *l, const struct ref *r, uint64_t from, uint64_t p)
{
	uint64_t fpos = ref_start(r, from);
	uint64_t want = walk(l, r, from, p);
	uint64_t got = blog_frame_of(l, from, fpos, p);
	cr_assert_eq(got, want, "frame_of(from %llu at %llu, p %llu): %llu, want %llu",
	             (unsigned long long)from, (unsigned long long)fpos, (unsigned long long)p,
	             (unsigned long long)got, (unsigned long long)want);
	cr_assert_eq(blog_start(l, got, fpos), ref_start(r, want));
}

static void run(uint64_t head0, uint64_t nframes0, uint64_t cap, unsigned seed)
{
	struct blog l;
	cr_assert_eq(blog_init(&l, cap), 0);
	l.head = l.tail = head0;
	l.nframes = nframes0;
	static struct ref r;
	r.first = r.next = nframes0;
	uint64_t checks = 0;
	/* Enough appends to pass 2^32 in positions and frame numbers and to
	 * wrap the ring and the index many times. */
	for (int i = 0; i < 60000; i++) {
		uint16_t len = (uint16_t)(rand_r(&seed) % 4 == 0 ? rand_r(&seed) % 2000
		                                                 : rand_r(&seed) % 100);
		append(&l, &r, len);
		if (i % 7)
			continue;
		uint64_t from = r.first + (uint64_t)rand_r(&seed) % (r.next - r.first);
		uint64_t fpos = ref_start(&r, from);
		uint64_t span = l.head - fpos;
		/* The head itself is the caller's case: frame_of wants p < head. */
		uint64_t ps[4] = { fpos, fpos + (uint64_t)rand_r(&seed) % span, l.head - 1,
		                   ref_start(&r, r.next - 1) };
		for (int k = 0; k < 4; k++, checks++)
			check(&l, &r, from, ps[k]);
	}
	cr_assert_gt(l.head, (uint64_t)1 << 32, "positions crossed 2^32");
	cr_assert_gt(checks, 30000);
	blog_destroy(&l);
}

Test(blog, frame_of_across_2_32)
{
	/* 60,000 frames of ~330 bytes on average: start 10 MB below 2^32. */
	run(((uint64_t)1 << 32) - (10u << 20), ((uint64_t)1 << 32) - 30000, 256u << 10, 1);
}

Test(blog, frame_of_small_and_large_logs)
{
	run(((uint64_t)1 << 32) - (1u << 20), 5, 64u << 10, 2); /* rounded up to 128 KiB */
	run(((uint64_t)3 << 32) - (5u << 20), 77, 4u << 20, 3);
}

Test(blog, origin_and_start_side_by_side)
{
	struct blog l;
	cr_assert_eq(blog_init(&l, 256u << 10), 0);
	uint8_t frame[64];
	size_t size = frame_encode(frame, FRAME_BROADCAST, "x", 1);
	uint64_t p0 = blog_append(&l, frame, (uint32_t)size, 7);
	uint64_t p1 = blog_append(&l, frame, (uint32_t)size, BLOG_ORIGIN_REMOTE);
	cr_assert_eq(blog_origin(&l, 0), 7);
	cr_assert_eq(blog_origin(&l, 1), BLOG_ORIGIN_REMOTE);
	cr_assert_eq(blog_start(&l, 1, p0), p1);
	cr_assert_eq(blog_frame_of(&l, 0, p0, p1 - 1), 0);
	cr_assert_eq(blog_frame_of(&l, 0, p0, p1), 1);
	blog_destroy(&l);
}
