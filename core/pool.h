/*
 * pool.h - per-core free lists of fixed-size objects.
 *
 * Owned by one core's thread. Objects come from malloc the first time and
 * are kept on the free list when put back (up to max_free), so a core in
 * steady state allocates nothing. Memory handed out is uninitialised.
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
	uint64_t live;       /* objects handed out and not yet put back */
};

static inline void pool_init(struct pool *p, size_t size, uint32_t max_free)
{
	p->free = NULL;
	p->size = size < sizeof(struct pool_item) ? sizeof(struct pool_item) : size;
	p->nfree = 0;
	p->max_free = max_free;
	p->live = 0;
}

/* NULL only when malloc fails. */
static inline void *pool_get(struct pool *p)
{
	struct pool_item *it = p->free;
	if (it) {
		p->free = it->next;
		p->nfree--;
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
