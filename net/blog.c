/*
 * blog.c - see blog.h. The ring is a memfd mapped twice into a reserved
 * range of 2 * cap bytes, so blog_at(pos) has cap contiguous bytes behind
 * it whatever pos is.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "net/blog.h"

int blog_init(struct blog *l, uint64_t cap)
{
	uint64_t c = 4096; /* a power of two, so a whole number of pages */
	while (c < cap || c < 2 * FRAME_MAX_SIZE)
		c *= 2;
	/* The largest log can hold one frame per FRAME_OVERHEAD bytes. */
	uint64_t oc = 1;
	while (oc < c / FRAME_OVERHEAD)
		oc *= 2;

	memset(l, 0, sizeof *l);
	int fd = memfd_create("net001-broadcast-log", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = 0;
	uint8_t *base = MAP_FAILED;
	if (ftruncate(fd, (off_t)c) < 0) {
		r = -errno;
		goto out;
	}
	base = mmap(NULL, 2 * c, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED ||
	    mmap(base, c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(base + c, c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	l->meta = calloc(oc, sizeof *l->meta);
	if (!l->meta) {
		r = -ENOMEM;
		goto out;
	}
	l->base = base;
	l->cap = c;
	l->ocap = oc;
	base = MAP_FAILED;
out:
	if (base != MAP_FAILED)
		munmap(base, 2 * c);
	close(fd);
	return r;
}

void blog_destroy(struct blog *l)
{
	if (l->base)
		munmap(l->base, 2 * l->cap);
	free(l->meta);
	memset(l, 0, sizeof *l);
}

