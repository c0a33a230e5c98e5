/*
 * blog.h - a worker's broadcast log: every BROADCAST frame the worker has
 * to deliver, once, in arrival order, in a ring of bytes that every
 * receiver reads from with a cursor of its own.
 *
 *   log positions (bytes ever appended, never wrapping)
 *
 *   tail              receiver cursors                           head
 *    |  frame  | frame | frame | frame | frame | frame | frame |  |
 *    ^ the slowest cursor (or a send in flight) pins from here    ^ next append
 *
 * Accepting a broadcast costs one copy into the log, whatever the number
 * of receivers; a receiver's send gathers everything between its cursor
 * and the head (any number of broadcasts) into one sendmsg. The ring is
 * mapped twice, back to back, so any range of up to cap bytes is one
 * contiguous run of memory: one iovec.
 *
 * Frames are numbered (ordinals) in the order appended; for each, meta[]
 * says which local connection sent it (slot + 1, 0 for another core,
 * BLOG_ORIGIN_REMOTE for another server), so a sender's cursor can pass
 * over its own broadcasts, where it starts (the low 32 bits of its
 * position), so a send's completion finds the frame its last byte fell
 * in by a binary search instead of walking every frame it carried, and
 * when it came (the owner's clock_us, for the fan-out latency).
 *
 * Owned by its worker thread. Nothing in it is freed per frame; memory is
 * cap bytes plus 12 bytes of meta for each frame the ring could hold (one
 * per FRAME_OVERHEAD bytes, rounded up to a power of two: 1 to 2 times
 * cap), allocated at start and touched as frames come.
 */
#ifndef NET001_NET_BLOG_H
#define NET001_NET_BLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/frame.h"

struct blog {
	uint8_t *base;       /* cap bytes, mapped twice back to back */
	uint64_t cap;        /* a power of two, >= 2 * FRAME_MAX_SIZE */
	uint64_t head;       /* bytes ever appended: the next frame's position */
	uint64_t tail;       /* no cursor is before it (as of the last scan) */
	uint64_t nframes;    /* frames ever appended: the next frame's ordinal */
	struct blog_meta {
		uint32_t origin; /* see blog_origin() */
		uint32_t start;  /* its position, modulo 2^32 */
		uint32_t t_us;   /* clock_us when it was appended */
	} *meta;             /* [ocap]: frame n at n & (ocap - 1) */
	uint64_t ocap;       /* a power of two >= frames the ring can hold */
	uint32_t clock_us;   /* the owner's clock in microseconds (mod 2^32),
	                        set once per loop turn */
};

/* Map a log of cap bytes (rounded up to a power of two). 0 or -errno. */
int blog_init(struct blog *l, uint64_t cap);
void blog_destroy(struct blog *l);

static inline uint8_t *blog_at(const struct blog *l, uint64_t pos)
{
	return l->base + (pos & (l->cap - 1));
}

/* Bytes that can be appended without overwriting anything at or after
 * tail. */
static inline uint64_t blog_room(const struct blog *l)
{
	return l->cap - (l->head - l->tail);
}

/* Size of the whole frame that starts at pos. */
static inline uint32_t blog_frame_size(const struct blog *l, uint64_t pos)
{
	return FRAME_OVERHEAD + frame_get_u16(blog_at(l, pos) + 6);
}

/* The origin of a broadcast from another server (--cluster). */
#define BLOG_ORIGIN_REMOTE UINT32_MAX

/* Sender of frame n: slot + 1, 0 for another core's (or a sender gone),
 * BLOG_ORIGIN_REMOTE for another server's. */
static inline uint32_t blog_origin(const struct blog *l, uint64_t n)
{
	return l->meta[n & (l->ocap - 1)].origin;
}

/* Microseconds since frame n was appended (mod 2^32: up to 71 minutes). */
static inline uint32_t blog_age_us(const struct blog *l, uint64_t n)
{
	return l->clock_us - l->meta[n & (l->ocap - 1)].t_us;
}

/* Position of frame n, from near, the position of a frame at or before
 * it still in the ring (positions of frames in the ring are less than
 * cap <= 2^30 apart, so 32 bits of them place one from another). */
static inline uint64_t blog_start(const struct blog *l, uint64_t n, uint64_t near)
{
	return near + (uint32_t)(l->meta[n & (l->ocap - 1)].start - (uint32_t)near);
}

/* The frame position p falls in (the last one starting at or before it),
 * for fpos <= p < head, fpos the start of frame fno. */
static inline uint64_t blog_frame_of(const struct blog *l, uint64_t fno, uint64_t fpos,
                                     uint64_t p)
{
	/* start(lo) <= p < start(hi), the frame after the last at head. */
	uint64_t lo = fno, hi = l->nframes;
	uint32_t d = (uint32_t)(p - fpos);
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if ((uint32_t)(l->meta[mid & (l->ocap - 1)].start - (uint32_t)fpos) <= d)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Append one whole frame (the caller checked blog_room). Returns its
 * position. */
static inline uint64_t blog_append(struct blog *l, const uint8_t *frame, uint32_t size,
                                   uint32_t origin)
{
	uint64_t pos = l->head;
	memcpy(blog_at(l, pos), frame, size);
	struct blog_meta *m = &l->meta[l->nframes & (l->ocap - 1)];
	m->origin = origin;
	m->start = (uint32_t)pos;
	m->t_us = l->clock_us;
	l->nframes++;
	l->head += size;
	return pos;
}

#endif
