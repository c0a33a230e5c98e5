/*
 * cluster_wire.h - the header of a cluster message (PROTOCOL.md section
 * 7): writing it, and checking a message that came from NATS. Pure
 * functions over bytes, apart from the bridge's threads (net/cluster.c),
 * so a fuzz target and the unit tests can drive them.
 */
#ifndef NET001_CLUSTER_WIRE_H
#define NET001_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

/*
 * A message on the cluster subject: this header, big-endian like the
 * frame, then (kind CLUSTER_KIND_FRAME) one whole NET-001 BROADCAST frame.
 *
 *    0  magic "N1CB"            16  sequence number (8), from 1
 *    4  version (1)             24  node id (32, zero-padded)
 *    5  kind (1)                56  frame (kind 1 only)
 *    6  node id length (1)
 *    7  0
 *    8  incarnation (8): random at each start of the node
 *
 * A heartbeat (kind 2, header only, once a second) carries the last
 * sequence number the node used, so a receiver also learns of broadcasts
 * lost at the end of a burst.
 */
#define CLUSTER_MAGIC       "N1CB"
#define CLUSTER_VERSION     1
#define CLUSTER_KIND_FRAME  1
#define CLUSTER_KIND_BEAT   2
#define CLUSTER_HDR         56u
#define CLUSTER_ID_MAX      32u

/* A message checked by cluster_parse: pointers into its bytes. */
struct cluster_msg {
	uint8_t kind;
	uint8_t idlen;
	const char *id;          /* idlen bytes of A-Z a-z 0-9 . _ - */
	uint64_t incarnation, seq;
	const uint8_t *frame;    /* kind FRAME: the BROADCAST frame */
	uint32_t size;           /* its size */
};

/* Write the 56-byte header at p: kind, the node id (idlen bytes, 1..32,
 * zero-padded), its incarnation and the sequence number. */
void cluster_put_header(uint8_t *p, uint8_t kind, const char *id, uint8_t idlen,
                        uint64_t incarnation, uint64_t seq);

/*
 * Check the message at p[0..n): the header (magic, version, kind, node id
 * length, padding and characters, a sequence number above 0), and for a
 * broadcast the frame as a client's would be (magic, version, length,
 * CRC, type BROADCAST, nothing after it); a heartbeat has no body.
 * Returns NULL with *m filled, or a short reason. Never reads past p[n-1].
 */
const char *cluster_parse(const uint8_t *p, size_t n, struct cluster_msg *m);

#endif
