/*
 * conn.c - one connection's life on its core: receive and frame in place,
 * the output queue and its single in-flight send, and closing (the state
 * diagram is in engine.h).
 *
 * Everything here runs on the connection's core thread.
 *
 * Buffer ownership, one sentence per hand-off:
 *  - a provided buffer named by a recv completion belongs to this file
 *    until conn_on_recv() puts it back, before returning: frames decoded
 *    in it are views that live only during handle_frame();
 *  - a frame that straddles reads is copied into c->rx (an rbuf), which the
 *    connection owns; handle_frame() may take its own reference to it;
 *  - frames queued with out_frame() are encoded into byte blocks owned by
 *    the output queue; out_append_ref() takes a reference to an rbuf that
 *    the queue drops once those bytes are sent or the connection closes.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "net/worker.h"
#include "proto/msg.h"
#include "net/tls.h"

/* Graceful close: how long the peer gets to read what we send and hang up. */
#define CLOSE_LINGER_S 5u
/* A TLS handshake must finish this soon after accept. */
#define TLS_HANDSHAKE_S 10u
#define OPEN_NONE UINT32_MAX

/* ---- shared buffers ------------------------------------------------------ */

static struct rbuf *rbuf_new(struct worker *co, unsigned cls)
{
	struct rbuf *b = pool_get(&co->rbuf_pool[cls]);
	if (!b)
		return NULL;
	b->refs = 1;
	b->len = 0;
	b->cap = (uint32_t)(co->rbuf_pool[cls].size - sizeof *b);
	b->cls = (uint8_t)cls;
	b->origin = (uint16_t)co->id;
	atomic_init(&b->xrefs, 0);
	b->shared = NULL;
	return b;
}

struct rbuf *rbuf_get(struct worker *co, uint32_t size)
{
	if (size > FRAME_MAX_SIZE)
		return NULL;
	return rbuf_new(co, size <= RBUF_SMALL_CAP ? RBUF_SMALL
	                  : size <= RBUF_MID_CAP ? RBUF_MID : RBUF_LARGE);
}

struct rbuf *rbuf_proxy(struct worker *co, struct rbuf *shared)
{
	struct rbuf *p = rbuf_new(co, RBUF_PROXY);
	if (p) {
		p->shared = shared;
		p->len = shared->len;
	}
	return p;
}

void rbuf_put(struct worker *co, struct rbuf *b)
{
	if (--b->refs)
		return;
	if (b->shared) {
		struct rbuf *s = b->shared;
		pool_put(&co->rbuf_pool[RBUF_PROXY], b);
		bcast_xrelease(co, s);
	} else if (atomic_load_explicit(&b->xrefs, memory_order_relaxed)) {
		bcast_xrelease(co, b); /* other cores may still hold it */
	} else {
		pool_put(&co->rbuf_pool[b->cls], b);
	}
}

/* ---- output queue --------------------------------------------------------- */

static void mark_dirty(struct worker *co, struct conn *c, uint32_t slot)
{
	if (c->flags & CF_DIRTY)
		return;
	c->flags |= CF_DIRTY;
	co->dirty[co->ndirty++] = slot;
}

static void blk_free(struct worker *co, struct oblk *b)
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

/*
 * Room for one whole frame of size bytes at the tail of the output, in a
 * byte block (size <= OBLK_BYTES). Frames never straddle blocks: every
 * block ends on a frame boundary, so dropping whole blocks
 * (out_drop_unsent) keeps the stream framed. NULL when out of memory.
 */
static uint8_t *outq_reserve(struct worker *co, struct outq *q, uint32_t size)
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

void conn_error(struct worker *co, struct conn *c, uint32_t slot, unsigned code)
{
	if (msg_error_closes(code)) {
		conn_close(co, c, slot, code);
		return;
	}
	reply_started(co, c);
	if (out_error(co, c, slot, code) < 0)
		conn_close_hard(co, c, slot);
}

/* Everything not yet confirmed sent: frames, and under TLS records. */
static uint64_t unsent(const struct conn *c)
{
	return c->out.bytes + (c->tls ? c->tls->tx.bytes : 0);
}

static void stop_recv(struct worker *co, struct conn *c, uint32_t slot);

