/*
 * bufring.h - a core's provided-buffer ring (IORING_REGISTER_PBUF_RING).
 *
 * Owned by one thread, the one that owns the io_uring (a core's, or the
 * loop of a perf tool: net001-bench, baseline-uring); nothing here is
 * thread-safe.
 *
 * Ownership of a buffer, one sentence per hand-off: the kernel owns a
 * buffer while it sits in the ring; a recv completion naming it (bid in
 * cqe->flags) hands it to the core; the core owns it until bufring_put()
 * queues it for return, and bufring_flush() makes the returns visible to
 * the kernel (once per loop iteration, one release store).
 *
 * liburing 2.3 has no io_uring_setup_buf_ring(), so the ring memory is
 * mmap()ed and registered here.
 */
#ifndef NET001_BUFRING_H
#define NET001_BUFRING_H

#include <liburing.h>
#include <stdint.h>

struct bufring {
	struct io_uring_buf_ring *ring; /* shared with the kernel */
	uint8_t *base;                  /* count * size bytes of buffers */
	uint32_t size;                  /* bytes per buffer */
	uint32_t count;                 /* buffers (power of two) */
	uint32_t mask;
	uint32_t out;                   /* handed to the core, not yet put back */
	uint16_t pending;               /* put back, not yet flushed */
	uint16_t bgid;
};

/* Allocate, fill and register. Returns 0 or -errno. */
int bufring_init(struct bufring *br, struct io_uring *ring, uint16_t bgid,
                 uint32_t count, uint32_t size);

/*
 * Unregister from ring and unmap; br may be zero-filled (never set up).
 * With ring NULL the registration is not touched: for a caller that has
 * already exited its ring, which is how to unmap safely while requests
 * may still have been in flight (exiting cancels them first).
 */
void bufring_destroy(struct bufring *br, struct io_uring *ring);

static inline uint8_t *bufring_addr(const struct bufring *br, uint16_t bid)
{
	return br->base + (size_t)bid * br->size;
}

/* A recv completion handed buffer bid to the core. */
static inline void bufring_took(struct bufring *br)
{
	br->out++;
}

/* Queue bid for return to the kernel. */
static inline void bufring_put(struct bufring *br, uint16_t bid)
{
	io_uring_buf_ring_add(br->ring, bufring_addr(br, bid), br->size, bid,
	                      (int)br->mask, br->pending);
	br->pending++;
	br->out--;
}

/* Publish queued returns. Returns how many were published. */
static inline uint32_t bufring_flush(struct bufring *br)
{
	uint32_t n = br->pending;
	if (n) {
		io_uring_buf_ring_advance(br->ring, (int)n);
		br->pending = 0;
	}
	return n;
}

/* Buffers the kernel can fill right now (after a flush). */
static inline uint32_t bufring_free(const struct bufring *br)
{
	return br->count - br->out;
}

#endif
