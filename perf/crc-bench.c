/*
 * crc-bench - CRC-32/ISO-HDLC throughput: ISA-L's crc32_gzip_refl (what
 * proto/frame.c uses) against zlib's crc32, on the buffer sizes a frame
 * codec meets: 16 B and 64 B (small messages), 1 KiB, 64 KiB (the largest
 * frame).
 *
 * Usage: crc-bench [seconds per measurement, default 0.5]
 *
 * Before timing, both implementations are compared on every length 0..4096
 * at every alignment 0..7 and on each benchmark buffer, chained and not;
 * any disagreement is reported and the exit status is 1. Each measurement
 * computes independent CRCs of one warm buffer (as a server checks one
 * frame at a time), repeated until the time is up; GB/s is 10^9 bytes per
 * second of the median of 5 such rounds.
 */
#include <isa-l/crc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "proto/clock.h"

#define ROUNDS 5

typedef uint32_t (*crc_fn)(uint32_t crc, const uint8_t *p, size_t n);

static uint32_t isal_crc(uint32_t crc, const uint8_t *p, size_t n)
{
	return crc32_gzip_refl(crc, p, n);
}

static uint32_t zlib_crc(uint32_t crc, const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(crc, p, (uInt)n);
}

static double now(void)
{
	return (double)clock_now_ns() * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median GB/s over ROUNDS rounds of about `secs` each. *sink keeps every
 * result live so no call can be dropped. */
static double measure(crc_fn f, const uint8_t *buf, size_t n, double secs,
                      uint32_t *sink)
{
	double gbs[ROUNDS];
	/* Calls per clock read, so reading the clock costs nothing. */
	size_t batch = (1u << 20) / n + 16;

	for (int r = 0; r < ROUNDS; r++) {
		uint64_t calls = 0;
		uint32_t acc = 0;
		double t0 = now(), t;
		do {
			for (size_t i = 0; i < batch; i++)
				acc += f(0, buf, n);
			calls += batch;
			t = now();
		} while (t - t0 < secs);
		*sink ^= acc;
		gbs[r] = (double)calls * (double)n / (t - t0) / 1e9;
	}
	qsort(gbs, ROUNDS, sizeof gbs[0], cmp_double);
	return gbs[ROUNDS / 2];
}

static int verify(const uint8_t *buf, size_t cap)
{
	int bad = 0;
	for (size_t align = 0; align < 8; align++) {
		for (size_t n = 0; n <= 4096 && align + n <= cap; n++) {
			uint32_t a = isal_crc(0, buf + align, n);
			uint32_t z = zlib_crc(0, buf + align, n);
			if (a != z && bad++ < 10)
				fprintf(stderr, "crc-bench: disagree at length %zu, offset %zu: "
				        "isa-l %08x zlib %08x\n", n, align, a, z);
		}
	}
	/* Chaining from a running value, as frame_wrap does. */
	uint32_t a = isal_crc(isal_crc(0, buf, 8), buf + 8, cap - 8);
	uint32_t z = zlib_crc(zlib_crc(0, buf, 8), buf + 8, cap - 8);
	if (a != z && bad++ < 10)
		fprintf(stderr, "crc-bench: chained CRCs disagree: %08x %08x\n", a, z);
	if (isal_crc(0, (const uint8_t *)"123456789", 9) != 0xCBF43926u) {
		fprintf(stderr, "crc-bench: ISA-L check value wrong\n");
		bad++;
	}
	return bad;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 16, 64, 1024, 65536 };
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	size_t cap = 65536 + 64;
	uint8_t *buf = malloc(cap);
	uint32_t sink = 0;
	int status = 0;

	if (!buf || secs <= 0) {
		fprintf(stderr, "usage: crc-bench [seconds per measurement > 0]\n");
		free(buf);
		return 2;
	}
	uint64_t s = 0x637263;
	for (size_t i = 0; i < cap; i++) {
		s = s * 6364136223846793005u + 1442695040888963407u;
		buf[i] = (uint8_t)(s >> 56);
	}
	if (verify(buf, cap)) {
		free(buf);
		return 1;
	}

	printf("%8s  %12s  %12s  %7s  %s\n", "size", "isa-l GB/s", "zlib GB/s",
	       "ratio", "crc (both)");
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		uint32_t a = isal_crc(0, buf, n), z = zlib_crc(0, buf, n);
		if (a != z) {
			fprintf(stderr, "crc-bench: %zu B: isa-l %08x zlib %08x\n", n, a, z);
			status = 1;
			continue;
		}
		double gi = measure(isal_crc, buf, n, secs, &sink);
		double gz = measure(zlib_crc, buf, n, secs, &sink);
		printf("%7zuB  %12.2f  %12.2f  %6.2fx  %08x\n", n, gi, gz, gi / gz, a);
	}
	/* Printed so the timed calls have an observable result. */
	fprintf(stderr, "(sink %08x)\n", sink);
	free(buf);
	return status;
}
