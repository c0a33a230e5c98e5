/*
 * replay.c - see replay.h.
 */
#include "replay.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A whole file in a heap block of exactly its size (so a sanitizer build
 * sees reads past it). */
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

static void report(int rc, const char *what, size_t n, const char *why)
{
	cr_assert_eq(rc, 0, "%s (%zu bytes): %s", what, n, rc == -EPROTO ? why : strerror(-rc));
}

void fuzz_check_exact(fuzz_check_fn check, const uint8_t *p, size_t n, const char *what)
{
	uint8_t *q = malloc(n ? n : 1);
	cr_assert_not_null(q);
	memcpy(q, p, n);
	char why[256];
	int rc = check(q, n, why, sizeof why);
	free(q);
	report(rc, what, n, why);
}

static size_t replay_dir(const char *sub, fuzz_check_fn check)
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
		snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
		char full[sizeof dir + 256];
		snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
		size_t n;
		uint8_t *p = slurp(full, &n);
		char why[256];
		int rc = check(p, n, why, sizeof why);
		free(p);
		report(rc, path, n, why);
		count++;
	}
	closedir(d);
	return count;
}

void fuzz_replay(const char *corpus, const char *regress, size_t at_least,
                 fuzz_check_fn check)
{
	size_t n = replay_dir(corpus, check);
	cr_assert_geq(n, at_least, "%zu files in tests/fuzz/%s", n, corpus);
	size_t r = replay_dir(regress, check);
	cr_log_info("replayed %zu corpus and %zu regression inputs", n, r);
}

uint64_t fuzz_rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

size_t fuzz_mutate(uint8_t *buf, size_t n, size_t cap, const char *alphabet,
                   uint64_t *state)
{
	int muts = (int)(fuzz_rnd(state) % 4);
	for (int m = 0; m < muts && n > 0; m++) {
		size_t at = fuzz_rnd(state) % n;
		switch (fuzz_rnd(state) % 3) {
		case 0:
			buf[at] ^= (uint8_t)(1u << (fuzz_rnd(state) % 8));
			break;
		case 1:
			memmove(buf + at, buf + at + 1, n - at - 1);
			n--;
			break;
		default:
			if (n == cap)
				break;
			memmove(buf + at + 1, buf + at, n - at);
			buf[at] = alphabet && fuzz_rnd(state) % 2
			                  ? (uint8_t)alphabet[fuzz_rnd(state) % strlen(alphabet)]
			                  : (uint8_t)fuzz_rnd(state);
			n++;
		}
	}
	if (fuzz_rnd(state) % 4 == 0 && n > 0)
		n -= fuzz_rnd(state) % n;
	return n;
}
