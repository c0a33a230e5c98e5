/*
 * A long stream of random frames through an incremental decode loop, the
 * way a connection sees it: whole, one byte at a time, and in random chunk
 * sizes, each way decoding to the very frames that were encoded. The same
 * streams then go through the shared reassembler (proto/reasm.h) with each
 * way of giving it buffers its callers use.
 *
 * The generator's seed is fixed (printed in every failure message) and can
 * be overridden with NET001_SEED=<number> to reproduce or explore.
 */
#include <criterion/criterion.h>
#include <sanitizer/asan_interface.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/reasm.h"

#define STREAM_FRAMES   1200
#define DEFAULT_SEED    0x4E45543030312D31ull
#define CHUNK_MAX       200000

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

struct rec {
	size_t off;
	uint16_t len;
	uint8_t type;
};

struct stream {
	uint64_t seed;
	uint8_t *bytes;
	size_t n;
	struct rec recs[STREAM_FRAMES];
};

static uint64_t test_seed(void)
{
	const char *s = getenv("NET001_SEED");
	return s && *s ? strtoull(s, NULL, 0) : DEFAULT_SEED;
}

/*
 * Random types (any byte) and payload lengths over the whole 0..65535
 * range: a quarter uniform over it, the rest up to 2 KiB, the size most
 * messages have. Frame 0 is empty and frame 1 is the largest, so both
 * extremes are always in.
 */
static void stream_make(struct stream *s, uint64_t seed)
{
	uint64_t r = seed;
	size_t total = 0;

	s->seed = seed;
	for (size_t i = 0; i < STREAM_FRAMES; i++) {
		uint64_t x = rnd(&r);
		uint16_t len = (uint16_t)(i == 0 ? 0 : i == 1 ? 65535 :
		                          x % 4 == 0 ? x >> 48 : (x >> 48) % 2049);
		s->recs[i].type = (uint8_t)(x >> 8);
		s->recs[i].len = len;
		s->recs[i].off = total;
		total += FRAME_OVERHEAD + (size_t)len;
	}
	s->n = total;
	s->bytes = malloc(total);
	cr_assert_not_null(s->bytes);
	for (size_t i = 0; i < STREAM_FRAMES; i++) {
		uint8_t *dst = s->bytes + s->recs[i].off;
		uint8_t *pl = dst + FRAME_HEADER_SIZE;
		for (size_t k = 0; k < s->recs[i].len; k++)
			pl[k] = (uint8_t)rnd(&r);
		frame_encode(dst, s->recs[i].type, pl, s->recs[i].len);
	}
}

/* ---- the reassembly helper ----------------------------------------------- */

/*
 * Keeps the bytes not yet consumed, lets frame_decode look at them in
 * place, and with honour_need does not call it again until at least the
 * `need` it reported has arrived. Views returned by reasm_next are valid
 * until the next reasm_push. The unused tail of the buffer is poisoned in
 * ASan builds, so a decoder read past the bytes held is caught.
 */
struct reasm {
	uint8_t *buf;
	size_t cap;
	size_t start;   /* first unconsumed byte */
	size_t end;     /* one past the last byte held */
	size_t wait;    /* with honour_need: bytes to hold before decoding */
	size_t calls;   /* frame_decode calls made */
	bool honour_need;
};

static void reasm_init(struct reasm *r, bool honour_need)
{
	memset(r, 0, sizeof *r);
	r->cap = 2 * (size_t)FRAME_MAX_SIZE + CHUNK_MAX;
	r->buf = malloc(r->cap);
	cr_assert_not_null(r->buf);
	r->honour_need = honour_need;
	ASAN_POISON_MEMORY_REGION(r->buf, r->cap);
}

static void reasm_free(struct reasm *r)
{
	ASAN_UNPOISON_MEMORY_REGION(r->buf, r->cap);
	free(r->buf);
}

static void reasm_push(struct reasm *r, const uint8_t *p, size_t n)
{
	/* Compact only when the tail is full: what is held is less than one
	 * frame, so this is rare and the copy small. */
	if (r->end + n > r->cap) {
		size_t held = r->end - r->start;
		ASAN_UNPOISON_MEMORY_REGION(r->buf, r->cap);
		memmove(r->buf, r->buf + r->start, held);
		r->start = 0;
		r->end = held;
		ASAN_POISON_MEMORY_REGION(r->buf + held, r->cap - held);
	}
	cr_assert_leq(r->end + n, r->cap);
	ASAN_UNPOISON_MEMORY_REGION(r->buf + r->end, n);
	memcpy(r->buf + r->end, p, n);
	r->end += n;
}

/* Returns what frame_decode returned, consuming the frame if there is one;
 * FRAME_NEED_MORE without a call while `need` is not yet met. */
static int reasm_next(struct reasm *r, struct frame_view *f)
{
	size_t held = r->end - r->start;
	if (held == 0 || (r->honour_need && held < r->wait))
		return FRAME_NEED_MORE;
	r->calls++;
	int rc = frame_decode(NULL, r->buf + r->start, held, f);
	if (rc == FRAME_NEED_MORE) {
		r->wait = held + f->need;
		return rc;
	}
	r->wait = 0;
	if (rc > 0)
		r->start += (size_t)rc;
	return rc;
}

