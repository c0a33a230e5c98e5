/*
 * conn.c - one connection's life on its worker: accept, the receive and
 * the one send in flight, closing (the state diagram is in conn.h), and
 * the completions that drive them.
 *
 * Everything here runs on the connection's worker thread.
 *
 * Buffer ownership, one sentence per hand-off:
 *  - a provided buffer named by a recv completion belongs to this file
 *    until conn_on_recv() puts it back, before returning: frames decoded
 *    in it are views that live only during handle_frame() (input.c);
 *  - the output queue owns what it holds until it is sent (outq.h);
 *  - a sendmsg header is scratch of the worker's until the kernel copies
 *    it at submission.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/broadcast.h"
#include "net/conn.h"
#include "net/rbuf.h"
#include "net/tls.h"
#include "net/worker.h"
#include "proto/msg.h"

/* Graceful close: how long the peer gets to read what we send and hang up. */
#define CLOSE_LINGER_S 5u
/* A TLS handshake must finish this soon after accept. */
#define TLS_HANDSHAKE_S 10u

/* ---- log lines ---------------------------------------------------------------- */

/* "[v6 address]:port" at most, NUL included. */
#define PEER_STR_MAX (INET6_ADDRSTRLEN + 8)

/* The slot's peer as text, or NULL when not known (no --debug). */
static const char *peer_str(const struct worker *co, uint32_t slot, char *buf)
{
	if (!co->peers)
		return NULL;
	const struct peer_addr *p = &co->peers[slot];
	char a[INET6_ADDRSTRLEN];
	if (p->sa.sa_family == AF_INET) {
		if (!inet_ntop(AF_INET, &p->in4.sin_addr, a, sizeof a))
			return NULL;
		snprintf(buf, PEER_STR_MAX, "%s:%u", a, ntohs(p->in4.sin_port));
	} else if (p->sa.sa_family == AF_INET6) {
		/* An IPv4 client of a dual-stack listener: shown as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&p->in6.sin6_addr)) {
			if (!inet_ntop(AF_INET, &p->in6.sin6_addr.s6_addr[12], a, sizeof a))
				return NULL;
			snprintf(buf, PEER_STR_MAX, "%s:%u", a, ntohs(p->in6.sin6_port));
		} else {
			if (!inet_ntop(AF_INET6, &p->in6.sin6_addr, a, sizeof a))
				return NULL;
			snprintf(buf, PEER_STR_MAX, "[%s]:%u", a, ntohs(p->in6.sin6_port));
		}
	} else {
		return NULL;
	}
	return buf;
}

#define CONN_LOG_FIELDS 8

void conn_log(struct worker *co, uint32_t slot, enum log_level lvl, const char *event,
              const struct log_kv *kv, size_t nkv, const char *fmt, ...)
{
	if (!log_limit_take(&co->ll, co->now_s, lvl))
		return;
	char peer[PEER_STR_MAX], msg[512];
	const char *p = peer_str(co, slot, peer);
	struct log_kv f[CONN_LOG_FIELDS];
	size_t n = 0;

	f[n++] = (struct log_kv)LOG_UINT("slot", slot);
	if (p)
		f[n++] = (struct log_kv)LOG_STR("peer", p);
	for (size_t i = 0; i < nkv && n < CONN_LOG_FIELDS; i++)
		f[n++] = kv[i];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (p)
		log_event_taken(&co->ll, lvl, event, f, n, "core %u: slot %u (%s)%s", co->id,
		                slot, p, msg);
	else
		log_event_taken(&co->ll, lvl, event, f, n, "core %u: slot %u%s", co->id, slot, msg);
}

/* ---- errors and back-pressure ----------------------------------------------- */

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

void conn_check_backlog(struct worker *co, struct conn *c, uint32_t slot)
{
	/* Replies only: broadcasts behind a receiver's cursor are the
	 * broadcast log's business (broadcast.c), where a receiver that
	 * keeps up holds the senders back rather than being cut off. */
	uint64_t n = unsent_replies(c);
	if (n <= co->out_high || (c->flags & CF_CLOSING))
		return;
	if (n > co->cfg->max_output) {
		metrics_inc(&co->m.slow_consumer_closes);
		conn_log(co, slot, LOG_DEBUG, "close",
		         LOG_FIELDS(LOG_STR("reason", "slow_consumer"), LOG_UINT("unsent", n)),
		         " slow consumer (%llu bytes unsent)", (unsigned long long)n);
		conn_close(co, c, slot, ERR_SLOW_CONSUMER);
		return;
	}
	if (!(c->flags & CF_OUTFULL)) {
		/* Replies (and errors) pile up: read no more requests until
		 * the client takes them; its TCP window then holds it back. */
		c->flags |= CF_OUTFULL;
		conn_stop_recv(co, c, slot);
		conn_log(co, slot, LOG_DEBUG, "read_paused",
		         LOG_FIELDS(LOG_STR("cause", "unsent"), LOG_UINT("unsent", n)),
		         " not read while %llu bytes are unsent", (unsigned long long)n);
	}
}

/*
 * Drop every queued byte not part of the send in flight, or, with none in
 * flight, all but the rest of a block a partial send began: either way
 * what stays ends on a frame boundary.
 */
static void drop_unsent(struct worker *co, struct conn *c)
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
		keep = c->inflight - c->b.inflight; /* the replies in it */
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

void conn_maybe_recv(struct worker *co, struct conn *c, uint32_t slot)
{
	if ((c->flags & CF_OPEN) &&
	    !(c->flags & (CF_RECV | CF_HARD | CF_EOF | CF_NOBUF | CF_HELD)))
		arm_recv(co, c, slot);
}

/* What it already read is handled as usual. */
void conn_stop_recv(struct worker *co, struct conn *c, uint32_t slot)
{
	if (!(c->flags & CF_RECV))
		return;
	struct io_uring_sqe *sqe = worker_sqe(co);
	io_uring_prep_cancel64(sqe, ud_pack(OP_RECV, c->gen, slot), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, c->gen, slot));
}

bool conn_send(struct worker *co, struct conn *c, uint32_t slot)
{
	struct iovec iov[CORE_IOV_MAX];
	uint32_t rest = 0, total = 0, logb = 0;
	int n = 0;

	/* In stream order: the rest of a broadcast frame a partial send
	 * began, the queued replies, then broadcasts from the log (under TLS
	 * both are sealed into the record queue first). */
	if (!c->tls)
		rest = bcast_gather(co, c, slot, true, iov, CORE_IOV_MAX, &n);
	for (struct oblk *b = sendq(c)->head; b && n < CORE_IOV_MAX; b = b->next) {
		uint32_t k = b->end - b->start;
		if (!k)
			continue;
		iov[n].iov_base = (uint8_t *)(b->ref ? rbuf_data(b->ref) : b->data) + b->start;
		iov[n].iov_len = k;
		total += k;
		n++;
	}
	if (!c->tls)
		logb = bcast_gather(co, c, slot, false, iov, CORE_IOV_MAX, &n);
	total += rest + logb;
	if (!total)
		return true;

	struct io_uring_sqe *sqe;
	if (n == 1) {
		sqe = worker_sqe(co);
		io_uring_prep_send(sqe, (int)slot, iov[0].iov_base, total, MSG_NOSIGNAL);
	} else {
		/* A sendmsg header lives in scratch until the kernel copies it
		 * at submission. Take the SQE first and the header after:
		 * getting an SQE may submit, which frees every header, so a
		 * header taken before could be handed out again while this
		 * SQE still points at it (two connections' streams mixed). */
		if (co->nscratch == CORE_SEND_SCRATCH) {
			worker_submit(co);
			if (co->nscratch == CORE_SEND_SCRATCH)
				return false; /* the kernel holds back: next turn */
		}
		sqe = worker_sqe(co);
		struct msghdr *m = &co->scratch_msg[co->nscratch];
		struct iovec *v = co->scratch_iov[co->nscratch];
		co->nscratch++;
		memcpy(v, iov, sizeof *iov * (size_t)n);
		memset(m, 0, sizeof *m);
		m->msg_iov = v;
		m->msg_iovlen = (size_t)n;
		io_uring_prep_sendmsg(sqe, (int)slot, m, MSG_NOSIGNAL);
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_SEND, c->gen, slot));
	c->flags |= CF_SEND;
	c->inflight = total;
	c->b.inflight = rest + logb;
	c->b.rest = rest;
	return true;
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
		unsigned code = co->draining ? ERR_SHUTTING_DOWN : ERR_SERVER_FULL;
		conn_close(co, c, slot, code);
		conn_log(co, slot, LOG_DEBUG, "close",
		         LOG_FIELDS(LOG_STR("reason", msg_error_label(code)), LOG_UINT("open", n - 1)),
		         " rejected (%u open)", n - 1);
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
			conn_log(co, slot, LOG_ERROR, "close",
			         LOG_FIELDS(LOG_STR("reason", "out_of_memory")),
			         ": TLS session: out of memory");
			conn_close_hard(co, c, slot);
			return;
		}
	}
	bucket_init(&c->rl, cfg->rate_limit, co->now_ns);
	/* With authentication on, broadcasts reach a connection from its
	 * successful AUTH on (handler.c). */
	if (!cfg->auth_file)
		bcast_join(co, c, slot);
	uint32_t due = cfg->idle_timeout ? cfg->idle_timeout + 1 : UINT32_MAX;
	if (c->tls && due > TLS_HANDSHAKE_S)
		due = TLS_HANDSHAKE_S;
	if (due != UINT32_MAX)
		wheel_add(&co->wheel, slot, co->now_s + due);
	arm_recv(co, c, slot);
	conn_log(co, slot, LOG_DEBUG, "open", LOG_NO_FIELDS, " open");
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
	conn_rx_drop(co, c);
	wheel_del(&co->wheel, slot);
	bcast_leave(co, c, slot);
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
	bcast_leave(co, c, slot);
	drop_unsent(co, c);
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
	bcast_leave(co, c, slot);
	conn_rx_drop(co, c);
	if (code) {
		/* A stuck reader must not keep its backlog: only what the
		 * kernel already has stays, then the ERROR frame. */
		if (code == ERR_SLOW_CONSUMER)
			drop_unsent(co, c);
		if (out_error(co, c, slot, code) < 0) {
			conn_close_hard(co, c, slot);
			return;
		}
	}
	/* A broadcast frame begun goes out whole before the ERROR. */
	bcast_unpin(co, c, slot);
	wheel_add(&co->wheel, slot, co->now_s + CLOSE_LINGER_S);
	mark_dirty(co, c, slot);
}

