/*
 * pbufring.c - provided-buffer ring set up by hand. See pbufring.h.
 */
#include "pbufring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int pbufring_init(struct pbufring *p, struct io_uring *ring, uint16_t bgid,
                  uint32_t count, uint32_t size)
{
	int ret;

	memset(p, 0, sizeof *p);
	if (count == 0 || count > 32768 || (count & (count - 1)) || size == 0)
		return -EINVAL;

	/* The ring itself must be page aligned for the kernel to pin it;
	 * mmap gives that, and the buffers go in a second mapping so the
	 * ring stays a small, separately pinned region. */
	size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
	void *br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
	                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED)
		return -errno;
	void *mem = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		ret = -errno;
		goto err_ring;
	}

	struct io_uring_buf_reg reg = {
		.ring_addr = (unsigned long)(uintptr_t)br,
		.ring_entries = count,
		.bgid = bgid,
	};
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret < 0)
		goto err_mem;

	p->br = br;
	p->mem = mem;
	p->count = count;
	p->size = size;
	p->bgid = bgid;
	p->mask = io_uring_buf_ring_mask(count);
	io_uring_buf_ring_init(p->br);
	for (uint32_t i = 0; i < count; i++)
		pbufring_put(p, (uint16_t)i);
	pbufring_publish(p);
	return 0;

err_mem:
	munmap(mem, (size_t)count * size);
err_ring:
	munmap(br, ring_bytes);
	return ret;
}

void pbufring_free(struct pbufring *p, struct io_uring *ring)
{
	if (!p->br)
		return;
	if (ring)
		io_uring_unregister_buf_ring(ring, p->bgid);
	munmap(p->mem, (size_t)p->count * p->size);
	munmap(p->br, (size_t)p->count * sizeof(struct io_uring_buf));
	memset(p, 0, sizeof *p);
}
