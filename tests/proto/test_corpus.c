/*
 * Replays the fuzz corpus (tests/fuzz/corpus/) and every input the fuzzer
 * ever crashed on (tests/fuzz/regress/) through the very checks the fuzz
 * target runs (tests/fuzz/frame_check.c), so they stay regression tests in
 * the ordinary build.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/frame.h"
#include "frame_check.h"

/* Reads a whole file into a heap block of exactly its size (so the ASan
 * build sees reads past it). */
static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	cr_assert_not_null(fp, "%s: %s", path, strerror(errno));
	struct stat st;
	cr_assert_eq(fstat(fileno(fp), &st), 0);
	*n = (size_t)st.st_size;
	uint8_t *p = malloc(*n ? *n : 1);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, *n, fp), *n, "%s: short read", path);
	fclose(fp);
	return p;
}

/* Returns how many files were replayed; a missing directory is 0. */
static size_t replay_dir(const char *sub)
{
	const char *root = getenv("NET001_SOURCE_ROOT");
	cr_assert_not_null(root, "NET001_SOURCE_ROOT is set by meson test");
	char dir[4096], path[4096 + 256];
	snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", root, sub);

	DIR *d = opendir(dir);
	if (!d) {
		cr_assert_eq(errno, ENOENT, "%s: %s", dir, strerror(errno));
		return 0;
	}
	size_t count = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		size_t n;
		uint8_t *p = slurp(path, &n);
		char why[256];
		int rc = frame_check_input(p, n, why, sizeof why);
		cr_assert_eq(rc, 0, "%s/%s (%zu bytes): %s", sub, e->d_name, n,
		             rc == -EPROTO ? why : strerror(-rc));
		free(p);
		count++;
	}
	closedir(d);
	return count;
}

Test(corpus, replay, .timeout = 240)
{
	/* At least the PROTOCOL.md vectors the corpus was seeded with. */
	size_t n = replay_dir("corpus");
	cr_assert_geq(n, 6, "%zu corpus files", n);
	size_t r = replay_dir("regress");
	cr_log_info("replayed %zu corpus and %zu regression inputs", n, r);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

/*
 * A deterministic stand-in for a short fuzz run, so the ordinary build
 * exercises the checks beyond the stored corpus: streams of valid frames
 * (AUTH and ERROR among them) with bits flipped, bytes dropped or
 * inserted, and the stream cut short.
 */
Test(corpus, mutated_streams, .timeout = 240)
{
	uint64_t seed = 0x6D75746174650ull;
	uint8_t *buf = malloc(8192);
	cr_assert_not_null(buf);

	for (int iter = 0; iter < 300; iter++) {
		size_t n = 0;
		int frames = 1 + (int)(rnd(&seed) % 6);
		for (int i = 0; i < frames; i++) {
			static const uint8_t types[] = { 0x01, 0x03, 0x05, 0x06, 0x08, 0xFF, 0x42 };
			uint8_t type = types[rnd(&seed) % sizeof types];
			uint16_t len = (uint16_t)(rnd(&seed) % 400);
			uint8_t *pl = buf + n + 8;
			for (size_t k = 0; k < len; k++)
				pl[k] = (uint8_t)rnd(&seed);
			if (type == 0x06 && len > 0)
				pl[0] = (uint8_t)(rnd(&seed) % 70);
			n += frame_encode(buf + n, type, pl, len);
		}
		int muts = (int)(rnd(&seed) % 4);
		for (int m = 0; m < muts && n > 0; m++) {
			size_t at = rnd(&seed) % n;
			switch (rnd(&seed) % 3) {
			case 0:
				buf[at] ^= (uint8_t)(1u << (rnd(&seed) % 8));
				break;
			case 1:
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
				break;
			default:
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = (uint8_t)rnd(&seed);
				n++;
			}
		}
		if (rnd(&seed) % 4 == 0 && n > 0)
			n -= rnd(&seed) % n;

		uint8_t *p = malloc(n ? n : 1);
		cr_assert_not_null(p);
		memcpy(p, buf, n);
		char why[256];
		int rc = frame_check_input(p, n, why, sizeof why);
		cr_assert_eq(rc, 0, "case %d (%zu bytes): %s", iter, n,
		             rc == -EPROTO ? why : strerror(-rc));
		free(p);
	}
	free(buf);
}
