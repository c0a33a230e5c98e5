/*
 * rbuf.h - reference-counted byte buffers of a worker: a reassembled
 * request (then possibly its own reply), or one broadcast frame shared by
 * the cores that deliver it.
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
 * its own reply), or one broadcast frame shared by many sends.
 *
 * refs counts holders on one core and is touched by that core only. A
 * broadcast frame that crosses cores is "shared": xrefs counts the cores
 * still holding it (atomic, one decrement per core, never per delivery).
 * Other cores hold it through a proxy, a local rbuf whose shared field
 * points at it. The core whose refs reach zero drops its xref; the last
 * xref returns the buffer to its origin core's pool (through the queue
 * back to that core when another core let go last).
 */
struct rbuf {
	uint32_t refs;          /* holders on the current core */
	uint32_t len;           /* bytes used */
	uint32_t cap;           /* bytes in data[] */
	uint8_t cls;            /* pool class in struct worker */
	uint8_t pad_;
	uint16_t origin;        /* core whose pool it belongs to (< 1024) */
	_Atomic uint32_t xrefs; /* cores holding a shared buffer; 0 = core-local */
	struct rbuf *shared;    /* proxy: the shared buffer it stands for */
	uint8_t data[];
};

enum { RBUF_SMALL, RBUF_MID, RBUF_LARGE, RBUF_PROXY, RBUF_CLASSES };

static inline const uint8_t *rbuf_data(const struct rbuf *b)
{
	return b->shared ? b->shared->data : b->data;
}
#define RBUF_SMALL_CAP 512u
#define RBUF_MID_CAP   4096u

struct rbuf *rbuf_get(struct worker *co, uint32_t size);
/* A local stand-in for a shared buffer from another core (refs 1). */
struct rbuf *rbuf_proxy(struct worker *co, struct rbuf *shared);
static inline void rbuf_hold(struct rbuf *b) { b->refs++; }
void rbuf_put(struct worker *co, struct rbuf *b);

#endif