void conn_check_backlog(struct worker *co, struct conn *c, uint32_t slot)
{
	uint64_t n = unsent(c);
	if (n <= co->out_high || (c->flags & CF_CLOSING))
		return;
	if (n > co->cfg->max_output) {
		metrics_inc(&co->m.slow_consumer_closes);
		log_limited(&co->ll, co->now_s, LOG_DEBUG,
		            "core %u: slot %u slow consumer (%llu bytes unsent)", co->id,
		            slot, (unsigned long long)n);
		conn_close(co, c, slot, ERR_SLOW_CONSUMER);
		return;
	}
	if (!(c->flags & CF_OUTFULL)) {
		/* Replies (and errors) pile up: read no more requests until
		 * the client takes them; its TCP window then holds it back. */
		c->flags |= CF_OUTFULL;
		stop_recv(co, c, slot);
		log_limited(&co->ll, co->now_s, LOG_DEBUG,
		            "core %u: slot %u not read while %llu bytes are unsent", co->id,
		            slot, (unsigned long long)n);
	}
}

/* Mark n bytes at the head as sent (or taken), freeing what is done. */
static void outq_consume(struct worker *co, struct outq *q, uint32_t n)
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

/*
 * Drop every queued byte not part of the send in flight, or, with none in
 * flight, all but the rest of a block a partial send began: either way
 * what stays ends on a frame boundary.
 */
static void out_drop_unsent(struct worker *co, struct conn *c)
{
	struct outq *q = &c->out;
	struct oblk **pp = &q->head, *last = NULL;
	uint32_t keep = 0;

	/* With TLS the plaintext queue is never being sent (its bytes are
	 * encrypted into tls->tx first), so all of it can go: what was
	 * already encrypted stays, and the stream of records stays whole. */
	if (c->tls)
		keep = 0;
	else if (c->flags & CF_SEND)
		keep = c->inflight;
	else if (q->head && q->head->start > 0)
		keep = q->head->end - q->head->start;

	q->bytes = keep;
	while (*pp) {
		struct oblk *b = *pp;
		uint32_t k = b->end - b->start;
		if (keep == 0) {
			*pp = b->next;
			blk_free(co, b);
			continue;
		}
		if (k > keep)
			b->end = b->start + keep; /* bytes queued after the send began */
		keep -= (k > keep ? keep : k);
		last = b;
		pp = &b->next;
	}
	q->tail = last;
}

static void outq_free(struct worker *co, struct outq *q)
{
	while (q->head) {
		struct oblk *b = q->head;
		q->head = b->next;
		blk_free(co, b);
	}
	q->tail = NULL;
	q->bytes = 0;
}

/* ---- open list (broadcast eligibility) ------------------------------------ */

static void open_add(struct worker *co, struct conn *c, uint32_t slot)
{
	c->open_pos = co->nopen;
	co->open[co->nopen++] = slot;
}

static void open_remove(struct worker *co, struct conn *c)
{
	if (c->open_pos == OPEN_NONE)
		return;
	uint32_t last = co->open[--co->nopen];
	co->open[c->open_pos] = last;
	co->conns[last].open_pos = c->open_pos;
	c->open_pos = OPEN_NONE;
}

/* ---- submissions ---------------------------------------------------------- */

static void arm_recv(struct worker *co, struct conn *c, uint32_t slot)
{
	struct io_uring_sqe *sqe = worker_sqe(co);
	io_uring_prep_recv_multishot(sqe, (int)slot, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = co->br.bgid;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV, c->gen, slot));
	c->flags |= CF_RECV;
}

/* Arm a receive unless one is armed or something says not to read. */
static void maybe_recv(struct worker *co, struct conn *c, uint32_t slot)
{
	if ((c->flags & CF_OPEN) &&
	    !(c->flags & (CF_RECV | CF_HARD | CF_EOF | CF_NOBUF | CF_HELD)))
		arm_recv(co, c, slot);
}

/* End the multishot recv (it completes with -ECANCELED and is not
 * re-armed while a CF_HELD reason stands); what it already read is
 * handled as usual. */
static void stop_recv(struct worker *co, struct conn *c, uint32_t slot)
{
	if (!(c->flags & CF_RECV))
		return;
	struct io_uring_sqe *sqe = worker_sqe(co);
	io_uring_prep_cancel64(sqe, ud_pack(OP_RECV, c->gen, slot), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, c->gen, slot));
}

