/*
 * spsc_run.h - the SPSC two-thread scenario (one producer, one consumer,
 * optionally sleeping on an eventfd) shared by test_spsc.c (Criterion) and
 * race_spsc.c (plain program, for ThreadSanitizer). It checks nothing by
 * itself: it records what the threads saw and the caller judges that.
 *
 * Test code. The caller fills the parameters of a struct spsc_run, owns
 * its queue and eventfd, and reads the results after spsc_run_threads().
 */
#ifndef NET001_TEST_SPSC_RUN_H
#define NET001_TEST_SPSC_RUN_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/spsc.h"

struct spsc_run {
	/* parameters */
	struct spsc q;
	uint64_t n;             /* items 0..n-1, pushed in order */
	int efd;                /* -1: consumer spins instead of sleeping */
	unsigned pause_every;   /* producer pauses every this many items, 0 never */
	int wake_timeout_ms;    /* a consumer asleep this long has lost a wake-up */
	/* results */
	uint64_t wakes;         /* producer: eventfd writes */
	uint64_t sleeps;        /* consumer: blocking reads */
	uint64_t full;          /* producer: pushes refused */
	uint64_t got;           /* consumer: items received in order */
	int error;              /* consumer: 1 order broken, 2 lost wake-up */
	atomic_bool stop;       /* consumer gave up: producer must not spin on full */
	uint64_t bad_at, bad_val;
};

/* The queue holds item i as the pointer value i + 1 (never NULL). */
static inline void *spsc_run_item(uint64_t i)
{
	return (void *)(uintptr_t)(i + 1);
}

static inline uint64_t spsc_run_index(void *p)
{
	return (uint64_t)(uintptr_t)p - 1;
}

/* Item count from environment variable name, else dflt. */
uint64_t spsc_run_env_count(const char *name, uint64_t dflt);

/*
 * Run the consumer and the producer threads to the end (abort() if they
 * cannot be started). Returns the seconds it took.
 */
double spsc_run_threads(struct spsc_run *r);

#endif
