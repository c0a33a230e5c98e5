/*
 * conn_tls.c - the glue between a connection and its TLS session
 * (net/tls.h): ciphertext in, frames out to conn_input(); frames in
 * bounded slices to records in the connection's tx queue.
 *
 * Runs on the connection's worker thread. The session's own buffers are
 * OpenSSL's; c->tls->tx owns the records until they are sent.
 */
#include <errno.h>

#include "net/broadcast.h"
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
/* Seal log bytes (the rest of a frame begun, or broadcasts) within
 * *budget. 0, or -EPROTO. */
static int seal_log(struct worker *co, struct conn *c, uint32_t slot, bool rest_only,
                    uint32_t *budget)
{
	struct iovec iov[CORE_IOV_MAX];
	int n = 0;
	uint32_t done = 0;

	if (!*budget || !bcast_gather(co, c, slot, rest_only, iov, CORE_IOV_MAX, &n))
		return 0;
	for (int i = 0; i < n && *budget; i++) {
		uint32_t k = (uint32_t)iov[i].iov_len;
		if (k > *budget)
			k = *budget;
		if (tls_write(c->tls->s, iov[i].iov_base, k) < 0)
			return -EPROTO;
		*budget -= k;
		done += k;
	}
	bcast_sent(co, c, slot, done);
	return 0;
}

int ctls_seal(struct worker *co, struct conn *c, uint32_t slot)
{
	struct tls_conn *s = c->tls->s;

	if (tls_ready(s) && c->tls->tx.bytes < TLS_SEAL_MAX) {
		/* A bounded slice per turn: a client that let a backlog grow
		 * must not hold its core for the time it takes to encrypt it
		 * all. The next send's completion brings the next slice. In
		 * stream order: the rest of a broadcast frame begun, the
		 * replies, then broadcasts. */
		uint32_t budget = TLS_SEAL_MAX;
		if (seal_log(co, c, slot, true, &budget) < 0)
			goto fail;
		while (c->out.head && budget) {
			struct oblk *b = c->out.head;
			uint32_t k = b->end - b->start;
			if (k > budget)
				k = budget;
			budget -= k;
			const uint8_t *p = (b->ref ? rbuf_data(b->ref) : b->data) + b->start;
			if (k && tls_write(s, p, k) < 0)
				goto fail;
			outq_consume(co, &c->out, k);
			if (c->out.head == b) /* partly sealed, or an emptied tail block */
				break;
		}
		if (!c->out.bytes && seal_log(co, c, slot, false, &budget) < 0)
			goto fail;
		if ((c->flags & CF_CLOSING) && !c->out.bytes && !bcast_pending(co, c))
			tls_close_notify(s);
	}
	if (ctls_drain(co, c) < 0)
		goto fail;
	return 0;
fail:
	conn_close_hard(co, c, slot);
	return -EPROTO;
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
			conn_log(co, slot, LOG_DEBUG, "close",
			         LOG_FIELDS(LOG_STR("reason", k == -EPIPE ? "tls_close_notify"
			                                                  : "tls_failure")),
			         " TLS %s", k == -EPIPE ? "close_notify" : "failure");
			conn_close(co, c, slot, 0);
		}
		break;
	}
	/* Handshake replies must leave even when no frame was answered. */
	if (tls_pending(s))
		mark_dirty(co, c, slot);
}

