/*
 * spsc.h - bounded lock-free single-producer single-consumer queue of
 * pointers, with a wake-up rule free of lost wake-ups.
 *
 * Used between worker cores: one queue per ordered pair (core A -> core B),
 * A is the only producer, B the only consumer. Threads: spsc_push from the
 * producer thread only; spsc_pop and spsc_consumer_idle from the consumer
 * thread only; spsc_size from either; spsc_init/spsc_destroy while neither
 * side is using the queue.
 *
 * Ownership: the queue stores pointers and never dereferences them. A
 * pushed item belongs to the queue until spsc_pop returns it to the
 * consumer; items still queued at spsc_destroy are the caller's to drain
 * (spsc_pop works until destroy). Items must not be NULL (NULL means
 * "empty" from spsc_pop).
 *
 * Layout (64-byte lines, so the two sides never write the same line):
 *
 *   line 0  tail, head_cache     written by the producer only
 *   line 1  head, tail_cache     written by the consumer only
 *   line 2  slots, mask          written by spsc_init only, then read-only
 *
 * tail and head are free-running 32-bit counters (they wrap); the slot of
 * counter i is slots[i & mask]; tail - head is the number of queued items.
 *
 * Wake-up protocol. The consumer sleeps (eventfd read, io_uring wait...)
 * only after spsc_consumer_idle() returned true; the producer wakes it only
 * when spsc_push reported *was_empty. The two sides run a Dekker handshake
 * on (tail, head):
 *
 *   producer (push)                    consumer (pop ... idle)
 *   slots[t] = item                    head = h          (in pop, release)
 *   tail = t + 1   (release)           ...
 *   fence(seq_cst)                     fence(seq_cst)
 *   h' = head                          t' = tail
 *   was_empty = (h' == t)              idle = (t' == h)
 *
 * The fences are totally ordered. If the producer's fence comes first, the
 * consumer's load of tail sees t + 1, so spsc_consumer_idle returns false
 * and the consumer pops the item instead of sleeping. If the consumer's
 * fence comes first, the producer's load of head sees the consumer's last
 * head store (or a later one): if that head is t the consumer had caught
 * up, may have decided to sleep, and was_empty is true, so the producer
 * wakes it. If head is still below t, the consumer has not yet consumed
 * item t - 1, so it has not yet run the idle check that would put it to
 * sleep; when it does, that check is ordered after the producer's fence
 * and sees t + 1. Either way the item is never stranded behind a sleeping
 * consumer. (head above t means the consumer already took the new item.)
 * Hence exactly one wake per empty -> non-empty transition, plus a rare
 * harmless one when the consumer happens to be exactly caught up while
 * awake; the wake must be counted (eventfd, MSG_RING CQE), not a flag a
 * sleeper can miss.
 */
#ifndef NET001_SPSC_H
#define NET001_SPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPSC_CACHE_LINE 64
/* Largest capacity: counters are 32-bit, so tail - head must stay below 2^31. */
#define SPSC_MAX_CAPACITY (UINT32_C(1) << 30)

struct spsc {
	/* Producer's line. */
	_Alignas(SPSC_CACHE_LINE) _Atomic uint32_t tail; /* writer: producer; next slot to fill */
	uint32_t head_cache;    /* writer: producer, private; head as last read */

	/* Consumer's line. */
	_Alignas(SPSC_CACHE_LINE) _Atomic uint32_t head; /* writer: consumer; next slot to take */
	uint32_t tail_cache;    /* writer: consumer, private; tail as last read */

	/* Set by spsc_init, read-only afterwards. */
	_Alignas(SPSC_CACHE_LINE) void **slots;
	uint32_t mask;          /* capacity - 1 */
};

/*
 * Capacity is rounded up to a power of two (1 stays 1). Returns 0,
 * -EINVAL for 0 or above SPSC_MAX_CAPACITY, or -ENOMEM.
 */
int spsc_init(struct spsc *q, uint32_t capacity);
/* Frees the slot array (not the items). Safe on a zeroed or destroyed queue. */
void spsc_destroy(struct spsc *q);

static inline uint32_t spsc_capacity(const struct spsc *q)
{
	return q->mask + 1;
}

/*
 * Producer only. Returns false when full (nothing written, *was_empty
 * untouched). When it returns true, *was_empty says whether the consumer
 * may have seen the queue empty and gone to sleep: the producer must then
 * wake it. See the protocol above.
 */
static inline bool spsc_push(struct spsc *q, void *item, bool *was_empty)
{
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);

	if (t - q->head_cache > q->mask) {
		/* Acquire: the consumer's reads of the slots it freed
		 * happen before we overwrite them. */
		q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
		if (t - q->head_cache > q->mask)
			return false;
	}
	q->slots[t & q->mask] = item;
	atomic_store_explicit(&q->tail, t + 1, memory_order_release);

	/* Dekker: order the tail store above before the head load below,
	 * against the consumer's head store / fence / tail load. */
	atomic_thread_fence(memory_order_seq_cst);
	q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
	*was_empty = q->head_cache == t;
	return true;
}

/* Consumer only. Returns the oldest item, or NULL when empty. */
static inline void *spsc_pop(struct spsc *q)
{
	uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);

	if (h == q->tail_cache) {
		/* Acquire pairs with the producer's release of tail: the
		 * slot contents are visible once the index is. */
		q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
		if (h == q->tail_cache)
			return NULL;
	}
	void *item = q->slots[h & q->mask];
	/* Release: our read of the slot happens before the producer
	 * reuses it. */
	atomic_store_explicit(&q->head, h + 1, memory_order_release);
	return item;
}

/*
 * Consumer only, before sleeping. Returns true if the queue is empty after
 * a seq_cst fence, so any push not seen here will report *was_empty and
 * wake us; false if an item arrived (pop it instead of sleeping).
 */
static inline bool spsc_consumer_idle(struct spsc *q)
{
	uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);

	/* Dekker: order our last head store (in spsc_pop) before the tail
	 * load below, against the producer's tail store / fence / head load. */
	atomic_thread_fence(memory_order_seq_cst);
	/* Acquire: spsc_pop may use tail_cache without reloading. */
	q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
	return q->tail_cache == h;
}

/* Either side; a snapshot that may be stale by the time it returns. */
static inline uint32_t spsc_size(const struct spsc *q)
{
	/* head first: it only grows toward tail, so a later tail cannot be
	 * below it; clamp because head may have been overtaken meanwhile. */
	uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
	uint32_t n = t - h;

	return n > q->mask + 1 ? q->mask + 1 : n;
}

#endif
