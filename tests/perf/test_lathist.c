/* lathist: bucket bounds, quantile precision, merge. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "perf/lathist.h"

Test(lathist, buckets_cover_every_value_once)
{
	/* Each value falls in a bucket whose bounds hold it, and bucket
	 * bounds are contiguous: high(b) + 1 == low(b + 1). */
	for (unsigned b = 0; b + 1 < LATHIST_BUCKETS; b++)
		cr_assert_eq(lathist_bucket_high(b) + 1, lathist_bucket_low(b + 1),
		             "gap after bucket %u", b);
	uint64_t vals[] = { 0, 1, 31, 32, 33, 63, 64, 65, 1000, 123456789,
	                    (uint64_t)1 << 40, UINT64_MAX };
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		unsigned b = lathist_bucket(vals[i]);
		cr_assert_lt(b, LATHIST_BUCKETS);
		cr_assert_leq(lathist_bucket_low(b), vals[i]);
		cr_assert_geq(lathist_bucket_high(b), vals[i]);
	}
	cr_assert_eq(lathist_bucket(UINT64_MAX), LATHIST_BUCKETS - 1);
}

Test(lathist, quantiles_within_bucket_precision)
{
	static struct lathist h;
	/* 1..100000 ns uniformly: the q-quantile is about q * 100000. */
	for (uint64_t v = 1; v <= 100000; v++)
		lathist_record(&h, v);
	cr_assert_eq(h.count, 100000);
	cr_assert_eq(h.min, 1);
	cr_assert_eq(h.max, 100000);
	double qs[] = { 0.5, 0.9, 0.99, 0.999 };
	for (size_t i = 0; i < 4; i++) {
		double want = qs[i] * 100000.0;
		double got = (double)lathist_quantile(&h, qs[i]);
		cr_assert_geq(got, want, "q=%g: %g below the true value", qs[i], got);
		cr_assert_leq(got, want * (1.0 + 1.0 / LATHIST_SUB) + 1,
		              "q=%g: %g too far above %g", qs[i], got, want);
	}
	cr_assert_eq(lathist_quantile(&h, 1.0), 100000);
	cr_assert_eq(lathist_quantile(&h, 0.0), 1);
}

Test(lathist, merge_adds_samples)
{
	static struct lathist a, b, empty;
	cr_assert_eq(lathist_quantile(&empty, 0.5), 0);
	for (int i = 0; i < 1000; i++)
		lathist_record(&a, 10);
	for (int i = 0; i < 1000; i++)
		lathist_record(&b, 1000000);
	lathist_merge(&a, &b);
	lathist_merge(&a, &empty);
	cr_assert_eq(a.count, 2000);
	cr_assert_eq(a.min, 10);
	cr_assert_eq(a.max, 1000000);
	cr_assert_eq(lathist_quantile(&a, 0.5), 10);
	cr_assert_eq(lathist_quantile(&a, 0.75), 1000000);
	cr_assert_eq(a.sum, 1000ull * 10 + 1000ull * 1000000);
}
