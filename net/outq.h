/*
 * outq.h - a connection's output: frames waiting to be sent, in order.
 *
 * Owned by the connection's worker thread. The queue owns its blocks and
 * the references they hold until the bytes are sent (outq_consume) or
 * dropped (outq_free); out_*() encode a frame at the tail and mark the
 * connection for the next flush.
 */
#ifndef NET001_NET_OUTQ_H
#define NET001_NET_OUTQ_H

#include <stdint.h>

#include "proto/frame.h"

struct worker;
struct conn;
struct rbuf;

/*
 * An output block: a run of bytes waiting to be sent on one connection.
 * Either a byte block (ref == NULL: the bytes are in data[], appended in
 * place) or a reference to [start, end) of an rbuf. Owned by the
 * connection's output queue until the bytes are sent.
 */
struct oblk {
	struct oblk *next;
	struct rbuf *ref;
	uint32_t start;    /* first unsent byte */
	uint32_t end;      /* end of queued bytes */
	uint32_t cap;      /* byte blocks: size of data[]; refs: 0 */
	uint8_t data[];
};
#define OBLK_BYTES 16384u

/* A queue of output blocks, oldest first. */
struct outq {
	struct oblk *head;
	struct oblk *tail;
	uint64_t bytes;         /* queued and not yet confirmed sent */
};

/* Room for one whole frame of size bytes (<= OBLK_BYTES) at the tail of
 * q, in a byte block: frames never straddle blocks. NULL when out of
 * memory. */
uint8_t *outq_reserve(struct worker *co, struct outq *q, uint32_t size);
/* Mark n bytes at the head as sent (or taken), freeing what is done. */
void outq_consume(struct worker *co, struct outq *q, uint32_t n);
void outq_free(struct worker *co, struct outq *q);
/* Free one block (dropping its reference). */
void blk_free(struct worker *co, struct oblk *b);

/* Output: a reference to [off, off + len) of b, which must be whole
 * frames; marks the conn dirty. Returns 0 or -ENOMEM. */
int out_append_ref(struct worker *co, struct conn *c, uint32_t slot, struct rbuf *b,
                   uint32_t off, uint32_t len);
/* A copy of [p, p + len) before everything queued (the rest of a frame
 * the stream is in the middle of). 0 or -ENOMEM. */
int out_prepend_copy(struct worker *co, struct conn *c, uint32_t slot, const uint8_t *p,
                     uint32_t len);
/* Queue the request frame f again as a reply of another type (PONG,
 * ECHO_REPLY): one copy, and a CRC derived from the request's. */
int out_reply(struct worker *co, struct conn *c, uint32_t slot, const struct frame_view *f,
              uint8_t type);
/* Queue a whole frame (header, payload copied, CRC). 0 or -ENOMEM. */
int out_frame(struct worker *co, struct conn *c, uint32_t slot, uint8_t type,
              const void *payload, uint16_t len);
int out_error(struct worker *co, struct conn *c, uint32_t slot, unsigned code);

#endif