/* What goes on the wire: the frames, or under TLS the records. */
static struct outq *sendq(struct conn *c)
{
	return c->tls ? &c->tls->tx : &c->out;
}

static void send_start(struct worker *co, struct conn *c, uint32_t slot)
{
	struct io_uring_sqe *sqe;
	struct oblk *b = sendq(c)->head;
	uint32_t total = 0;

	if (!b->next) {
		/* One block: a plain send, no iovec. */
		total = b->end - b->start;
		const uint8_t *p = (b->ref ? rbuf_data(b->ref) : b->data) + b->start;
		sqe = worker_sqe(co);
		io_uring_prep_send(sqe, (int)slot, p, total, MSG_NOSIGNAL);
	} else {
		if (co->nscratch == CORE_SEND_SCRATCH)
			worker_submit(co);
		struct msghdr *m = &co->scratch_msg[co->nscratch];
		struct iovec *iov = co->scratch_iov[co->nscratch];
		co->nscratch++;
		int n = 0;
		for (; b && n < CORE_IOV_MAX; b = b->next) {
			uint32_t k = b->end - b->start;
			if (!k)
				continue;
			iov[n].iov_base = (uint8_t *)(b->ref ? rbuf_data(b->ref) : b->data) + b->start;
			iov[n].iov_len = k;
			total += k;
			n++;
		}
		memset(m, 0, sizeof *m);
		m->msg_iov = iov;
		m->msg_iovlen = (size_t)n;
		sqe = worker_sqe(co);
		io_uring_prep_sendmsg(sqe, (int)slot, m, MSG_NOSIGNAL);
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_SEND, c->gen, slot));
	c->flags |= CF_SEND;
	c->inflight = total;
}

/*
 * Shutdown and cancel name the slot, and the kernel may run them late (a
 * shutdown goes to an io-wq worker). Each posts a completion that
 * conn_on_ctl() counts back, and the slot is not freed (closed and handed
 * to the next accept) while one is in flight: otherwise it could land on
 * the slot's next connection.
 */
static void submit_shutdown(struct worker *co, struct conn *c, uint32_t slot)
{
	struct io_uring_sqe *sqe = worker_sqe(co);
	io_uring_prep_shutdown(sqe, (int)slot, SHUT_WR);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_CTL, c->gen, slot));
	c->flags |= CF_SHUT;
	c->ctl++;
}

static void submit_cancel(struct worker *co, struct conn *c, uint32_t slot)
{
	struct io_uring_sqe *sqe = worker_sqe(co);
	/* Every request on this descriptor: the multishot recv and a send
	 * stuck on a peer that does not read. */
	io_uring_prep_cancel_fd(sqe, (int)slot,
	                        IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD_FIXED);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_CTL, c->gen, slot));
	c->flags |= CF_CANCEL;
	c->ctl++;
}

/* ---- TLS ----------------------------------------------------------------------- */

static void conn_input(struct worker *co, struct conn *c, uint32_t slot,
                       const uint8_t *p, size_t n);

/* Records, handshake messages and alerts waiting in the session go to the
 * send queue. 0, or -ENOMEM. */
static int tls_drain(struct worker *co, struct conn *c)
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
 * Before a send: encrypt every queued frame (one record per block, so a
 * pipeline of replies costs one record, not one per frame), and after the
 * last of a closing connection's frames, its close_notify. Nothing is
 * encrypted while the handshake is still going. Returns 0, or -EPROTO
 * after closing the connection hard.
 */
static int tls_seal(struct worker *co, struct conn *c, uint32_t slot)
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
	if (tls_drain(co, c) < 0) {
		conn_close_hard(co, c, slot);
		return -EPROTO;
	}
	return 0;
}

