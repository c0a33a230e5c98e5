/*
 * fuzz_cluster.c - libFuzzer target for the check of messages from the
 * cluster subject (net/cluster_wire.c), with the checks of
 * cluster_check.h. A violation aborts, so libFuzzer saves the input; copy
 * it to tests/fuzz/regress-cluster/ and the Criterion suite replays it
 * from then on. How to run: README.md, "Fuzzing".
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];
	if (cluster_check_input(data, size, why, sizeof why) == -EPROTO) {
		fprintf(stderr, "cluster_check: %s\n", why);
		abort();
	}
	return 0;
}
