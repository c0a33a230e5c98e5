/*
 * frame_check.h - invariants of the frame codec and payload parsers,
 * checked over arbitrary bytes.
 *
 * Shared by the libFuzzer target (tests/fuzz/fuzz_frame.c) and the Criterion
 * test that replays the committed corpus (tests/proto/test_corpus.c), so a
 * fuzzer finding and its regression test check exactly the same things.
 *
 * Any thread may call it. It allocates scratch memory per call and frees it
 * before returning; it keeps no pointer into the input.
 */
#ifndef NET001_FRAME_CHECK_H
#define NET001_FRAME_CHECK_H

#include <stddef.h>
#include <stdint.h>

/*
 * Treat p[0..n) as a byte stream from a peer and check, for several
 * decoder limits:
 *  - walking it with frame_decode (skip a bad-CRC frame by its size;
 *    on bad magic, version or length, resync one byte further), every
 *    answer is consistent with the bytes (magic, version, length, an
 *    independent bitwise CRC-32), consumed sizes stay inside the input and
 *    payload views inside the frame;
 *  - a decoded frame re-encodes (frame_encode, in place and not, and
 *    frame_wrap) to exactly its bytes, and each of its prefixes is
 *    "need more" with the exact count;
 *  - feeding the same bytes through a reassembly buffer one byte at a time
 *    and in chunks, with and without honouring `need`, gives the very same
 *    sequence of answers at the same offsets;
 *  - msg_auth_parse and msg_error_parse, on the whole input and on every
 *    AUTH or ERROR payload decoded, agree with an independent reading of
 *    PROTOCOL.md section 2, and their builders reproduce the bytes.
 *
 * Returns 0 when everything holds, -EPROTO with a one-line description of
 * the first violation in why[0..why_len), or -ENOMEM.
 */
int frame_check_input(const uint8_t *p, size_t n, char *why, size_t why_len);

#endif
