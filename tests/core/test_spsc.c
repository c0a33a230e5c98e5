/*
 * SPSC queue tests: capacity rounding, full/empty edges, index wrap, the
 * wake rule step by step, a two-thread stress test (order, nothing lost or
 * duplicated), and an eventfd wake-up test that hangs on a lost wake-up.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/spsc.h"
#include "spsc_run.h"

TestSuite(spsc, .timeout = 120);

Test(spsc, capacity_rounding)
{
	static const uint32_t in[] = { 1, 2, 3, 4, 5, 7, 8, 9, 1000, 1024, 1025,
	                               65535, 65536, 65537 };
	static const uint32_t want[] = { 1, 2, 4, 4, 8, 8, 8, 16, 1024, 1024, 2048,
	                                 65536, 65536, 131072 };
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		struct spsc q;
		cr_assert_eq(spsc_init(&q, in[i]), 0, "init(%u)", in[i]);
		cr_expect_eq(spsc_capacity(&q), want[i], "init(%u): capacity %u, want %u",
		             in[i], spsc_capacity(&q), want[i]);
		/* The rounded capacity is really usable, and no more. */
		bool was_empty;
		for (uint32_t k = 0; k < want[i]; k++)
			cr_assert(spsc_push(&q, spsc_run_item(k), &was_empty), "push %u of %u", k, want[i]);
		cr_assert_not(spsc_push(&q, spsc_run_item(0), &was_empty), "push past %u", want[i]);
		spsc_destroy(&q);
	}
}

Test(spsc, init_rejects)
{
	struct spsc q;
	cr_assert_eq(spsc_init(&q, 0), -EINVAL);
	cr_assert_eq(spsc_init(&q, SPSC_MAX_CAPACITY + 1), -EINVAL);
	cr_assert_eq(spsc_init(&q, UINT32_MAX), -EINVAL);
	spsc_destroy(&q); /* safe after a failed init */
}

Test(spsc, layout)
{
	/* Each side's index sits on its own cache line. */
	cr_assert_eq(offsetof(struct spsc, tail) % SPSC_CACHE_LINE, 0);
	cr_assert_eq(offsetof(struct spsc, head) % SPSC_CACHE_LINE, 0);
	cr_assert_geq(offsetof(struct spsc, head) - offsetof(struct spsc, tail),
	              SPSC_CACHE_LINE);
	cr_assert_geq(offsetof(struct spsc, slots) - offsetof(struct spsc, head),
	              SPSC_CACHE_LINE);
	cr_assert_eq(_Alignof(struct spsc), SPSC_CACHE_LINE);
}

Test(spsc, empty_and_full)
{
	struct spsc q;
	bool was_empty = false;
	int x;

	cr_assert_eq(spsc_init(&q, 4), 0);
	cr_assert_null(spsc_pop(&q));
	cr_assert_null(spsc_pop(&q));
	cr_assert(spsc_consumer_idle(&q));
	cr_assert_eq(spsc_size(&q), 0);

	for (int i = 0; i < 4; i++) {
		cr_assert(spsc_push(&q, spsc_run_item((uint64_t)i), &was_empty));
		cr_assert_eq(was_empty, i == 0, "push %d: was_empty %d", i, was_empty);
		cr_assert_eq(spsc_size(&q), (uint32_t)i + 1);
	}
	cr_assert_not(spsc_consumer_idle(&q));

	/* Full: refused, nothing written, flag untouched. */
	was_empty = true;
	cr_assert_not(spsc_push(&q, &x, &was_empty));
	cr_assert(was_empty);
	cr_assert_eq(spsc_size(&q), 4);

	/* One out makes room for exactly one in. */
	cr_assert_eq(spsc_pop(&q), spsc_run_item(0));
	cr_assert(spsc_push(&q, spsc_run_item(4), &was_empty));
	cr_assert_not(was_empty);
	cr_assert_not(spsc_push(&q, &x, &was_empty));

	for (int i = 1; i <= 4; i++)
		cr_assert_eq(spsc_pop(&q), spsc_run_item((uint64_t)i), "pop %d", i);
	cr_assert_null(spsc_pop(&q));
	cr_assert(spsc_consumer_idle(&q));
	cr_assert_eq(spsc_size(&q), 0);
	spsc_destroy(&q);
}

