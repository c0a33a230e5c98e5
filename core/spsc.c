/*
 * spsc.c - set-up and tear-down of the SPSC queue; the data path is inline
 * in spsc.h.
 */
#include "core/spsc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int spsc_init(struct spsc *q, uint32_t capacity)
{
	uint32_t cap = 1;

	memset(q, 0, sizeof *q);
	if (capacity == 0 || capacity > SPSC_MAX_CAPACITY)
		return -EINVAL;
	while (cap < capacity)
		cap <<= 1;

	/* Whole cache lines, so the slot array shares no line with a
	 * neighbouring allocation that some other thread writes. */
	size_t bytes = (size_t)cap * sizeof(void *);
	bytes = (bytes + SPSC_CACHE_LINE - 1) & ~(size_t)(SPSC_CACHE_LINE - 1);
	q->slots = aligned_alloc(SPSC_CACHE_LINE, bytes);
	if (!q->slots)
		return -ENOMEM;
	memset(q->slots, 0, bytes);
	q->mask = cap - 1;
	atomic_init(&q->tail, 0);
	atomic_init(&q->head, 0);
	q->head_cache = 0;
	q->tail_cache = 0;
	return 0;
}

void spsc_destroy(struct spsc *q)
{
	free(q->slots);
	q->slots = NULL;
	q->mask = 0;
}
