/*
 * ratelimit.h - token buckets for the per-connection and per-core limits.
 *
 * A bucket holds one second's worth of tokens and starts full; each frame
 * takes one. Tokens are kept in millionths so low rates refill smoothly.
 * Owned by one core's thread; the caller passes its cached clock.
 */
#ifndef NET001_RATELIMIT_H
#define NET001_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
	uint64_t tokens_u;  /* tokens * 1e6 */
	uint64_t last_ns;   /* clock at the last refill */
};

static inline void bucket_init(struct bucket *b, uint32_t rate, uint64_t now_ns)
{
	b->tokens_u = (uint64_t)rate * 1000000u;
	b->last_ns = now_ns;
}

/* Take one token if there is one. rate 0 means unlimited. */
static inline bool bucket_take(struct bucket *b, uint32_t rate, uint64_t now_ns)
{
	if (rate == 0)
		return true;
	uint64_t cap = (uint64_t)rate * 1000000u;
	if (now_ns > b->last_ns) {
		/* rate tokens a second is rate * 1e6 units per 1e9 ns. */
		uint64_t dt = now_ns - b->last_ns;
		uint64_t add = dt >= 1000000000u ? cap : dt * rate / 1000u;
		b->tokens_u = b->tokens_u + add > cap ? cap : b->tokens_u + add;
		b->last_ns = now_ns;
	}
	if (b->tokens_u < 1000000u)
		return false;
	b->tokens_u -= 1000000u;
	return true;
}

/* Give back a token taken by bucket_take() (the other bucket said no). */
static inline void bucket_refund(struct bucket *b, uint32_t rate)
{
	uint64_t cap = (uint64_t)rate * 1000000u;
	b->tokens_u = b->tokens_u + 1000000u > cap ? cap : b->tokens_u + 1000000u;
}

#endif
