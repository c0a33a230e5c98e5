/*
 * pbufring.h - a provided-buffer ring for the perf tools (bench, baselines).
 *
 * Debian's liburing 2.3 has no io_uring_setup_buf_ring(), so this maps the
 * ring with mmap, registers it with io_uring_register_buf_ring() and carves
 * one contiguous block of memory into equal buffers.
 *
 * Thread: one ring, one owner. Only the thread that owns the io_uring may
 * call these functions for a given struct pbufring.
 *
 * Buffer ownership: the kernel owns a buffer from the moment it is in the
 * ring until it completes a recv into it; then the caller owns it (the
 * pointer from pbufring_buf() is valid) until it hands the id back with
 * pbufring_put() + pbufring_publish(). All buffers live until
 * pbufring_free().
 */
#ifndef NET001_PBUFRING_H
#define NET001_PBUFRING_H

#include <liburing.h>
#include <stdint.h>

struct pbufring {
	struct io_uring_buf_ring *br; /* mmap-ed, shared with the kernel */
	uint8_t *mem;                 /* count * size bytes of buffers */
	uint32_t count;               /* power of two, at most 32768 */
	uint32_t size;                /* bytes per buffer */
	uint32_t pending;             /* puts not yet published */
	uint16_t bgid;
	int mask;
};

/*
 * Register a ring of count buffers of size bytes as buffer group bgid on
 * ring and hand every buffer to the kernel. Returns 0 or -errno
 * (-EINVAL for a count that is not a power of two in [1, 32768]).
 */
int pbufring_init(struct pbufring *p, struct io_uring *ring, uint16_t bgid,
                  uint32_t count, uint32_t size);

/*
 * Unregister (unless ring is NULL: exiting the ring already dropped the
 * registration) and unmap. p may be zero-filled (nothing was set up).
 * Call it after io_uring_queue_exit() with ring NULL when requests may
 * still be in flight, so the kernel cannot write into unmapped memory.
 */
void pbufring_free(struct pbufring *p, struct io_uring *ring);

/* The buffer with id bid (from cqe->flags >> IORING_CQE_BUFFER_SHIFT). */
static inline uint8_t *pbufring_buf(const struct pbufring *p, uint16_t bid)
{
	return p->mem + (size_t)bid * p->size;
}

/* Queue buffer bid for return to the kernel; visible after publish. */
static inline void pbufring_put(struct pbufring *p, uint16_t bid)
{
	io_uring_buf_ring_add(p->br, pbufring_buf(p, bid), p->size, bid,
	                      p->mask, (int)p->pending);
	p->pending++;
}

/* Make every queued buffer visible to the kernel (one release store). */
static inline void pbufring_publish(struct pbufring *p)
{
	if (p->pending) {
		io_uring_buf_ring_advance(p->br, (int)p->pending);
		p->pending = 0;
	}
}

#endif