/* Decrypt what arrived and feed the frames in it to conn_input(). */
static void tls_input(struct worker *co, struct conn *c, uint32_t slot,
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

/* ---- life cycle ------------------------------------------------------------- */

void conn_accepted(struct worker *co, uint32_t slot)
{
	struct conn *c = &co->conns[slot];
	const struct config *cfg = co->cfg;
	uint32_t gen = c->gen;

	uint32_t dirty = c->flags & CF_DIRTY; /* still on this iteration's flush list */

	/* A stale entry on the nobuf list is skipped: CF_NOBUF is cleared. */
	memset(c, 0, sizeof *c);
	c->gen = gen;
	c->flags = CF_OPEN | dirty;
	c->open_pos = OPEN_NONE;
	c->last_frame_s = co->now_s;
	co->nlive++;

	uint32_t n = atomic_fetch_add_explicit(&co->srv->conns, 1, memory_order_relaxed) + 1;
	if (n > cfg->max_connections || co->draining) {
		atomic_fetch_sub_explicit(&co->srv->conns, 1, memory_order_relaxed);
		c->flags |= CF_REJECTED;
		metrics_inc(&co->m.connections_rejected);
		arm_recv(co, c, slot);
		conn_close(co, c, slot, co->draining ? ERR_SHUTTING_DOWN : ERR_SERVER_FULL);
		log_limited(&co->ll, co->now_s, LOG_DEBUG, "core %u: slot %u rejected (%u open)",
		            co->id, slot, n - 1);
		return;
	}
	metrics_inc(&co->m.connections_accepted);
	metrics_inc(&co->m.connections_active);
	if (co->tls) {
		c->tls = calloc(1, sizeof *c->tls);
		if (c->tls && !(c->tls->s = tls_conn_new(co->tls))) {
			free(c->tls);
			c->tls = NULL;
		}
		if (!c->tls) {
			log_limited(&co->ll, co->now_s, LOG_ERROR, "core %u: TLS session: out of memory",
			            co->id);
			conn_close_hard(co, c, slot);
			return;
		}
	}
	bucket_init(&c->rl, cfg->rate_limit, co->now_ns);
	open_add(co, c, slot);
	uint32_t due = cfg->idle_timeout ? cfg->idle_timeout + 1 : UINT32_MAX;
	if (c->tls && due > TLS_HANDSHAKE_S)
		due = TLS_HANDSHAKE_S;
	if (due != UINT32_MAX)
		wheel_add(&co->wheel, slot, co->now_s + due);
	arm_recv(co, c, slot);
}

/* Free the slot once nothing is in flight. */
static void conn_maybe_free(struct worker *co, struct conn *c, uint32_t slot)
{
	if (!(c->flags & CF_HARD) || (c->flags & (CF_RECV | CF_SEND)) || c->ctl)
		return;

	struct io_uring_sqe *sqe = worker_sqe(co);
	io_uring_prep_close_direct(sqe, slot);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, c->gen, slot));

	outq_free(co, &c->out);
	if (c->tls) {
		outq_free(co, &c->tls->tx);
		tls_conn_free(c->tls->s);
		free(c->tls);
		c->tls = NULL;
	}
	if (c->rx)
		rbuf_put(co, c->rx);
	c->rx = NULL;
	wheel_del(&co->wheel, slot);
	open_remove(co, c);
	if (!(c->flags & CF_REJECTED)) {
		atomic_fetch_sub_explicit(&co->srv->conns, 1, memory_order_relaxed);
		metrics_dec(&co->m.connections_active);
	}
	/* Leave CF_DIRTY/CF_NOBUF alone: the lists that hold the slot check
	 * the generation. */
	c->flags &= CF_DIRTY | CF_NOBUF;
	c->gen = (c->gen + 1) & 0xFFFFFF;
	co->nlive--;
}

void conn_close_hard(struct worker *co, struct conn *c, uint32_t slot)
{
	c->flags |= CF_CLOSING | CF_HARD;
	open_remove(co, c);
	out_drop_unsent(co, c);
	if ((c->flags & (CF_RECV | CF_SEND)) && !(c->flags & CF_CANCEL))
		submit_cancel(co, c, slot);
	conn_maybe_free(co, c, slot);
}

void conn_close(struct worker *co, struct conn *c, uint32_t slot, unsigned code)
{
	if (c->flags & CF_CLOSING)
		return;
	/* A closing connection reads (and drops) its input again. */
	c->flags = (c->flags | CF_CLOSING) & ~CF_HELD;
	open_remove(co, c);
	if (c->rx) {
		rbuf_put(co, c->rx);
		c->rx = NULL;
	}
	if (code) {
		/* A stuck reader must not keep its backlog: only what the
		 * kernel already has stays, then the ERROR frame. */
		if (code == ERR_SLOW_CONSUMER)
			out_drop_unsent(co, c);
		if (out_error(co, c, slot, code) < 0) {
			conn_close_hard(co, c, slot);
			return;
		}
	}
	wheel_add(&co->wheel, slot, co->now_s + CLOSE_LINGER_S);
	mark_dirty(co, c, slot);
}

