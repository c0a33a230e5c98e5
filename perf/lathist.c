/*
 * lathist.c - log-linear latency histogram. See lathist.h.
 */
#include "perf/lathist.h"

#include <math.h>

unsigned lathist_bucket(uint64_t v)
{
	if (v < LATHIST_SUB)
		return (unsigned)v;
	/* k = index of the top bit, >= LATHIST_SUB_BITS here; the next
	 * LATHIST_SUB_BITS bits below it pick the linear sub-bucket. */
	unsigned k = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = k - LATHIST_SUB_BITS;
	unsigned sub = (unsigned)(v >> shift) & (LATHIST_SUB - 1);
	return (shift + 1) * LATHIST_SUB + sub;
}

uint64_t lathist_bucket_low(unsigned b)
{
	if (b < LATHIST_SUB)
		return b;
	unsigned shift = b / LATHIST_SUB - 1;
	uint64_t sub = b % LATHIST_SUB;
	return (LATHIST_SUB + sub) << shift;
}

uint64_t lathist_bucket_high(unsigned b)
{
	if (b < LATHIST_SUB)
		return b;
	unsigned shift = b / LATHIST_SUB - 1;
	return lathist_bucket_low(b) + ((uint64_t)1 << shift) - 1;
}

void lathist_merge(struct lathist *dst, const struct lathist *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	for (unsigned i = 0; i < LATHIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
}

uint64_t lathist_quantile(const struct lathist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	uint64_t rank = (uint64_t)ceil(q * (double)h->count);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < LATHIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = lathist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}
