/*
 * outq.c - see outq.h.
 *
 * Buffer ownership: frames queued with out_frame() are encoded into byte
 * blocks owned by the queue; out_append_ref() takes a reference to an
 * rbuf that the queue drops once those bytes are sent or the connection
 * closes.
 */
#include <errno.h>
#include <string.h>

#include "net/conn.h"
#include "net/handler.h"
#include "net/outq.h"
#include "net/rbuf.h"
#include "net/worker.h"
#include "proto/msg.h"

void blk_free(struct worker *co, struct oblk *b)
{
	if (b->ref) {
		rbuf_put(co, b->ref);
		pool_put(&co->ref_pool, b);
	} else {
		pool_put(&co->blk_pool, b);
	}
}

static void outq_link(struct outq *q, struct oblk *b)
{
	b->next = NULL;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
}

int out_append_ref(struct worker *co, struct conn *c, uint32_t slot, struct rbuf *b,
                   uint32_t off, uint32_t len)
{
	struct oblk *r = pool_get(&co->ref_pool);
	if (!r)
		return -ENOMEM;
	rbuf_hold(b);
	r->ref = b;
	r->start = off;
	r->end = off + len;
	r->cap = 0;
	outq_link(&c->out, r);
	c->out.bytes += len;
	mark_dirty(co, c, slot);
	return 0;
}

int out_prepend_copy(struct worker *co, struct conn *c, uint32_t slot, const uint8_t *p,
                     uint32_t len)
{
	struct rbuf *b = rbuf_get(co, len);
	struct oblk *r = b ? pool_get(&co->ref_pool) : NULL;
	if (!r) {
		if (b)
			rbuf_put(co, b);
		return -ENOMEM;
	}
	memcpy(b->data, p, len);
	b->len = len;
	r->ref = b; /* the queue takes the one reference */
	r->start = 0;
	r->end = len;
	r->cap = 0;
	r->next = c->out.head;
	c->out.head = r;
	if (!c->out.tail)
		c->out.tail = r;
	c->out.bytes += len;
	mark_dirty(co, c, slot);
	return 0;
}

/* Every block ends on a frame boundary, so dropping whole blocks
 * (conn.c's drop_unsent) keeps the stream framed. */
uint8_t *outq_reserve(struct worker *co, struct outq *q, uint32_t size)
{
	struct oblk *t = q->tail;

	if (!t || t->ref || t->cap - t->end < size) {
		t = pool_get(&co->blk_pool);
		if (!t)
			return NULL;
		t->ref = NULL;
		t->start = t->end = 0;
		t->cap = OBLK_BYTES;
		outq_link(q, t);
	}
	uint8_t *p = t->data + t->end;
	t->end += size;
	q->bytes += size;
	return p;
}

static uint8_t *out_reserve(struct worker *co, struct conn *c, uint32_t slot, uint32_t size)
{
	uint8_t *p = outq_reserve(co, &c->out, size);
	if (p)
		mark_dirty(co, c, slot);
	return p;
}

/* A frame of its own, for the rare one bigger than a block (only with
 * provided buffers larger than a block). */
static int out_big_frame(struct worker *co, struct conn *c, uint32_t slot, uint8_t type,
                         const void *payload, uint16_t len)
{
	struct rbuf *b = rbuf_get(co, FRAME_OVERHEAD + (uint32_t)len);
	if (!b)
		return -ENOMEM;
	b->len = (uint32_t)frame_encode(b->data, type, payload, len);
	int r = out_append_ref(co, c, slot, b, 0, b->len);
	rbuf_put(co, b);
	return r;
}

int out_frame(struct worker *co, struct conn *c, uint32_t slot, uint8_t type,
              const void *payload, uint16_t len)
{
	uint32_t size = FRAME_OVERHEAD + (uint32_t)len;
	if (size > OBLK_BYTES)
		return out_big_frame(co, c, slot, type, payload, len);
	uint8_t *p = out_reserve(co, c, slot, size);
	if (!p)
		return -ENOMEM;
	frame_encode(p, type, payload, len);
	return 0;
}

int out_reply(struct worker *co, struct conn *c, uint32_t slot, const struct frame_view *f,
              uint8_t type)
{
	if (f->size > OBLK_BYTES)
		return out_big_frame(co, c, slot, type, f->payload, f->len);
	uint8_t *p = out_reserve(co, c, slot, f->size);
	if (!p)
		return -ENOMEM;
	/* The request with a new type byte: its CRC follows from the old. */
	memcpy(p, f->frame, f->size);
	p[5] = type;
	uint8_t *crc = p + FRAME_HEADER_SIZE + f->len;
	frame_put_u32(crc, reply_crc(co, p, frame_get_u32(crc), f->type, f->len));
	return 0;
}

int out_error(struct worker *co, struct conn *c, uint32_t slot, unsigned code)
{
	uint8_t p[MSG_ERROR_MAX];
	size_t n = msg_error_build(p, sizeof p, (uint16_t)code, msg_error_text(code));
	metrics_error_sent(&co->m, code);
	metrics_frames_sent(&co->m, FRAME_ERROR, 1);
	return out_frame(co, c, slot, FRAME_ERROR, p, (uint16_t)n);
}

void outq_consume(struct worker *co, struct outq *q, uint32_t n)
{
	q->bytes -= n;
	while (n) {
		struct oblk *b = q->head;
		uint32_t k = b->end - b->start;
		if (k > n) {
			b->start += n;
			return;
		}
		n -= k;
		q->head = b->next;
		if (!q->head)
			q->tail = NULL;
		blk_free(co, b);
	}
	/* A byte block fully sent but still the tail: free it too, so an
	 * idle connection holds no output memory. */
	struct oblk *b = q->head;
	if (b && b == q->tail && b->start == b->end) {
		q->head = q->tail = NULL;
		blk_free(co, b);
	}
}

void outq_free(struct worker *co, struct outq *q)
{
	while (q->head) {
		struct oblk *b = q->head;
		q->head = b->next;
		blk_free(co, b);
	}
	q->tail = NULL;
	q->bytes = 0;
}