/* After output drained on a closing connection: FIN, then wait for EOF. */
static void conn_closing_progress(struct worker *co, struct conn *c, uint32_t slot)
{
	if (!(c->flags & CF_CLOSING) || (c->flags & CF_HARD))
		return;
	if (unsent(c) || (c->flags & CF_SEND))
		return;
	if (c->flags & CF_EOF) {
		conn_close_hard(co, c, slot);
		return;
	}
	if (!(c->flags & CF_SHUT))
		submit_shutdown(co, c, slot);
	if (!(c->flags & (CF_RECV | CF_NOBUF)))
		arm_recv(co, c, slot); /* keep reading until the peer's EOF */
}

void conn_on_timer(struct worker *co, uint32_t slot)
{
	struct conn *c = &co->conns[slot];
	if (!(c->flags & CF_OPEN))
		return;
	if (c->flags & CF_CLOSING) {
		conn_close_hard(co, c, slot);
		return;
	}
	if (c->tls && !tls_ready(c->tls->s)) {
		/* No session yet, so no ERROR to send: a handshake that
		 * stalls is dropped on a deadline of its own. */
		uint32_t due = c->last_frame_s + TLS_HANDSHAKE_S;
		if (due > co->now_s) {
			wheel_add(&co->wheel, slot, due);
			return;
		}
		log_limited(&co->ll, co->now_s, LOG_DEBUG,
		            "core %u: slot %u TLS handshake not done in %u s", co->id, slot,
		            TLS_HANDSHAKE_S);
		conn_close_hard(co, c, slot);
		return;
	}
	if (co->cfg->idle_timeout == 0)
		return;
	if (c->flags & CF_PAUSED) {
		/* Not reading is our doing, not the peer's idleness. */
		wheel_add(&co->wheel, slot, co->now_s + co->cfg->idle_timeout);
		return;
	}
	/* Whole seconds on both sides: one more guarantees at least the
	 * configured time has passed. */
	uint32_t due = c->last_frame_s + co->cfg->idle_timeout + 1;
	if (due > co->now_s) {
		wheel_add(&co->wheel, slot, due);
		return;
	}
	log_limited(&co->ll, co->now_s, LOG_DEBUG, "core %u: slot %u idle timeout", co->id, slot);
	conn_close(co, c, slot, ERR_IDLE_TIMEOUT);
}

/* ---- input ------------------------------------------------------------------ */

/* A framing error from the decoder: send it; close unless it is BAD_CRC. */
static bool frame_error(struct worker *co, struct conn *c, uint32_t slot, int err)
{
	unsigned code = err == FRAME_EMAGIC ? ERR_BAD_MAGIC
	              : err == FRAME_EVERSION ? ERR_BAD_VERSION
	              : err == FRAME_ETOOLARGE ? ERR_FRAME_TOO_LARGE : ERR_BAD_CRC;
	if (code != ERR_BAD_CRC)
		log_limited(&co->ll, co->now_s, LOG_DEBUG, "core %u: slot %u %s, closing",
		            co->id, slot, msg_error_name(code));
	conn_error(co, c, slot, code);
	return !(c->flags & CF_CLOSING);
}

/*
 * Feed bytes into the partial frame in c->rx. Returns how many bytes of p
 * were used; the frame, once whole, has been handled and c->rx cleared.
 */
static size_t rx_feed(struct worker *co, struct conn *c, uint32_t slot,
                      const uint8_t *p, size_t n)
{
	size_t used = 0;

	for (;;) {
		struct rbuf *rx = c->rx;
		struct frame_view f;
		int r = frame_decode(&co->dec, rx->data, rx->len, &f);

		if (r > 0) {
			c->rx = NULL;
			handle_frame(co, c, slot, &f, rx);
			rbuf_put(co, rx);
			return used;
		}
		if (r < 0) {
			c->rx = NULL;
			rbuf_put(co, rx);
			frame_error(co, c, slot, r);
			return used;
		}
		if (used == n)
			return used;

		/* Need more: grow to the whole frame once its size is known. */
		uint32_t want = rx->len + f.need;
		if (want > rx->cap) {
			struct rbuf *big = rbuf_get(co, want);
			if (!big) {
				conn_close(co, c, slot, ERR_INTERNAL);
				return used;
			}
			memcpy(big->data, rx->data, rx->len);
			big->len = rx->len;
			rbuf_put(co, rx);
			c->rx = rx = big;
		}
		size_t k = f.need;
		if (k > n - used)
			k = n - used;
		memcpy(rx->data + rx->len, p + used, k);
		rx->len += (uint32_t)k;
		used += k;
	}
}