Test(spsc, capacity_one)
{
	struct spsc q;
	bool was_empty;

	cr_assert_eq(spsc_init(&q, 1), 0);
	for (uint64_t i = 0; i < 100; i++) {
		cr_assert(spsc_push(&q, spsc_run_item(i), &was_empty));
		cr_assert(was_empty);
		cr_assert_not(spsc_push(&q, spsc_run_item(i), &was_empty));
		cr_assert_eq(spsc_pop(&q), spsc_run_item(i));
		cr_assert_null(spsc_pop(&q));
	}
	spsc_destroy(&q);
}

Test(spsc, index_wrap)
{
	struct spsc q;
	bool was_empty;
	uint64_t next_in = 0, next_out = 0;

	cr_assert_eq(spsc_init(&q, 8), 0);
	/* Start the free-running counters just below 2^32. */
	uint32_t start = UINT32_MAX - 20;
	atomic_store(&q.head, start);
	atomic_store(&q.tail, start);
	q.head_cache = q.tail_cache = start;

	/* Irregular batches so the wrap happens at every fill level. */
	for (int round = 0; round < 40; round++) {
		int in = 1 + round % 8, out = 1 + (round * 5) % 8;
		for (int k = 0; k < in; k++) {
			if (!spsc_push(&q, spsc_run_item(next_in), &was_empty))
				break;
			next_in++;
		}
		cr_assert_leq(spsc_size(&q), 8);
		cr_assert_eq(spsc_size(&q), next_in - next_out);
		for (int k = 0; k < out; k++) {
			void *p = spsc_pop(&q);
			if (!p) {
				cr_assert_eq(next_in, next_out);
				break;
			}
			cr_assert_eq(spsc_run_index(p), next_out, "round %d: got %llu want %llu",
			             round, (unsigned long long)spsc_run_index(p),
			             (unsigned long long)next_out);
			next_out++;
		}
	}
	void *p;
	while ((p = spsc_pop(&q)))
		cr_assert_eq(spsc_run_index(p), next_out++);
	cr_assert_eq(next_in, next_out);
	cr_assert_gt(next_in, 100);
	/* The counters really did wrap. */
	cr_assert_lt(atomic_load(&q.tail), start);
	spsc_destroy(&q);
}

/*
 * The wake rule one step at a time: was_empty is true exactly when the
 * consumer had taken everything before this item.
 */
Test(spsc, wake_rule_steps)
{
	struct spsc q;
	bool was_empty;

	cr_assert_eq(spsc_init(&q, 16), 0);

	cr_assert(spsc_push(&q, spsc_run_item(0), &was_empty));
	cr_assert(was_empty, "first item into an empty queue must wake");
	cr_assert(spsc_push(&q, spsc_run_item(1), &was_empty));
	cr_assert_not(was_empty, "consumer has item 0 pending: already woken");

	/* Consumer takes 0; 1 is still pending, so no new wake. */
	cr_assert_eq(spsc_pop(&q), spsc_run_item(0));
	cr_assert(spsc_push(&q, spsc_run_item(2), &was_empty));
	cr_assert_not(was_empty);

	/* Consumer drains and goes idle: the next push must wake it. */
	cr_assert_eq(spsc_pop(&q), spsc_run_item(1));
	cr_assert_eq(spsc_pop(&q), spsc_run_item(2));
	cr_assert_null(spsc_pop(&q));
	cr_assert(spsc_consumer_idle(&q));
	cr_assert(spsc_push(&q, spsc_run_item(3), &was_empty));
	cr_assert(was_empty, "push after the consumer went idle must wake");

	/* An item that arrived before the idle check keeps the consumer up. */
	cr_assert(spsc_push(&q, spsc_run_item(4), &was_empty));
	cr_assert_not(spsc_consumer_idle(&q));
	cr_assert_eq(spsc_pop(&q), spsc_run_item(3));
	cr_assert_eq(spsc_pop(&q), spsc_run_item(4));
	cr_assert(spsc_consumer_idle(&q));
	spsc_destroy(&q);
}

