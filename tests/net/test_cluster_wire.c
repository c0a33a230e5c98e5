/*
 * The cluster message header (net/cluster_wire.c) without NATS: answers
 * for messages a node sends and for each way one can be wrong, then the
 * fuzz target's checks (tests/fuzz/cluster_check.c) over its corpus
 * (tests/fuzz/corpus-cluster/), every input the fuzzer ever failed on
 * (tests/fuzz/regress-cluster/) and mutations of good messages.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cluster_check.h"
#include "net/cluster_wire.h"
#include "proto/frame.h"
#include "replay.h"

/* A broadcast message from node "n-1" (incarnation 7, number seq) with a
 * payload of len bytes at buf; returns its size. */
static size_t message(uint8_t *buf, uint64_t seq, uint16_t len)
{
	uint8_t payload[512];
	for (uint16_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(i * 7);
	cluster_put_header(buf, CLUSTER_KIND_FRAME, "n-1", 3, 7, seq);
	return CLUSTER_HDR + frame_encode(buf + CLUSTER_HDR, FRAME_BROADCAST, payload, len);
}

Test(cluster_wire, answers)
{
	uint8_t b[1024];
	struct cluster_msg m;
	size_t n = message(b, 42, 100);
	cr_assert_null(cluster_parse(b, n, &m));
	cr_expect(m.kind == CLUSTER_KIND_FRAME && m.idlen == 3 && memcmp(m.id, "n-1", 3) == 0);
	cr_expect(m.incarnation == 7 && m.seq == 42);
	cr_expect(m.frame == b + CLUSTER_HDR && m.size == n - CLUSTER_HDR);

	cluster_put_header(b, CLUSTER_KIND_BEAT, "n-1", 3, 7, 9);
	cr_expect_null(cluster_parse(b, CLUSTER_HDR, &m), "a heartbeat");
	cr_expect_eq(m.seq, 9);
	cr_expect_not_null(cluster_parse(b, CLUSTER_HDR + 1, &m), "a heartbeat with a body");

	n = message(b, 42, 100);
	cr_expect_not_null(cluster_parse(b, CLUSTER_HDR - 1, &m), "short");
	cr_expect_not_null(cluster_parse(b, n - 1, &m), "truncated frame");
	b[n] = 0;
	cr_expect_not_null(cluster_parse(b, n + 1, &m), "a byte after the frame");
	b[n - 1] ^= 1;
	cr_expect_not_null(cluster_parse(b, n, &m), "bad CRC");
	n = message(b, 0, 100);
	cr_expect_not_null(cluster_parse(b, n, &m), "sequence number 0");
	/* one header byte wrong */
	static const struct {
		size_t at;
		uint8_t v;
		const char *what;
	} spoilt[] = {
		{ 0, 'X', "magic" },
		{ 4, 2, "version" },
		{ 5, 3, "kind" },
		{ 6, 0, "node id length 0" },
		{ 6, 33, "node id length 33" },
		{ 7, 1, "byte 7" },
		{ 25, '/', "a character outside the node id's set" },
		{ 24 + 3, 'x', "no zero padding after the node id" },
	};
	for (size_t i = 0; i < sizeof spoilt / sizeof spoilt[0]; i++) {
		n = message(b, 1, 100);
		b[spoilt[i].at] = spoilt[i].v;
		cr_expect_not_null(cluster_parse(b, n, &m), "%s", spoilt[i].what);
	}
	n = message(b, 1, 100);
	b[CLUSTER_HDR + 5] = FRAME_ECHO;
	frame_put_u32(b + n - 4, frame_crc(0, b + CLUSTER_HDR, n - CLUSTER_HDR - 4));
	cr_expect_not_null(cluster_parse(b, n, &m), "an ECHO frame, CRC good");
}

Test(cluster_wire, corpus, .timeout = 120)
{
	fuzz_replay("corpus-cluster", "regress-cluster", 4, cluster_check_input);
}

/* A short fuzz run with a fixed seed: good broadcasts and heartbeats with
 * bits flipped, bytes dropped or inserted, and cut short. */
Test(cluster_wire, mutated_messages, .timeout = 120)
{
	uint64_t seed = 0x636c7573746572ull;
	uint8_t buf[1024];
	for (int iter = 0; iter < 5000; iter++) {
		size_t n;
		if (fuzz_rnd(&seed) % 4 == 0) {
			cluster_put_header(buf, CLUSTER_KIND_BEAT, "node.a_B-9", 10, fuzz_rnd(&seed),
			                   1 + fuzz_rnd(&seed) % 1000);
			n = CLUSTER_HDR;
		} else {
			n = message(buf, 1 + fuzz_rnd(&seed) % 1000, (uint16_t)(fuzz_rnd(&seed) % 300));
		}
		n = fuzz_mutate(buf, n, sizeof buf, NULL, &seed);
		char what[32];
		snprintf(what, sizeof what, "case %d", iter);
		fuzz_check_exact(cluster_check_input, buf, n, what);
	}
}
