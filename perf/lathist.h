/*
 * lathist.h - log-linear latency histogram (HDR-like) for net001-bench.
 *
 * Values are unsigned 64-bit (the bench records nanoseconds). Values below
 * 2^LATHIST_SUB_BITS get a bucket each; above that, every power-of-two
 * range [2^k, 2^(k+1)) is split into 2^LATHIST_SUB_BITS equal sub-buckets,
 * so any reported percentile is within 1/32 (about 3%) of a recorded
 * value. Exact count, min, max and sum are kept beside the buckets.
 *
 * Thread: a histogram has one writer. Each bench thread records into its
 * own and the main thread merges them after the threads have joined.
 * A struct lathist is plain data (no pointers), valid when zero-filled.
 */
#ifndef NET001_LATHIST_H
#define NET001_LATHIST_H

#include <stdint.h>

#define LATHIST_SUB_BITS 5
#define LATHIST_SUB      (1u << LATHIST_SUB_BITS)
/* Linear part, then one group of LATHIST_SUB per exponent above it. */
#define LATHIST_BUCKETS  ((64 - LATHIST_SUB_BITS + 1) * LATHIST_SUB)

struct lathist {
	uint64_t count;
	uint64_t min;   /* meaningful only when count > 0 */
	uint64_t max;
	uint64_t sum;
	uint64_t buckets[LATHIST_BUCKETS];
};

/* The bucket a value falls in, and the smallest/largest value it holds. */
unsigned lathist_bucket(uint64_t v);
uint64_t lathist_bucket_low(unsigned b);
uint64_t lathist_bucket_high(unsigned b);

static inline void lathist_record(struct lathist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	h->buckets[lathist_bucket(v)]++;
}

/* Add every sample of src into dst. */
void lathist_merge(struct lathist *dst, const struct lathist *src);

/*
 * The value at quantile q in [0, 1]: the upper bound of the bucket that
 * holds the ceil(q * count)-th smallest sample, clamped to [min, max].
 * Returns 0 for an empty histogram.
 */
uint64_t lathist_quantile(const struct lathist *h, double q);

#endif
