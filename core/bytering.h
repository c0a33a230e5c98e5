/*
 * bytering.h - a bounded lock-free single-producer single-consumer ring of
 * byte records (whole frames), with the wake-up rule of core/spsc.h.
 *
 * Used between a worker and the cluster bridge (net/cluster.h): one ring
 * per worker and direction. The producer copies a record in (or reserves
 * room and writes it in place); the consumer reads it where it lies and
 * releases it when done, so a record is copied once on each side at most.
 *
 *   positions: bytes ever written, 64-bit, never wrapping
 *
 *   head (consumer)                    tail (producer)
 *    | hdr rec | hdr rec | pad ... |    |        free        |
 *
 * A record is an 8-byte header (its length; BYTERING_PAD marks the unused
 * end of the buffer when a record did not fit before it) and its bytes,
 * rounded up to 8. A record never wraps: it is one contiguous run. A full
 * ring refuses the record (nothing written): the producer decides what to
 * do (a worker drops and counts; it never waits).
 *
 * Layout (64-byte lines, so the two sides never write the same line):
 *
 *   line 0  tail, head_cache, drops   written by the producer only
 *   line 1  head, tail_cache          written by the consumer only
 *   line 2  buf, cap                  set by bytering_init, then read-only
 *
 * Wake-up protocol: as core/spsc.h (a Dekker handshake on tail and head
 * with seq_cst fences). The consumer sleeps only after bytering_idle()
 * returned true; the producer wakes it when a commit reported *was_empty.
 *
 * Threads: producer calls (reserve, commit, push, drop) from one thread,
 * consumer calls (peek, release, idle) from one other thread; used() and
 * drops() from any thread.
 */
#ifndef NET001_CORE_BYTERING_H
#define NET001_CORE_BYTERING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BYTERING_LINE 64
#define BYTERING_HDR  8u
#define BYTERING_PAD  UINT32_MAX
/* Largest buffer: records' lengths are 32-bit. */
#define BYTERING_MAX_CAP (UINT64_C(1) << 31)

struct bytering {
	/* Producer's line. */
	_Alignas(BYTERING_LINE) _Atomic uint64_t tail;
	uint64_t head_cache;
	_Atomic uint64_t drops;     /* records the producer gave up on (its count) */
	uint64_t pend;              /* reserved, not yet committed: its size */

	/* Consumer's line. */
	_Alignas(BYTERING_LINE) _Atomic uint64_t head;
	uint64_t tail_cache;

	/* Read-only after init. */
	_Alignas(BYTERING_LINE) uint8_t *buf;
	uint64_t cap;               /* a power of two */
};

/*
 * A ring of cap bytes (rounded up to a power of two, at least 4 KiB) that
 * takes records of up to max_record bytes: cap is raised to 2 * (max_record
 * + header) if below, so such a record always fits once the ring drains.
 * Returns 0, -EINVAL (too big) or -ENOMEM.
 */
int bytering_init(struct bytering *r, uint64_t cap, uint32_t max_record);
/* Frees the buffer. Safe on a zeroed or destroyed ring. */
void bytering_destroy(struct bytering *r);

static inline uint64_t bytering_rec_size(uint32_t len)
{
	return BYTERING_HDR + (((uint64_t)len + 7) & ~(uint64_t)7);
}

/*
 * Producer: room for a record of len bytes, to be written at the pointer
 * returned and then published by bytering_commit(); NULL if the ring is
 * full (nothing changes). At most one reservation at a time.
 */
static inline uint8_t *bytering_reserve(struct bytering *r, uint32_t len)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t size = bytering_rec_size(len);
	uint64_t off = t & (r->cap - 1);
	uint64_t pad = off + size > r->cap ? r->cap - off : 0;

	if (t + pad + size - r->head_cache > r->cap) {
		/* Acquire: the consumer's reads of what it released happen
		 * before we overwrite it. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t + pad + size - r->head_cache > r->cap)
			return NULL;
	}
	if (pad) {
		/* The rest of the buffer cannot hold the record: mark it
		 * unused (there is always room for a header: records are
		 * multiples of 8) and start again at the beginning. */
		uint32_t mark = BYTERING_PAD;
		memcpy(r->buf + off, &mark, sizeof mark);
		off = 0;
	}
	uint32_t n = len;
	memcpy(r->buf + off, &n, sizeof n);
	r->pend = pad + size;
	return r->buf + off + BYTERING_HDR;
}

/*
 * Producer: publish the reserved record. *was_empty says whether the
 * consumer may have seen the ring empty and gone to sleep: wake it then.
 */
static inline void bytering_commit(struct bytering *r, bool *was_empty)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	atomic_store_explicit(&r->tail, t + r->pend, memory_order_release);
	r->pend = 0;
	/* Dekker: the tail store before the head load, against the
	 * consumer's head store / fence / tail load. */
	atomic_thread_fence(memory_order_seq_cst);
	r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	*was_empty = r->head_cache == t;
}

/* Producer: copy a record in. false when full (nothing written). */
static inline bool bytering_push(struct bytering *r, const void *p, uint32_t len,
                                 bool *was_empty)
{
	uint8_t *d = bytering_reserve(r, len);
	if (!d)
		return false;
	memcpy(d, p, len);
	bytering_commit(r, was_empty);
	return true;
}

/* Producer: count a record given up (readable by anyone). */
static inline void bytering_drop(struct bytering *r)
{
	atomic_store_explicit(&r->drops,
	                      atomic_load_explicit(&r->drops, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static inline uint64_t bytering_drops(const struct bytering *r)
{
	return atomic_load_explicit(&r->drops, memory_order_relaxed);
}

/*
 * Consumer: the oldest record (its bytes, *len set), left in the ring
 * until bytering_release(); NULL when empty. The consumer may write into
 * the record's bytes until it releases it.
 */
static inline uint8_t *bytering_peek(struct bytering *r, uint32_t *len)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	for (;;) {
		if (h == r->tail_cache) {
			/* Acquire pairs with the producer's release of tail. */
			r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
			if (h == r->tail_cache)
				return NULL;
		}
		uint64_t off = h & (r->cap - 1);
		uint32_t n;
		memcpy(&n, r->buf + off, sizeof n);
		if (n != BYTERING_PAD) {
			*len = n;
			return r->buf + off + BYTERING_HDR;
		}
		/* The padded end: skip to the start (the record after it was
		 * committed with it, so it is there). */
		h += r->cap - off;
		atomic_store_explicit(&r->head, h, memory_order_release);
	}
}

/* Consumer: let the producer reuse the record bytering_peek() returned. */
static inline void bytering_release(struct bytering *r, uint32_t len)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	/* Release: our reads of the record happen before its reuse. */
	atomic_store_explicit(&r->head, h + bytering_rec_size(len), memory_order_release);
}

/*
 * Consumer, before sleeping: true if the ring is empty after a seq_cst
 * fence (any commit not seen here reports *was_empty and wakes us); false
 * if a record arrived.
 */
static inline bool bytering_idle(struct bytering *r)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	return r->tail_cache == h;
}

/* Either side: bytes in use (a snapshot). */
static inline uint64_t bytering_used(const struct bytering *r)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	return t >= h ? t - h : 0;
}

#endif
