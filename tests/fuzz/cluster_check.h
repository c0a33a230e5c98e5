/*
 * cluster_check.h - invariants of the cluster message checker
 * (net/cluster_wire.h), over arbitrary bytes from NATS.
 *
 * Shared by the libFuzzer target (tests/fuzz/fuzz_cluster.c) and the
 * Criterion test that replays its corpus (tests/net/test_cluster_wire.c).
 * Any thread may call it; it allocates scratch memory per call and frees it.
 */
#ifndef NET001_CLUSTER_CHECK_H
#define NET001_CLUSTER_CHECK_H

#include <stddef.h>
#include <stdint.h>

/*
 * Check p[0..n) as one message from the cluster subject, read from a heap
 * block of exactly n bytes: a refused message has a reason, and anything
 * shorter than the header is refused; an accepted one has a known kind, a
 * node id of 1..32 allowed characters at byte 24, a sequence number above
 * 0, a header that cluster_put_header rewrites to exactly its bytes, and
 * either nothing after it (a heartbeat) or exactly one valid BROADCAST
 * frame (an independent frame_decode of the rest).
 *
 * Returns 0, -EPROTO with a one-line description in why[0..why_len), or
 * -ENOMEM.
 */
int cluster_check_input(const uint8_t *p, size_t n, char *why, size_t why_len);

#endif
