/*
 * bytering.c - set-up and tear-down of the byte ring; the data path is
 * inline in bytering.h.
 */
#include "core/bytering.h"

#include <errno.h>
#include <stdlib.h>

int bytering_init(struct bytering *r, uint64_t cap, uint32_t max_record)
{
	uint64_t want = 2 * bytering_rec_size(max_record), c = 4096;

	memset(r, 0, sizeof *r);
	if (cap < want)
		cap = want;
	if (cap > BYTERING_MAX_CAP)
		return -EINVAL;
	while (c < cap)
		c <<= 1;
	r->buf = aligned_alloc(BYTERING_LINE, c);
	if (!r->buf)
		return -ENOMEM;
	r->cap = c;
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	atomic_init(&r->drops, 0);
	return 0;
}

void bytering_destroy(struct bytering *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}