static void conn_input(struct worker *co, struct conn *c, uint32_t slot,
                       const uint8_t *p, size_t n)
{
	if (c->rx) {
		size_t k = rx_feed(co, c, slot, p, n);
		p += k;
		n -= k;
	}
	while (n && !(c->flags & CF_CLOSING)) {
		struct frame_view f;
		int r = frame_decode(&co->dec, p, n, &f);

		if (r > 0) {
			handle_frame(co, c, slot, &f, NULL);
			p += r;
			n -= (size_t)r;
		} else if (r == FRAME_NEED_MORE) {
			/* Straddles this read: keep the start, as small as fits. */
			uint32_t size = n >= FRAME_HEADER_SIZE ? f.size : RBUF_SMALL_CAP;
			struct rbuf *rx = rbuf_get(co, size);
			if (!rx) {
				conn_close(co, c, slot, ERR_INTERNAL);
				return;
			}
			memcpy(rx->data, p, n);
			rx->len = (uint32_t)n;
			c->rx = rx;
			return;
		} else if (r == FRAME_ECRC) {
			if (!frame_error(co, c, slot, r))
				return;
			p += f.size;
			n -= f.size;
		} else {
			frame_error(co, c, slot, r);
			return;
		}
	}
}

void conn_on_recv(struct worker *co, uint32_t slot, struct io_uring_cqe *cqe)
{
	struct conn *c = &co->conns[slot];
	int res = cqe->res;
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

	if (has_buf)
		bufring_took(&co->br);
	if (!(c->flags & CF_OPEN) || (c->gen & 0xFFFFFF) != ud_gen(cqe->user_data)) {
		if (has_buf)
			bufring_put(&co->br, bid);
		return;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->flags &= ~CF_RECV;

	if (res > 0) {
		metrics_add(&co->m.bytes_received, (uint64_t)res);
		if (!(c->flags & CF_CLOSING)) {
			const uint8_t *p = bufring_addr(&co->br, bid);
			if (c->tls)
				tls_input(co, c, slot, p, (size_t)res);
			else
				conn_input(co, c, slot, p, (size_t)res);
			conn_check_backlog(co, c, slot);
		}
		bufring_put(&co->br, bid);
		maybe_recv(co, c, slot);
	} else if (res == 0) {
		c->flags |= CF_EOF;
		if (c->flags & CF_CLOSING)
			conn_closing_progress(co, c, slot);
		else
			conn_close(co, c, slot, 0); /* flush replies, then close */
	} else if (res == -ENOBUFS) {
		metrics_inc(&co->m.recv_enobufs);
		if (!(c->flags & (CF_RECV | CF_HARD | CF_NOBUF | CF_HELD))) {
			c->flags |= CF_NOBUF;
			co->nobuf[co->nnobuf++] = slot;
		}
	} else if (res == -ECANCELED) {
		/* Stopped by stop_recv(); what stopped it may be gone already
		 * (the output drained before this completion came). */
		maybe_recv(co, c, slot);
	} else {
		/* Reset, timeout from the kernel, ...: nobody to talk to. */
		c->flags |= CF_EOF;
		conn_close_hard(co, c, slot);
	}
	conn_maybe_free(co, c, slot);
}

void conn_on_ctl(struct worker *co, uint32_t slot)
{
	struct conn *c = &co->conns[slot];
	/* The slot stays taken while c->ctl > 0, so this is still its
	 * connection. */
	c->ctl--;
	conn_maybe_free(co, c, slot);
}

void conn_on_send(struct worker *co, uint32_t slot, int res)
{
	struct conn *c = &co->conns[slot];

	c->flags &= ~CF_SEND;
	if (res < 0) {
		c->inflight = 0;
		c->flags |= CF_EOF;
		conn_close_hard(co, c, slot);
		conn_maybe_free(co, c, slot);
		return;
	}
	metrics_add(&co->m.bytes_sent, (uint64_t)res);
	outq_consume(co, sendq(c), (uint32_t)res);
	c->inflight = 0;
	if (c->flags & CF_HARD) {
		conn_maybe_free(co, c, slot);
		return;
	}
	if ((c->flags & CF_OUTFULL) && unsent(c) <= co->out_low) {
		c->flags &= ~CF_OUTFULL;
		maybe_recv(co, c, slot);
	}
	if (unsent(c))
		mark_dirty(co, c, slot);
	else
		conn_closing_progress(co, c, slot);
}

/* ---- once per loop iteration -------------------------------------------------- */

void conn_flush_all(struct worker *co)
{
	if (!co->ndirty)
		return;
	/* The replies below are handed to the kernel by the submit that
	 * follows: the latency clock stops here. */
	uint64_t now = clock_now_ns();
	for (uint32_t i = 0; i < co->ndirty; i++) {
		uint32_t slot = co->dirty[i];
		struct conn *c = &co->conns[slot];
		c->flags &= ~CF_DIRTY;
		if (!(c->flags & CF_OPEN) || (c->flags & (CF_SEND | CF_HARD)))
			continue;
		if (c->tls && tls_seal(co, c, slot) < 0)
			continue;
		if (sendq(c)->bytes) {
			send_start(co, c, slot);
			if (c->replies) {
				metrics_observe_latency_n(&co->m, now - c->reply_t0, c->replies);
				c->replies = 0;
			}
		} else {
			conn_closing_progress(co, c, slot);
		}
	}
	co->ndirty = 0;
}

void conn_rearm_nobuf(struct worker *co)
{
	/* One receive per free buffer, in arrival order: re-arming them all
	 * would only turn straight back into ENOBUFS for most. */
	uint32_t budget = bufring_free(&co->br);
	uint32_t kept = 0;
	for (uint32_t i = 0; i < co->nnobuf; i++) {
		uint32_t slot = co->nobuf[i];
		struct conn *c = &co->conns[slot];
		if (!(c->flags & CF_NOBUF))
			continue;
		if (!(c->flags & CF_OPEN) || (c->flags & (CF_HARD | CF_HELD))) {
			c->flags &= ~CF_NOBUF; /* a held one re-arms when let go */
			continue;
		}
		if (budget == 0) {
			co->nobuf[kept++] = slot;
			continue;
		}
		budget--;
		c->flags &= ~CF_NOBUF;
		arm_recv(co, c, slot);
	}
	co->nnobuf = kept;
}

void conn_pause(struct worker *co, uint32_t slot)
{
	struct conn *c = &co->conns[slot];
	if (c->flags & (CF_PAUSED | CF_CLOSING) || co->npaused == 2 * co->srv->table_size)
		return;
	c->flags |= CF_PAUSED;
	co->paused[co->npaused++] = slot;
	stop_recv(co, c, slot);
	log_limited(&co->ll, co->now_s, LOG_DEBUG,
	            "core %u: slot %u paused: %u broadcasts held for other cores", co->id,
	            slot, co->nheld);
}

void conn_resume_all(struct worker *co)
{
	for (uint32_t i = 0; i < co->npaused; i++) {
		uint32_t slot = co->paused[i];
		struct conn *c = &co->conns[slot];
		if (!(c->flags & CF_PAUSED))
			continue; /* closed, or a new connection in the slot */
		c->flags &= ~CF_PAUSED;
		maybe_recv(co, c, slot);
	}
	co->npaused = 0;
}

/* Shutdown: SHUTTING_DOWN to every client, then close as usual. */
void conn_drain_all(struct worker *co)
{
	for (uint32_t slot = 0; slot < co->srv->table_size; slot++) {
		struct conn *c = &co->conns[slot];
		if ((c->flags & CF_OPEN) && !(c->flags & CF_CLOSING))
			conn_close(co, c, slot, ERR_SHUTTING_DOWN);
	}
}

/* Last resort at the drain deadline: everything closes now. */
void conn_release_all(struct worker *co)
{
	for (uint32_t slot = 0; slot < co->srv->table_size; slot++) {
		struct conn *c = &co->conns[slot];
		if ((c->flags & CF_OPEN) && !(c->flags & CF_HARD))
			conn_close_hard(co, c, slot);
	}
}
