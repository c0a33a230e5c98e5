/*
 * rbuf.h - reference-counted byte buffers of a worker: a reassembled
 * request (then possibly its own reply), or one broadcast frame shared by
 * the workers that deliver it.
 *
 * Owned by one worker thread; a shared broadcast frame is handed between
 * cores as the comment on struct rbuf says. rbuf_get() hands out a buffer
 * with one reference; whoever drops the last one with rbuf_put() gives it
 * back to its pool.
 */
#ifndef NET001_NET_RBUF_H
#define NET001_NET_RBUF_H

#include <stdatomic.h>
#include <stdint.h>

struct worker;

/*
 * A reference-counted byte buffer: a reassembled request (then possibly
 * its own reply), or one broadcast frame on its way to other workers'
 * logs, or waiting for room in this worker's log.
 *
 * refs counts holders on one worker and is touched by that worker only. A
 * broadcast frame that crosses workers is "shared": xrefs counts the
 * workers still holding it (atomic, one decrement per worker, never per
 * delivery). The worker whose refs reach zero drops its xref; the last
 * xref returns the buffer to its origin worker's pool (through the queue
 * back to that worker when another let go last).
 */
struct rbuf {
	uint32_t refs;          /* holders on the current worker */
	uint32_t len;           /* bytes used */
	uint32_t cap;           /* bytes in data[] */
	uint8_t cls;            /* pool class in struct worker */
	uint8_t pad_;
	uint16_t origin;        /* worker whose pool it belongs to (< 1024) */
	_Atomic uint32_t xrefs; /* workers holding a shared buffer; 0 = local */
	uint32_t origin_slot;   /* a broadcast waiting for the log: its sender */
	uint32_t origin_gen;
	uint8_t data[];
};

enum { RBUF_SMALL, RBUF_MID, RBUF_LARGE, RBUF_CLASSES };

static inline const uint8_t *rbuf_data(const struct rbuf *b)
{
	return b->data;
}
#define RBUF_SMALL_CAP 512u
#define RBUF_MID_CAP   4096u

struct rbuf *rbuf_get(struct worker *co, uint32_t size);
static inline void rbuf_hold(struct rbuf *b) { b->refs++; }
void rbuf_put(struct worker *co, struct rbuf *b);

#endif
