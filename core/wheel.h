/*
 * wheel.h - a per-core timer wheel with one-second slots.
 *
 * Owned by one core's thread. Entries are small integer ids (connection
 * slots) below the capacity given at init; the wheel keeps its links in
 * arrays of its own, so an entry costs 12 bytes and no allocation.
 *
 * The wheel is lazy: an id is checked when its slot comes round, and the
 * callback decides whether it is really due (it may have been active since
 * and re-add itself further out). Due times more than nslots seconds away
 * simply stay in their slot for another turn.
 */
#ifndef NET001_WHEEL_H
#define NET001_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define WHEEL_NONE UINT32_MAX

struct wheel {
	uint32_t *next;     /* per id: next in slot list, WHEEL_NONE at end */
	uint32_t *prev;     /* per id: previous, WHEEL_NONE when first */
	uint32_t *due;      /* per id: due second; WHEEL_NONE when not queued */
	uint32_t *head;     /* per slot: first id */
	uint32_t cap;
	uint32_t mask;      /* nslots - 1 */
	uint32_t now;       /* last second advanced to */
	uint32_t count;     /* ids queued */
};

/* nslots is rounded up to a power of two. Returns 0 or -ENOMEM. */
int wheel_init(struct wheel *w, uint32_t cap, uint32_t nslots, uint32_t now_s);
void wheel_destroy(struct wheel *w);

static inline bool wheel_queued(const struct wheel *w, uint32_t id)
{
	return w->due[id] != WHEEL_NONE;
}

/* Queue id (re-queue if already queued) to come due at due_s. */
void wheel_add(struct wheel *w, uint32_t id, uint32_t due_s);
/* Remove id if queued. */
void wheel_del(struct wheel *w, uint32_t id);

/*
 * Advance to now_s. Every id whose due time is <= now_s is removed and
 * passed to fn, which may wheel_add() it again. Returns how many fired.
 */
uint32_t wheel_advance(struct wheel *w, uint32_t now_s,
                       void (*fn)(void *ctx, uint32_t id), void *ctx);

#endif
