/*
 * race_spsc - the SPSC two-thread scenarios as a plain program, for
 * ThreadSanitizer.
 *
 * Criterion cannot start under TSan (its BoxFort arena mapping collides
 * with TSan's shadow memory: "Could not initialize inheritable arena"), so
 * this harness runs the stress and eventfd wake-up scenarios of
 * test_spsc.c (the threads in spsc_run.c) without Criterion and exits
 * non-zero on any failure. It also runs in the normal builds, with its own
 * item counts, as a second check.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/spsc.h"
#include "spsc_run.h"

#if defined(__SANITIZE_THREAD__)
#define DEFAULT_ITEMS      2000000u   /* TSan runs ~20x slower */
#define DEFAULT_WAKE_ITEMS 500000u
#else
#define DEFAULT_ITEMS      10000000u
#define DEFAULT_WAKE_ITEMS 2000000u
#endif

static int scenario(const char *name, uint32_t capacity, uint64_t n, bool sleep,
                    unsigned pause_every)
{
	static struct spsc_run r;
	int failed = 0;

	r = (struct spsc_run){ .n = n, .efd = -1, .pause_every = pause_every,
	                       .wake_timeout_ms = 30000 };
	if (spsc_init(&r.q, capacity) != 0) {
		fprintf(stderr, "%s: spsc_init failed\n", name);
		return 1;
	}
	if (sleep && (r.efd = eventfd(0, EFD_CLOEXEC)) < 0) {
		perror("eventfd");
		return 1;
	}
	double dt = spsc_run_threads(&r);

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
	uint64_t n = spsc_run_env_count("SPSC_RACE_ITEMS", DEFAULT_ITEMS);
	uint64_t w = spsc_run_env_count("SPSC_RACE_WAKE_ITEMS", DEFAULT_WAKE_ITEMS);
	int failed = 0;

	failed |= scenario("stress", 1024, n, false, 0);
	failed |= scenario("tiny", 2, n / 10, false, 0);
	failed |= scenario("wake", 256, w, true, 0);
	failed |= scenario("bursty", 64, w / 2, true, 16);
	return failed;
}
