/*
 * rbuf.c - see rbuf.h. Buffers come from the worker's pools, one per size
 * class; a shared broadcast frame's last holder on a core drops that
 * core's cross-core reference (net/broadcast.c).
 */
#include <stdatomic.h>

#include "net/broadcast.h"
#include "net/rbuf.h"
#include "net/worker.h"

static struct rbuf *rbuf_new(struct worker *co, unsigned cls)
{
	struct rbuf *b = pool_get(&co->rbuf_pool[cls]);
	if (!b)
		return NULL;
	b->refs = 1;
	b->len = 0;
	b->cap = (uint32_t)(co->rbuf_pool[cls].size - sizeof *b);
	b->cls = (uint8_t)cls;
	b->origin = (uint16_t)co->id;
	atomic_init(&b->xrefs, 0);
	b->shared = NULL;
	return b;
}

struct rbuf *rbuf_get(struct worker *co, uint32_t size)
{
	if (size > FRAME_MAX_SIZE)
		return NULL;
	return rbuf_new(co, size <= RBUF_SMALL_CAP ? RBUF_SMALL
	                  : size <= RBUF_MID_CAP ? RBUF_MID : RBUF_LARGE);
}

struct rbuf *rbuf_proxy(struct worker *co, struct rbuf *shared)
{
	struct rbuf *p = rbuf_new(co, RBUF_PROXY);
	if (p) {
		p->shared = shared;
		p->len = shared->len;
	}
	return p;
}

void rbuf_put(struct worker *co, struct rbuf *b)
{
	if (--b->refs)
		return;
	if (b->shared) {
		struct rbuf *s = b->shared;
		pool_put(&co->rbuf_pool[RBUF_PROXY], b);
		bcast_xrelease(co, s);
	} else if (atomic_load_explicit(&b->xrefs, memory_order_relaxed)) {
		bcast_xrelease(co, b); /* other cores may still hold it */
	} else {
		pool_put(&co->rbuf_pool[b->cls], b);
	}
}

