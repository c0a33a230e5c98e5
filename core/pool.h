/*
 * pool.h - per-core free lists of fixed-size objects.
 *
 * Owned by one core's thread. Objects come from malloc the first time and
 * are kept on the free list when put back (up to max_free), so a core in
 * steady state allocates nothing. Memory handed out is uninitialised.
 *
 * pool_trim(), called about once a second, frees the objects that sat on
 * the free list the whole time since the last call (the list's low-water
 * mark): after a burst the pool shrinks back to what traffic uses.
 */
#ifndef NET001_POOL_H
#define NET001_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct pool_item {
	struct pool_item *next;
};

struct pool {
	struct pool_item *free;
	size_t size;         /* object size, >= sizeof(struct pool_item) */
	uint32_t nfree;      /* objects on the free list */
	uint32_t max_free;   /* beyond this, put() frees */
	uint32_t low;        /* fewest on the free list since the last trim */
	uint64_t live;       /* objects handed out and not yet put back */
};

static inline void pool_init(struct pool *p, size_t size, uint32_t max_free)
{
	p->free = NULL;
	p->size = size < sizeof(struct pool_item) ? sizeof(struct pool_item) : size;
	p->nfree = 0;
	p->max_free = max_free;
	p->low = 0;
	p->live = 0;
}

/* NULL only when malloc fails. */
static inline void *pool_get(struct pool *p)
{
	struct pool_item *it = p->free;
	if (it) {
		p->free = it->next;
		if (--p->nfree < p->low)
			p->low = p->nfree;
	} else {
		it = malloc(p->size);
		if (!it)
			return NULL;
	}
	p->live++;
	return it;
}

static inline void pool_put(struct pool *p, void *obj)
{
	struct pool_item *it = obj;
	p->live--;
	if (p->nfree >= p->max_free) {
		free(it);
		return;
	}
	it->next = p->free;
	p->free = it;
	p->nfree++;
}

/* Free the objects unused since the last trim; returns how many. */
static inline uint32_t pool_trim(struct pool *p)
{
	uint32_t n = p->low;
	for (uint32_t i = 0; i < n; i++) {
		struct pool_item *it = p->free;
		p->free = it->next;
		free(it);
	}
	p->nfree -= n;
	p->low = p->nfree;
	return n;
}

static inline void pool_destroy(struct pool *p)
{
	while (p->free) {
		struct pool_item *it = p->free;
		p->free = it->next;
		free(it);
	}
	p->nfree = 0;
}

#endif
