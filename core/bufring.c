/*
 * bufring.c - see bufring.h.
 */
#include "core/bufring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int bufring_init(struct bufring *br, struct io_uring *ring, uint16_t bgid,
                 uint32_t count, uint32_t size)
{
	memset(br, 0, sizeof *br);
	if (count == 0 || (count & (count - 1)) || count > 32768)
		return -EINVAL;

	size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
	void *r = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return -errno;

	/* The buffers themselves: anonymous memory, touched only as the
	 * kernel fills them, so an idle server stays small. */
	size_t buf_bytes = (size_t)count * size;
	void *b = mmap(NULL, buf_bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED) {
		int err = -errno;
		munmap(r, ring_bytes);
		return err;
	}

	br->ring = r;
	br->base = b;
	br->size = size;
	br->count = count;
	br->mask = count - 1;
	br->bgid = bgid;
	io_uring_buf_ring_init(br->ring);

	struct io_uring_buf_reg reg = {
		.ring_addr = (uint64_t)(uintptr_t)r,
		.ring_entries = count,
		.bgid = bgid,
	};
	int ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret < 0) {
		munmap(b, buf_bytes);
		munmap(r, ring_bytes);
		memset(br, 0, sizeof *br);
		return ret;
	}

	for (uint32_t i = 0; i < count; i++)
		io_uring_buf_ring_add(br->ring, bufring_addr(br, (uint16_t)i), size,
		                      (uint16_t)i, (int)br->mask, (int)i);
	io_uring_buf_ring_advance(br->ring, (int)count);
	return 0;
}

void bufring_destroy(struct bufring *br, struct io_uring *ring)
{
	if (!br->ring)
		return;
	if (ring)
		io_uring_unregister_buf_ring(ring, br->bgid);
	munmap(br->base, (size_t)br->count * br->size);
	munmap(br->ring, (size_t)br->count * sizeof(struct io_uring_buf));
	memset(br, 0, sizeof *br);
}
