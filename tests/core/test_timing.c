/*
 * The per-core timer wheel (core/wheel.h) and the token buckets of the
 * rate limits (net/ratelimit.h): small pure pieces the engine leans on.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "net/ratelimit.h"
#include "core/wheel.h"

struct fired {
	uint32_t ids[64];
	uint32_t n;
	struct wheel *w;
	uint32_t readd_due;  /* when set, re-add every fired id at this time */
};

static void on_fire(void *ctx, uint32_t id)
{
	struct fired *f = ctx;
	cr_assert_lt(f->n, 64);
	f->ids[f->n++] = id;
	cr_assert_not(wheel_queued(f->w, id), "removed before the callback");
	if (f->readd_due)
		wheel_add(f->w, id, f->readd_due);
}

Test(wheel, fires_at_due_time_not_before)
{
	struct wheel w;
	cr_assert_eq(wheel_init(&w, 16, 8, 1000), 0);
	struct fired f = { .w = &w };
	wheel_add(&w, 3, 1002);
	wheel_add(&w, 5, 1005);
	cr_assert_eq(w.count, 2);
	cr_assert_eq(wheel_advance(&w, 1001, on_fire, &f), 0);
	cr_assert_eq(wheel_advance(&w, 1002, on_fire, &f), 1);
	cr_assert_eq(f.ids[0], 3);
	cr_assert_eq(wheel_advance(&w, 1004, on_fire, &f), 0);
	cr_assert_eq(wheel_advance(&w, 1005, on_fire, &f), 1);
	cr_assert_eq(f.ids[1], 5);
	cr_assert_eq(w.count, 0);
	wheel_destroy(&w);
}

Test(wheel, due_beyond_one_turn_waits_for_its_turn)
{
	struct wheel w;
	cr_assert_eq(wheel_init(&w, 4, 8, 0), 0); /* 8 slots */
	struct fired f = { .w = &w };
	wheel_add(&w, 1, 21); /* same slot as 5 and 13 */
	for (uint32_t t = 1; t <= 20; t++)
		cr_assert_eq(wheel_advance(&w, t, on_fire, &f), 0, "nothing at %u", t);
	cr_assert_eq(wheel_advance(&w, 21, on_fire, &f), 1);
	wheel_destroy(&w);
}

Test(wheel, delete_readd_and_requeue)
{
	struct wheel w;
	cr_assert_eq(wheel_init(&w, 8, 4, 0), 0);
	struct fired f = { .w = &w };
	wheel_add(&w, 0, 2);
	wheel_add(&w, 1, 2);
	wheel_add(&w, 2, 2);
	wheel_del(&w, 1);
	wheel_del(&w, 1); /* twice is harmless */
	cr_assert_not(wheel_queued(&w, 1));
	wheel_add(&w, 2, 3); /* moved later */
	cr_assert_eq(w.count, 2);
	cr_assert_eq(wheel_advance(&w, 2, on_fire, &f), 1);
	cr_assert_eq(f.ids[0], 0);
	cr_assert_eq(wheel_advance(&w, 3, on_fire, &f), 1);
	cr_assert_eq(f.ids[1], 2);
	/* Something already due fires at the next step. */
	wheel_add(&w, 4, 1);
	cr_assert_eq(wheel_advance(&w, 4, on_fire, &f), 1);
	wheel_destroy(&w);
}

Test(wheel, callback_may_readd_and_long_stall_catches_up)
{
	struct wheel w;
	cr_assert_eq(wheel_init(&w, 32, 16, 0), 0);
	struct fired f = { .w = &w, .readd_due = 100 };
	for (uint32_t id = 0; id < 10; id++)
		wheel_add(&w, id, 1 + id);
	/* A stall of many turns: everything due fires once, re-adds for 100. */
	cr_assert_eq(wheel_advance(&w, 90, on_fire, &f), 10);
	cr_assert_eq(w.count, 10);
	f.readd_due = 0;
	cr_assert_eq(wheel_advance(&w, 99, on_fire, &f), 0);
	cr_assert_eq(wheel_advance(&w, 100, on_fire, &f), 10);
	cr_assert_eq(w.count, 0);
	wheel_destroy(&w);
}

#define SEC 1000000000ull

Test(bucket, starts_full_with_one_second_of_tokens)
{
	struct bucket b;
	bucket_init(&b, 10, 5 * SEC);
	int ok = 0;
	for (int i = 0; i < 15; i++)
		ok += bucket_take(&b, 10, 5 * SEC);
	cr_assert_eq(ok, 10);
}

Test(bucket, refills_at_the_rate_and_caps_at_one_second)
{
	struct bucket b;
	bucket_init(&b, 100, 0);
	for (int i = 0; i < 100; i++)
		cr_assert(bucket_take(&b, 100, 0));
	cr_assert_not(bucket_take(&b, 100, 0));
	/* 50 ms at 100/s: 5 tokens. */
	int ok = 0;
	for (int i = 0; i < 10; i++)
		ok += bucket_take(&b, 100, SEC / 20);
	cr_assert_eq(ok, 5);
	/* A long quiet spell refills to one second's worth, not more. */
	ok = 0;
	for (int i = 0; i < 300; i++)
		ok += bucket_take(&b, 100, 60 * SEC);
	cr_assert_eq(ok, 100);
}

Test(bucket, slow_rates_refill_smoothly_and_zero_is_off)
{
	struct bucket b;
	bucket_init(&b, 1, 0);
	cr_assert(bucket_take(&b, 1, 0));
	cr_assert_not(bucket_take(&b, 1, SEC / 2));
	cr_assert(bucket_take(&b, 1, SEC), "one token a second");
	for (int i = 0; i < 1000; i++)
		cr_assert(bucket_take(&b, 0, 0), "rate 0 never limits");
}

Test(bucket, refund_gives_back_but_never_overfills)
{
	struct bucket b;
	bucket_init(&b, 3, 0);
	bucket_refund(&b, 3);
	int ok = 0;
	for (int i = 0; i < 10; i++)
		ok += bucket_take(&b, 3, 0);
	cr_assert_eq(ok, 3);
	bucket_refund(&b, 3);
	cr_assert(bucket_take(&b, 3, 0));
	cr_assert_not(bucket_take(&b, 3, 0));
}
