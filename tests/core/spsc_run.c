/*
 * spsc_run.c - see spsc_run.h.
 */
#include "spsc_run.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "proto/clock.h"

static void relax(unsigned *spins)
{
	/* Two cores shared with other work: yield soon rather than burn the
	 * core the other side needs. */
	if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} else {
		*spins = 0;
		sched_yield();
	}
}

static void *producer(void *arg)
{
	struct spsc_run *r = arg;
	unsigned spins = 0;

	for (uint64_t i = 0; i < r->n; i++) {
		bool was_empty;
		while (!spsc_push(&r->q, spsc_run_item(i), &was_empty)) {
			if (atomic_load_explicit(&r->stop, memory_order_relaxed))
				return NULL;
			r->full++;
			relax(&spins);
		}
		if (was_empty && r->efd >= 0) {
			uint64_t one = 1;
			if (write(r->efd, &one, sizeof one) != sizeof one)
				abort();
			r->wakes++;
		}
		if (r->pause_every && i % r->pause_every == 0) {
			/* Let the consumer catch up and fall asleep often. */
			for (volatile int k = 0; k < 2000; k++)
				;
		}
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct spsc_run *r = arg;
	unsigned spins = 0;

	while (r->got < r->n) {
		void *p = spsc_pop(&r->q);
		if (p) {
			if (spsc_run_index(p) != r->got && !r->error) {
				r->error = 1;
				r->bad_at = r->got;
				r->bad_val = spsc_run_index(p);
			}
			r->got++;
			continue;
		}
		if (r->efd < 0) {
			relax(&spins);
			continue;
		}
		if (!spsc_consumer_idle(&r->q))
			continue;
		/* Truly idle: block until the producer's wake. A lost wake-up
		 * shows as a long timeout with items still queued. */
		struct pollfd pfd = { .fd = r->efd, .events = POLLIN };
		if (poll(&pfd, 1, r->wake_timeout_ms) == 0) {
			r->error = 2;
			r->bad_at = r->got;
			r->bad_val = spsc_size(&r->q);
			atomic_store(&r->stop, true);
			return NULL;
		}
		uint64_t v;
		if (read(r->efd, &v, sizeof v) != sizeof v)
			abort();
		r->sleeps++;
	}
	return NULL;
}

static double now_s(void)
{
	return (double)clock_now_ns() / 1e9;
}

double spsc_run_threads(struct spsc_run *r)
{
	pthread_t pt, ct;
	double t0 = now_s();

	/* Without both threads there is no scenario, and a consumer already
	 * started could not be stopped: give up loudly. */
	if (pthread_create(&ct, NULL, consumer, r) != 0 ||
	    pthread_create(&pt, NULL, producer, r) != 0)
		abort();
	pthread_join(pt, NULL);
	pthread_join(ct, NULL);
	return now_s() - t0;
}

uint64_t spsc_run_env_count(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	return s && *s ? strtoull(s, NULL, 10) : dflt;
}
