/*
 * clock.h - the monotonic clock, CLOCK_MONOTONIC in nanoseconds: the one
 * copy every part of the tree uses (the server's loops, libnet001's
 * deadlines and PING stamps, the CLI, the bench, the tests).
 *
 * Why in proto/: it is the one folder every layer may include, and the only
 * one libnet001 sees besides its own (the 'client' include view holds
 * proto/ and net/client/). The clock is also part of the protocol's
 * vocabulary: clients stamp a PING with u64 nanoseconds (PROTOCOL.md
 * section 2) read from it. It is header-only and keeps proto/'s rule (no
 * I/O, no allocation, no global state): one inline vDSO read, no object
 * added to the codec, nothing for the installed library to export.
 *
 * Any thread; no state.
 */
#ifndef NET001_CLOCK_H
#define NET001_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;
	/* vDSO: no system call. CLOCK_MONOTONIC cannot fail with a valid
	 * pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