/* ---- the checks ---------------------------------------------------------- */

static void check_frame(const struct stream *s, size_t i, const struct frame_view *f,
                        int rc, const char *how)
{
	const struct rec *e = &s->recs[i];
	cr_assert_gt(rc, 0, "%s, seed %#llx: frame %zu: decode returned %d",
	             how, (unsigned long long)s->seed, i, rc);
	cr_assert_eq((size_t)rc, FRAME_OVERHEAD + (size_t)e->len,
	             "%s, seed %#llx: frame %zu size", how, (unsigned long long)s->seed, i);
	cr_assert_eq(f->type, e->type, "%s, seed %#llx: frame %zu type",
	             how, (unsigned long long)s->seed, i);
	cr_assert_eq(f->len, e->len, "%s, seed %#llx: frame %zu length",
	             how, (unsigned long long)s->seed, i);
	cr_assert_eq(f->payload, f->frame + FRAME_HEADER_SIZE);
	cr_assert_eq(memcmp(f->payload, s->bytes + e->off + FRAME_HEADER_SIZE, e->len), 0,
	             "%s, seed %#llx: frame %zu payload", how, (unsigned long long)s->seed, i);
}

enum chunking { WHOLE, ONE_BYTE, RANDOM };

/* The next read's size: whole, one byte, or random. */
static size_t chunk_size(enum chunking mode, uint64_t *cr, size_t left)
{
	size_t c = 1;
	if (mode == WHOLE) {
		c = left;
	} else if (mode == RANDOM) {
		/* Mostly small reads, some large ones that carry many
		 * frames at once. */
		uint64_t x = rnd(cr);
		c = 1 + (x % 3 == 0 ? (x >> 8) % 16 : x % 3 == 1 ?
		         (x >> 8) % 4096 : (x >> 8) % CHUNK_MAX);
	}
	return c < left ? c : left;
}

static void run(enum chunking mode, bool honour_need, const char *how)
{
	struct stream *s = malloc(sizeof *s);
	cr_assert_not_null(s);
	stream_make(s, test_seed());

	struct reasm r;
	reasm_init(&r, honour_need);
	uint64_t cr = s->seed ^ 0xC4u;
	size_t fed = 0, got = 0;
	struct frame_view f;

	while (fed < s->n) {
		size_t c = chunk_size(mode, &cr, s->n - fed);
		if (mode == WHOLE) {
			/* Whole: decode in the caller's own buffer, no copy. */
			for (size_t off = 0; off < s->n; got++) {
				int rc = frame_decode(NULL, s->bytes + off, s->n - off, &f);
				cr_assert_lt(got, STREAM_FRAMES);
				check_frame(s, got, &f, rc, how);
				cr_assert_eq(f.frame, s->bytes + off, "a view, not a copy");
				off += (size_t)rc;
			}
			fed = s->n;
			break;
		}
		reasm_push(&r, s->bytes + fed, c);
		fed += c;
		for (;;) {
			int rc = reasm_next(&r, &f);
			if (rc == FRAME_NEED_MORE)
				break;
			cr_assert_lt(got, STREAM_FRAMES, "%s, seed %#llx: too many frames",
			             how, (unsigned long long)s->seed);
			check_frame(s, got, &f, rc, how);
			got++;
		}
	}
	cr_assert_eq(got, STREAM_FRAMES, "%s, seed %#llx: %zu frames decoded",
	             how, (unsigned long long)s->seed, got);
	if (mode != WHOLE) {
		cr_assert_eq(r.start, r.end, "%s: bytes left over", how);
		if (honour_need)
			/* Honouring need, a frame costs at most three calls:
			 * on its first bytes, on a whole header, on the whole
			 * frame. */
			cr_assert_leq(r.calls, 3 * (size_t)STREAM_FRAMES,
			              "%s, seed %#llx: %zu decode calls", how,
			              (unsigned long long)s->seed, r.calls);
	}
	reasm_free(&r);
	free(s->bytes);
	free(s);
}

Test(stream, whole, .timeout = 120)
{
	run(WHOLE, false, "whole");
}

Test(stream, one_byte_at_a_time, .timeout = 120)
{
	run(ONE_BYTE, true, "one byte, honouring need");
}

Test(stream, one_byte_eager, .timeout = 120)
{
	run(ONE_BYTE, false, "one byte, decoding after every byte");
}

Test(stream, random_chunks, .timeout = 120)
{
	run(RANDOM, true, "random chunks, honouring need");
}

Test(stream, random_chunks_eager, .timeout = 120)
{
	run(RANDOM, false, "random chunks, decoding after every read");
}

/* ---- the shared reassembler (proto/reasm.h) ------------------------------ */

