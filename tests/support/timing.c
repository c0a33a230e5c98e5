/*
 * timing.c - see timing.h.
 */
#include "timing.h"

#include <errno.h>
#include <time.h>

#include "proto/clock.h"

uint64_t mono_ms(void)
{
	return clock_now_ns() / 1000000u;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
