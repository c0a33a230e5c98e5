/*
 * timing.h - the monotonic clock in milliseconds and a plain sleep, for
 * tests that poll for something with a deadline.
 *
 * Test code, any thread; no state.
 */
#ifndef NET001_TEST_TIMING_H
#define NET001_TEST_TIMING_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t mono_ms(void);

/* Sleep ms milliseconds, resuming after a signal. */
void sleep_ms(int ms);

#endif