/* How a test hands the reassembler buffers, as its callers do. */
enum bufs {
	EXACT,   /* a fresh buffer of exactly `want` at every NOBUF (the server) */
	ONE_MAX, /* one buffer of a largest frame at the first NOBUF (the bench) */
	REALLOC, /* realloc, setting buf and cap directly (libnet001) */
};

static void run_reasm(enum chunking mode, enum bufs how_bufs, const char *how)
{
	struct stream *s = malloc(sizeof *s);
	cr_assert_not_null(s);
	stream_make(s, test_seed());

	struct frame_reasm ra = FRAME_REASM_INIT;
	uint64_t cr = s->seed ^ 0x5Au;
	size_t fed = 0, got = 0, held = 0, nobufs = 0;

	while (fed < s->n) {
		size_t c = chunk_size(mode, &cr, s->n - fed);
		/* Each chunk in a heap block of its exact size: ASan catches a
		 * read past it. */
		uint8_t *chunk = malloc(c);
		cr_assert_not_null(chunk);
		memcpy(chunk, s->bytes + fed, c);
		const uint8_t *p = chunk;
		size_t n = c;

		for (;;) {
			struct frame_view f;
			int rc = frame_reasm_next(&ra, NULL, &p, &n, &f);
			if (rc == FRAME_NEED_MORE) {
				cr_assert_eq(n, 0u, "%s: NEED_MORE with bytes left", how);
				break;
			}
			if (rc == FRAME_REASM_NOBUF) {
				nobufs++;
				cr_assert_gt(ra.want, ra.cap, "%s: NOBUF with room", how);
				cr_assert_leq(ra.want, FRAME_MAX_SIZE, "%s: want %u", how, ra.want);
				if (how_bufs == REALLOC) {
					uint8_t *b = realloc(ra.buf, ra.want);
					cr_assert_not_null(b);
					ra.buf = b;
					ra.cap = ra.want;
				} else {
					uint32_t cap = how_bufs == EXACT ? ra.want : FRAME_MAX_SIZE;
					uint8_t *b = malloc(cap);
					cr_assert_not_null(b);
					free(frame_reasm_move(&ra, b, cap));
				}
				continue;
			}
			cr_assert_lt(got, STREAM_FRAMES, "%s, seed %#llx: too many frames",
			             how, (unsigned long long)s->seed);
			check_frame(s, got, &f, rc, how);
			/* In place exactly when the frame lies inside this chunk. */
			size_t off = s->recs[got].off, end = off + (size_t)rc;
			bool inside = off >= fed && end <= fed + c;
			if (inside) {
				cr_assert(f.frame >= chunk && f.frame + rc <= chunk + c,
				          "%s, seed %#llx: frame %zu copied, not in place", how,
				          (unsigned long long)s->seed, got);
			} else {
				cr_assert(frame_reasm_held(&ra, &f),
				          "%s, seed %#llx: frame %zu straddles but is not held",
				          how, (unsigned long long)s->seed, got);
				held++;
			}
			cr_assert_eq(ra.len, 0u, "%s: a frame out, nothing left held", how);
			got++;
		}
		free(chunk);
		fed += c;
	}
	cr_assert_eq(got, STREAM_FRAMES, "%s, seed %#llx: %zu frames", how,
	             (unsigned long long)s->seed, got);
	cr_assert_eq(ra.len, 0u, "%s: bytes left over", how);
	if (mode == WHOLE)
		cr_assert_eq(held + nobufs, 0u, "%s: one chunk, nothing copied", how);
	else if (how_bufs == ONE_MAX)
		cr_assert_leq(nobufs, 1u, "%s: one buffer was enough", how);
	free(ra.buf);
	free(s->bytes);
	free(s);
}

Test(stream, reasm_whole, .timeout = 120)
{
	run_reasm(WHOLE, EXACT, "reasm, whole");
}

Test(stream, reasm_one_byte_exact_buffers, .timeout = 120)
{
	run_reasm(ONE_BYTE, EXACT, "reasm, one byte, exact buffers");
}

Test(stream, reasm_random_exact_buffers, .timeout = 120)
{
	run_reasm(RANDOM, EXACT, "reasm, random chunks, exact buffers");
}

Test(stream, reasm_random_one_buffer, .timeout = 120)
{
	run_reasm(RANDOM, ONE_MAX, "reasm, random chunks, one largest buffer");
}

Test(stream, reasm_random_realloc, .timeout = 120)
{
	run_reasm(RANDOM, REALLOC, "reasm, random chunks, realloc");
}

Test(stream, seed_reproduces)
{
	/* The same seed gives the same stream: a printed seed is enough to
	 * replay a failure. */
	struct stream *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	cr_assert(a && b);
	stream_make(a, 42);
	stream_make(b, 42);
	cr_assert_eq(a->n, b->n);
	cr_assert_eq(memcmp(a->bytes, b->bytes, a->n), 0);
	cr_assert_geq(a->n, STREAM_FRAMES * (size_t)FRAME_OVERHEAD + 65535);
	free(a->bytes);
	free(b->bytes);
	free(a);
	free(b);
}