/* ---- two threads ------------------------------------------------------- */

static void run_two_threads(struct spsc_run *r, const char *name)
{
	r->wake_timeout_ms = 20000;
	double dt = spsc_run_threads(r);

	cr_log_info("%s: %llu items in %.2f s (%.1f M/s), %llu full, %llu wakes, "
	            "%llu sleeps", name, (unsigned long long)r->n, dt,
	            (double)r->n / dt / 1e6, (unsigned long long)r->full,
	            (unsigned long long)r->wakes, (unsigned long long)r->sleeps);
	cr_assert_neq(r->error, 2, "%s: lost wake-up: consumer asleep 20 s at item %llu "
	              "with %llu queued", name, (unsigned long long)r->bad_at,
	              (unsigned long long)r->bad_val);
	cr_assert_eq(r->error, 0, "%s: item %llu arrived at position %llu", name,
	             (unsigned long long)r->bad_val, (unsigned long long)r->bad_at);
	cr_assert_eq(r->got, r->n, "%s: received %llu of %llu", name,
	             (unsigned long long)r->got, (unsigned long long)r->n);
	/* Nothing duplicated: no extra item behind the last one. */
	cr_assert_null(spsc_pop(&r->q));
	cr_assert_eq(spsc_size(&r->q), 0);
}

Test(spsc, stress_order_10M)
{
	static struct spsc_run r;
	r.n = spsc_run_env_count("SPSC_STRESS_ITEMS", 10 * 1000 * 1000);
	r.efd = -1;
	cr_assert_eq(spsc_init(&r.q, 1024), 0);
	run_two_threads(&r, "stress");
	spsc_destroy(&r.q);
}

Test(spsc, stress_order_tiny_queue)
{
	/* Capacity 2 keeps the queue at full/empty boundaries nearly always. */
	static struct spsc_run r;
	r.n = spsc_run_env_count("SPSC_STRESS_ITEMS", 10 * 1000 * 1000) / 5;
	r.efd = -1;
	cr_assert_eq(spsc_init(&r.q, 2), 0);
	run_two_threads(&r, "tiny");
	cr_assert_gt(r.full, 0, "producer never saw a full queue");
	spsc_destroy(&r.q);
}

static void wake_test(uint32_t capacity, uint64_t n, unsigned burst_pause,
                      const char *name)
{
	static struct spsc_run r;
	r.n = n;
	r.pause_every = burst_pause;
	r.efd = eventfd(0, EFD_CLOEXEC);
	cr_assert_geq(r.efd, 0);
	cr_assert_eq(spsc_init(&r.q, capacity), 0);
	run_two_threads(&r, name);
	/* The test is only worth something if the consumer really slept. */
	cr_assert_gt(r.sleeps, 0, "%s: consumer never slept", name);
	cr_assert_geq(r.wakes, 1);
	close(r.efd);
	spsc_destroy(&r.q);
}

Test(spsc, wakeup_eventfd, .timeout = 300)
{
	wake_test(256, spsc_run_env_count("SPSC_WAKE_ITEMS", 5 * 1000 * 1000), 0, "wake");
}

Test(spsc, wakeup_eventfd_bursty, .timeout = 300)
{
	/* The producer pauses every 16 items, so the consumer drains and
	 * sleeps constantly: many races between push and the idle check. */
	wake_test(64, spsc_run_env_count("SPSC_WAKE_ITEMS", 5 * 1000 * 1000) * 2 / 5, 16, "bursty");
}
