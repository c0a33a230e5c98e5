/*
 * fuzz_http.c - libFuzzer target for the metrics exporter's request-head
 * parser (metrics/http_req.c), with the checks of http_check.h. A
 * violation aborts, so libFuzzer saves the input; copy it to
 * tests/fuzz/regress-http/ and the Criterion suite replays it from then on.
 * How to run: README.md, "Fuzzing".
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "http_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];
	if (http_check_input(data, size, why, sizeof why) == -EPROTO) {
		fprintf(stderr, "http_check: %s\n", why);
		abort();
	}
	return 0;
}
