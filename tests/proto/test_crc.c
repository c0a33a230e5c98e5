/*
 * CRC-32 paths of the codec against zlib's crc32 as the reference: the
 * portable slice-by-8 (proto/crc32.h) and frame_crc() as built (ISA-L, or
 * the portable one in the proto-portable tests and with -Disal=disabled).
 * Every length 0..2048 at every alignment 0..7, chained at every split,
 * large buffers, and a first use from several threads at once.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "proto/crc32.h"
#include "proto/frame.h"

typedef uint32_t (*crc_fn)(uint32_t crc, const void *p, size_t n);

static uint32_t ref(uint32_t crc, const void *p, size_t n)
{
	return (uint32_t)crc32(crc, p, (uInt)n);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		p[i] = (uint8_t)(seed >> 56);
	}
}

static const struct {
	const char *name;
	crc_fn fn;
} paths[] = {
	{ "crc32_portable", crc32_portable },
	{ "frame_crc", frame_crc },
};

Test(crc, check_value)
{
	for (size_t k = 0; k < 2; k++) {
		cr_assert_eq(paths[k].fn(0, "123456789", 9), 0xCBF43926u, "%s", paths[k].name);
		cr_assert_eq(paths[k].fn(0, "", 0), 0u, "%s of nothing", paths[k].name);
		cr_assert_eq(paths[k].fn(0x12345678u, NULL, 0), 0x12345678u,
		             "%s: no bytes leave the CRC as it was", paths[k].name);
	}
}

Test(crc, every_length_and_alignment, .timeout = 120)
{
	enum { MAXLEN = 2048 };
	uint8_t *buf = malloc(MAXLEN + 8);
	cr_assert_not_null(buf);
	fill(buf, MAXLEN + 8, 1);
	for (size_t align = 0; align < 8; align++) {
		for (size_t n = 0; n <= MAXLEN; n++) {
			uint32_t want = ref(0, buf + align, n);
			for (size_t k = 0; k < 2; k++)
				cr_assert_eq(paths[k].fn(0, buf + align, n), want,
				             "%s: length %zu at alignment %zu",
				             paths[k].name, n, align);
		}
	}
	free(buf);
}

Test(crc, chained_at_every_split)
{
	uint8_t buf[300];
	fill(buf, sizeof buf, 2);
	uint32_t want = ref(0, buf, sizeof buf);
	for (size_t k = 0; k < 2; k++) {
		for (size_t a = 0; a <= sizeof buf; a++) {
			for (size_t b = a; b <= sizeof buf; b += 37) {
				uint32_t c = paths[k].fn(0, buf, a);
				c = paths[k].fn(c, buf + a, b - a);
				c = paths[k].fn(c, buf + b, sizeof buf - b);
				cr_assert_eq(c, want, "%s: split at %zu and %zu", paths[k].name, a, b);
			}
		}
	}
}

Test(crc, large_buffers)
{
	size_t n = (size_t)4 << 20;
	uint8_t *buf = malloc(n);
	cr_assert_not_null(buf);
	fill(buf, n, 3);
	uint32_t want = ref(0, buf, n);
	for (size_t k = 0; k < 2; k++) {
		cr_assert_eq(paths[k].fn(0, buf, n), want, "%s: 4 MiB", paths[k].name);
		/* One largest frame: header and payload, as the codec sees it. */
		cr_assert_eq(paths[k].fn(0, buf + 1, FRAME_MAX_SIZE - FRAME_CRC_SIZE),
		             ref(0, buf + 1, FRAME_MAX_SIZE - FRAME_CRC_SIZE), "%s: a frame",
		             paths[k].name);
	}
	/* All-ones and all-zeros runs: no table entry is special. */
	memset(buf, 0xff, 65536);
	cr_assert_eq(crc32_portable(0, buf, 65536), ref(0, buf, 65536));
	memset(buf, 0, 65536);
	cr_assert_eq(crc32_portable(0, buf, 65536), ref(0, buf, 65536));
	free(buf);
}

/* The tables are built on first use: many threads at once in a fresh
 * process (Criterion runs each test in its own) must all get it right. */
static void *first_use(void *arg)
{
	const uint8_t *buf = arg;
	uintptr_t bad = 0;
	for (int i = 0; i < 200; i++)
		bad += crc32_portable(0, buf, 1000) != ref(0, buf, 1000);
	return (void *)bad;
}

Test(crc, first_use_from_many_threads)
{
	static uint8_t buf[1000];
	fill(buf, sizeof buf, 4);
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, first_use, buf), 0);
	for (int i = 0; i < 8; i++) {
		void *bad;
		pthread_join(t[i], &bad);
		cr_assert_null(bad, "thread %d got %zu wrong CRCs", i, (size_t)(uintptr_t)bad);
	}
}
