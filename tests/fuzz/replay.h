/*
 * replay.h - for the Criterion tests that replay a fuzz target's stored
 * inputs through the target's own checks (tests/proto/test_corpus.c,
 * tests/metrics/test_http_req.c), and generate mutations from a fixed seed.
 *
 * Test code, Criterion assertions: a failure ends the calling test.
 */
#ifndef NET001_FUZZ_REPLAY_H
#define NET001_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* A checker as the fuzz targets use it: 0, -EPROTO with why set, or
 * -errno for the checker's own trouble. */
typedef int (*fuzz_check_fn)(const uint8_t *p, size_t n, char *why, size_t why_len);

/* Check every file of tests/fuzz/<corpus> and tests/fuzz/<regress> (under
 * $NET001_SOURCE_ROOT; a missing regress folder holds none), each from a
 * heap block of exactly its size; the corpus must hold at_least files. */
void fuzz_replay(const char *corpus, const char *regress, size_t at_least,
                 fuzz_check_fn check);

/* Check p[0..n), copied to a heap block of exactly n bytes; what names the
 * case in a failure. */
void fuzz_check_exact(fuzz_check_fn check, const uint8_t *p, size_t n, const char *what);

/* splitmix64: the mutation tests' deterministic random numbers. */
uint64_t fuzz_rnd(uint64_t *state);

/* Up to 3 mutations of buf[0..n) (a bit flipped, a byte dropped, a byte
 * inserted: from alphabet half the time when one is given), then one time
 * in four the end cut off; never past cap bytes. Returns the new length. */
size_t fuzz_mutate(uint8_t *buf, size_t n, size_t cap, const char *alphabet,
                   uint64_t *state);

#endif
