/*
 * Replays the fuzz corpus (tests/fuzz/corpus/) and every input the fuzzer
 * ever crashed on (tests/fuzz/regress/) through the very checks the fuzz
 * target runs (tests/fuzz/frame_check.c), so they stay regression tests in
 * the ordinary build.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "frame_check.h"
#include "replay.h"

Test(corpus, replay, .timeout = 240)
{
	/* At least the PROTOCOL.md vectors the corpus was seeded with. */
	fuzz_replay("corpus", "regress", 6, frame_check_input);
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
		int frames = 1 + (int)(fuzz_rnd(&seed) % 6);
		for (int i = 0; i < frames; i++) {
			static const uint8_t types[] = { 0x01, 0x03, 0x05, 0x06, 0x08, 0xFF, 0x42 };
			uint8_t type = types[fuzz_rnd(&seed) % sizeof types];
			uint16_t len = (uint16_t)(fuzz_rnd(&seed) % 400);
			uint8_t *pl = buf + n + 8;
			for (size_t k = 0; k < len; k++)
				pl[k] = (uint8_t)fuzz_rnd(&seed);
			if (type == 0x06 && len > 0)
				pl[0] = (uint8_t)(fuzz_rnd(&seed) % 70);
			n += frame_encode(buf + n, type, pl, len);
		}
		n = fuzz_mutate(buf, n, 8192, NULL, &seed);
		char what[32];
		snprintf(what, sizeof what, "case %d", iter);
		fuzz_check_exact(frame_check_input, buf, n, what);
	}
	free(buf);
}
