/*
 * race_spsc - the SPSC two-thread scenarios as a plain program, for
 * ThreadSanitizer.
 *
 * Criterion cannot start under TSan (its BoxFort arena mapping collides
 * with TSan's shadow memory: "Could not initialize inheritable arena"), so
 * this harness repeats the stress and eventfd wake-up scenarios of
 * test_spsc.c with plain pthreads and exits non-zero on any failure. It
 * also runs in the normal builds as a second, independent check.
 *
 *   meson setup build-tsan -Dbuildtype=debug -Db_sanitize=thread -Dmimalloc=disabled
 *   meson test -C build-tsan core/spsc-race
 *
 * Item counts: SPSC_RACE_ITEMS (stress) and SPSC_RACE_WAKE_ITEMS.
 *
 * What TSan checks here is the data hand-off: slot writes published by the
 * release store of tail, slot reuse guarded by the release store of head.
 * It does not model atomic_thread_fence, so the Dekker wake rule is
 * checked by the wake-up scenarios themselves: a consumer asleep for 30 s
 * with items queued fails them (with the two fences deleted, on x86, one
 * of the two scenarios hit that in each trial run).
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "spsc.h"

#if defined(__SANITIZE_THREAD__)
#define DEFAULT_ITEMS      2000000u   /* TSan runs ~20x slower */
#define DEFAULT_WAKE_ITEMS 500000u
#else
#define DEFAULT_ITEMS      10000000u
#define DEFAULT_WAKE_ITEMS 2000000u
#endif

struct run {
	struct spsc q;
	uint64_t n;
	int efd;                /* -1: consumer spins instead of sleeping */
	unsigned pause_every;   /* producer pauses every this many items, 0 never */
	atomic_bool stop;       /* consumer gave up */
	uint64_t wakes, sleeps, got;
	int error;              /* 1 order, 2 lost wake-up */
	uint64_t bad_at, bad_val;
};

static void relax(unsigned *spins)
{
	if (++*spins < 64)
		return;
	*spins = 0;
	sched_yield();
}

static void *producer(void *arg)
{
	struct run *r = arg;
	unsigned spins = 0;

	for (uint64_t i = 0; i < r->n; i++) {
		bool was_empty;
		while (!spsc_push(&r->q, (void *)(uintptr_t)(i + 1), &was_empty)) {
			if (atomic_load_explicit(&r->stop, memory_order_relaxed))
				return NULL;
			relax(&spins);
		}
		if (was_empty && r->efd >= 0) {
			uint64_t one = 1;
			if (write(r->efd, &one, sizeof one) != sizeof one)
				abort();
			r->wakes++;
		}
		if (r->pause_every && i % r->pause_every == 0)
			for (volatile int k = 0; k < 2000; k++)
				;
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct run *r = arg;
	unsigned spins = 0;

	while (r->got < r->n) {
		void *p = spsc_pop(&r->q);
		if (p) {
			uint64_t v = (uint64_t)(uintptr_t)p - 1;
			if (v != r->got && !r->error) {
				r->error = 1;
				r->bad_at = r->got;
				r->bad_val = v;
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
		struct pollfd pfd = { .fd = r->efd, .events = POLLIN };
		if (poll(&pfd, 1, 30000) == 0) {
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

static uint64_t env_count(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	return s && *s ? strtoull(s, NULL, 10) : dflt;
}

static int scenario(const char *name, uint32_t capacity, uint64_t n, bool sleep,
                    unsigned pause_every)
{
	static struct run r;
	pthread_t pt, ct;
	struct timespec t0, t1;
	int failed = 0;

	r = (struct run){ .n = n, .efd = -1, .pause_every = pause_every };
	if (spsc_init(&r.q, capacity) != 0) {
		fprintf(stderr, "%s: spsc_init failed\n", name);
		return 1;
	}
	if (sleep && (r.efd = eventfd(0, EFD_CLOEXEC)) < 0) {
		perror("eventfd");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pthread_create(&ct, NULL, consumer, &r) || pthread_create(&pt, NULL, producer, &r)) {
		fprintf(stderr, "%s: pthread_create failed\n", name);
		return 1;
	}
	pthread_join(pt, NULL);
	pthread_join(ct, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	printf("%s: %llu items in %.2f s, %llu wakes, %llu sleeps\n", name,
	       (unsigned long long)n, dt, (unsigned long long)r.wakes,
	       (unsigned long long)r.sleeps);
	if (r.error == 2) {
		fprintf(stderr, "%s: lost wake-up at item %llu, %llu queued\n", name,
		        (unsigned long long)r.bad_at, (unsigned long long)r.bad_val);
		failed = 1;
	} else if (r.error == 1) {
		fprintf(stderr, "%s: item %llu arrived at position %llu\n", name,
		        (unsigned long long)r.bad_val, (unsigned long long)r.bad_at);
		failed = 1;
	} else if (r.got != n || spsc_pop(&r.q) != NULL) {
		fprintf(stderr, "%s: received %llu of %llu, or extra items\n", name,
		        (unsigned long long)r.got, (unsigned long long)n);
		failed = 1;
	} else if (sleep && r.sleeps == 0) {
		fprintf(stderr, "%s: the consumer never slept: scenario not exercised\n", name);
		failed = 1;
	}
	if (r.efd >= 0)
		close(r.efd);
	spsc_destroy(&r.q);
	return failed;
}

int main(void)
{
	uint64_t n = env_count("SPSC_RACE_ITEMS", DEFAULT_ITEMS);
	uint64_t w = env_count("SPSC_RACE_WAKE_ITEMS", DEFAULT_WAKE_ITEMS);
	int failed = 0;

	failed |= scenario("stress", 1024, n, false, 0);
	failed |= scenario("tiny", 2, n / 10, false, 0);
	failed |= scenario("wake", 256, w, true, 0);
	failed |= scenario("bursty", 64, w / 2, true, 16);
	return failed;
}
