/*
 * fuzz_frame.c - libFuzzer target for the frame decoder and the AUTH and
 * ERROR payload parsers.
 *
 * Each input is a byte stream from a peer; frame_check_input walks it and
 * checks the codec's invariants (see frame_check.h). A violation aborts, so
 * libFuzzer saves the input; copy it to tests/fuzz/regress/ and the
 * Criterion suite replays it from then on. How to run: README.md,
 * "Fuzzing".
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "frame_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];
	int rc = frame_check_input(data, size, why, sizeof why);
	if (rc == -EPROTO) {
		fprintf(stderr, "frame_check: %s\n", why);
		abort();
	}
	/* -ENOMEM is the harness's own trouble, not the codec's. */
	return 0;
}
