/*
 * conn_tls.c - the glue between a connection and its TLS session
 * (net/tls.h): ciphertext in, frames out to conn_input(); frames in
 * bounded slices to records in the connection's tx queue.
 *
 * Runs on the connection's worker thread. The session's own buffers are
 * OpenSSL's; c->tls->tx owns the records until they are sent.
 */
#include <errno.h>

#include "net/conn.h"
#include "net/rbuf.h"
#include "net/tls.h"
#include "net/worker.h"

/* Records, handshake messages and alerts waiting in the session go to the
 * send queue. 0, or -ENOMEM. */
static int ctls_drain(struct worker *co, struct conn *c)
{
	struct tls_conn *s = c->tls->s;
	size_t n;

	while ((n = tls_pending(s)) > 0) {
		uint32_t k = n > OBLK_BYTES ? OBLK_BYTES : (uint32_t)n;
		uint8_t *p = outq_reserve(co, &c->tls->tx, k);
		if (!p)
			return -ENOMEM;
		size_t got = tls_take(s, p, k);
		if (got < k) { /* cannot happen with a memory BIO; keep counts right */
			c->tls->tx.tail->end -= k - (uint32_t)got;
			c->tls->tx.bytes -= k - got;
			break;
		}
	}
	return 0;
}

/*
 * Before a send: encrypt queued frames (one record per block, so a
 * pipeline of replies costs one record, not one per frame), and after the
 * last of a closing connection's frames, its close_notify. Nothing is
 * encrypted while the handshake is still going.
 */
int ctls_seal(struct worker *co, struct conn *c, uint32_t slot)
{
	struct tls_conn *s = c->tls->s;

	if (tls_ready(s)) {
		/* A bounded slice per turn: a client that let a backlog grow
		 * must not hold its core for the time it takes to encrypt it
		 * all. The next send's completion brings the next slice. */
		uint32_t budget = TLS_SEAL_MAX;
		while (c->out.head && budget && c->tls->tx.bytes < TLS_SEAL_MAX) {
			struct oblk *b = c->out.head;
			uint32_t k = b->end - b->start;
			if (k > budget)
				k = budget;
			budget -= k;
			const uint8_t *p = (b->ref ? rbuf_data(b->ref) : b->data) + b->start;
			if (k && tls_write(s, p, k) < 0) {
				conn_close_hard(co, c, slot);
				return -EPROTO;
			}
			outq_consume(co, &c->out, k);
			if (c->out.head == b) /* partly sealed, or an emptied tail block */
				break;
		}
		if ((c->flags & CF_CLOSING) && !c->out.bytes)
			tls_close_notify(s);
	}
	if (ctls_drain(co, c) < 0) {
		conn_close_hard(co, c, slot);
		return -EPROTO;
	}
	return 0;
}

/* Decrypt what arrived and feed the frames in it to conn_input(). */
void ctls_input(struct worker *co, struct conn *c, uint32_t slot,
                      const uint8_t *p, size_t n)
{
	struct tls_conn *s = c->tls->s;

	if (tls_feed(s, p, n) < 0) {
		conn_close_hard(co, c, slot);
		return;
	}
	while (!(c->flags & CF_CLOSING)) {
		int k = tls_read(s, co->tls_plain, TLS_PLAIN_MAX);
		if (k > 0) {
			conn_input(co, c, slot, co->tls_plain, (size_t)k);
			continue;
		}
		if (k < 0) {
			/* A failed handshake or a bad record: what the session
			 * has to say (an alert) goes out, then the close. */
			log_limited(&co->ll, co->now_s, LOG_DEBUG, "core %u: slot %u TLS %s",
			            co->id, slot, k == -EPIPE ? "close_notify" : "failure");
			conn_close(co, c, slot, 0);
		}
		break;
	}
	/* Handshake replies must leave even when no frame was answered. */
	if (tls_pending(s))
		mark_dirty(co, c, slot);
}