void conn_closing_progress(struct worker *co, struct conn *c, uint32_t slot)
{
	if (!(c->flags & CF_CLOSING) || (c->flags & CF_HARD))
		return;
	if (unsent(co, c) || bcast_pending(co, c) || (c->flags & CF_SEND))
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
		conn_log(co, slot, LOG_DEBUG, "close",
		         LOG_FIELDS(LOG_STR("reason", "tls_handshake_timeout"),
		                    LOG_UINT("seconds", TLS_HANDSHAKE_S)),
		         " TLS handshake not done in %u s", TLS_HANDSHAKE_S);
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
	conn_log(co, slot, LOG_DEBUG, "close",
	         LOG_FIELDS(LOG_STR("reason", "idle_timeout"),
	                    LOG_UINT("seconds", co->cfg->idle_timeout)),
	         " idle timeout");
	conn_close(co, c, slot, ERR_IDLE_TIMEOUT);
}

/* ---- completions ------------------------------------------------------------ */

/* Wait for receive buffers. The list holds each slot at most twice (a
 * stale entry of a closed connection and its successor's), and stale
 * entries go at the next conn_rearm_nobuf(); dropping them here keeps
 * that bound even if an append came between two passes. */
static void nobuf_add(struct worker *co, struct conn *c, uint32_t slot)
{
	if (co->nnobuf == 2 * co->srv->table_size) {
		uint32_t kept = 0;
		for (uint32_t i = 0; i < co->nnobuf; i++)
			if (co->conns[co->nobuf[i]].flags & CF_NOBUF)
				co->nobuf[kept++] = co->nobuf[i];
		co->nnobuf = kept;
	}
	c->flags |= CF_NOBUF;
	co->nobuf[co->nnobuf++] = slot;
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

	if (res > 0 && !has_buf) {
		/* Data without a buffer to hold it cannot happen with buffer
		 * select; if the kernel ever says so, the bytes are lost. */
		conn_log(co, slot, LOG_ERROR, "close",
		         LOG_FIELDS(LOG_STR("reason", "no_buffer"), LOG_INT("bytes", res)),
		         ": %d bytes and no buffer", res);
		c->flags |= CF_EOF;
		conn_close_hard(co, c, slot);
	} else if (res > 0) {
		metrics_add(&co->m.bytes_received, (uint64_t)res);
		if (!(c->flags & CF_CLOSING)) {
			const uint8_t *p = bufring_addr(&co->br, bid);
			if (c->tls)
				ctls_input(co, c, slot, p, (size_t)res);
			else
				conn_input(co, c, slot, p, (size_t)res);
			conn_check_backlog(co, c, slot);
		}
		bufring_put(&co->br, bid);
		conn_maybe_recv(co, c, slot);
	} else if (res == 0) {
		c->flags |= CF_EOF;
		if (c->flags & CF_CLOSING)
			conn_closing_progress(co, c, slot);
		else
			conn_close(co, c, slot, 0); /* flush replies, then close */
	} else if (res == -ENOBUFS) {
		metrics_inc(&co->m.recv_enobufs);
		if (!(c->flags & (CF_RECV | CF_HARD | CF_NOBUF | CF_HELD)))
			nobuf_add(co, c, slot);
	} else if (res == -ECANCELED) {
		/* Stopped by conn_stop_recv(); what stopped it may be gone already
		 * (the output drained before this completion came). */
		conn_maybe_recv(co, c, slot);
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

void conn_on_send(struct worker *co, uint32_t slot, uint32_t gen, int res)
{
	struct conn *c = &co->conns[slot];

	/* A slot is freed only with no send in flight, so this is its send;
	 * a mismatch would be a bug, and must not touch another connection. */
	if (!(c->flags & CF_SEND) || c->gen != gen) {
		conn_log(co, slot, LOG_ERROR, "send_mismatch",
		         LOG_FIELDS(LOG_UINT("gen", gen), LOG_UINT("slot_gen", c->gen)),
		         ": send completion for generation %u, slot has %u", gen, c->gen);
		return;
	}
	c->flags &= ~CF_SEND;
	/* A send cancelled on purpose (a slow consumer's, broadcast.c) sent
	 * nothing; the connection goes on closing. */
	if (res == -ECANCELED && (c->flags & CF_CLOSING) && !(c->flags & CF_HARD))
		res = 0;
	if (res < 0) {
		c->inflight = c->b.inflight = c->b.rest = 0;
		c->flags |= CF_EOF;
		conn_close_hard(co, c, slot);
		conn_maybe_free(co, c, slot);
		return;
	}
	metrics_add(&co->m.bytes_sent, (uint64_t)res);
	/* The bytes went in the order conn_send() laid them out. */
	uint32_t k = (uint32_t)res;
	uint32_t r = k < c->b.rest ? k : c->b.rest;
	uint32_t o = c->inflight - c->b.inflight;
	if (r)
		bcast_sent(co, c, slot, r);
	k -= r;
	if (o > k)
		o = k;
	outq_consume(co, sendq(c), o);
	if (k - o)
		bcast_sent(co, c, slot, k - o);
	c->inflight = c->b.inflight = c->b.rest = 0;
	if (c->flags & CF_HARD) {
		conn_maybe_free(co, c, slot);
		return;
	}
	bcast_unpin(co, c, slot);
	if ((c->flags & CF_OUTFULL) && unsent_replies(c) <= co->out_low) {
		c->flags &= ~CF_OUTFULL;
		conn_maybe_recv(co, c, slot);
	}
	if (unsent_replies(c) || bcast_pending(co, c))
		mark_dirty(co, c, slot);
	else
		conn_closing_progress(co, c, slot);
}

