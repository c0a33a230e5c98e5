/*
 * broadcast.c - BROADCAST fan-out across cores.
 *
 *   sender's core                                   every other core
 *   -------------                                   ----------------
 *   frame bytes -> one rbuf (copied once, or the
 *                  reassembly buffer itself)
 *   local receivers: a reference each
 *   xrefs = number of cores
 *   push pointer on queue (me -> dst) ------------> pop; wrap in a proxy;
 *     MSG_RING only if dst's queue was empty         local receivers: a
 *     full queue: hold it back, in order, retry      reference to the proxy
 *                                                    last proxy ref: xrefs--
 *   last xref anywhere: back to the origin's pool <- (queue dst -> origin,
 *                                                     low bit set)
 *
 * Ordering: one sender's broadcasts enter each queue in order and each
 * queue is drained in order, so every receiver sees them in order.
 *
 * No locks: each queue has one producer and one consumer thread; the only
 * atomic read-modify-write is one xrefs decrement per core per broadcast.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/broadcast.h"
#include "net/conn.h"
#include "net/rbuf.h"
#include "net/worker.h"
#include "proto/msg.h"

#define RECYCLE_BIT ((uintptr_t)1)
/* Items taken from one queue per loop iteration before I/O gets a turn. */
#define POLL_BATCH 1024u
#define RETRY_NS 200000   /* held items: retry after 200 us */

/* ---- the held-back list per destination ------------------------------- */

static bool hold_push(struct holdq *h, void *item)
{
	if (h->tail - h->head == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		void **v = malloc(sizeof(void *) * cap);
		if (!v)
			return false;
		for (uint32_t i = 0; i < h->tail - h->head; i++)
			v[i] = h->v[(h->head + i) & (h->cap - 1)];
		h->tail -= h->head;
		h->head = 0;
		free(h->v);
		h->v = v;
		h->cap = cap;
	}
	h->v[h->tail++ & (h->cap - 1)] = item;
	return true;
}

/* ---- queues and wake-ups ------------------------------------------------- */

void bcast_wake(struct worker *co, uint32_t dst)
{
	struct io_uring_sqe *sqe = worker_sqe(co);
	/* The CQE lands in dst's ring; our own success CQE is skipped. */
	io_uring_prep_msg_ring(sqe, co->srv->cores[dst]->ring.u.ring_fd, 0,
	                       ud_pack(OP_XCORE, 0, co->id), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_MSGRING, 0, dst));
}

/* Queue item for dst behind anything held back for it. */
static void send_to(struct worker *co, uint32_t dst, void *item)
{
	struct holdq *h = &co->held[dst];
	bool was_empty;

	if (h->tail == h->head &&
	    spsc_push(server_queue(co->srv, co->id, dst), item, &was_empty)) {
		if (was_empty)
			bcast_wake(co, dst);
		return;
	}
	metrics_inc(&co->m.broadcast_queue_full);
	if (!hold_push(h, item)) {
		/* Out of memory for the backlog itself. Waiting for room could
		 * deadlock (dst may be waiting for room towards us), so this
		 * item is given up, loudly: a buffer coming home is freed, a
		 * broadcast loses that core's receivers. */
		struct rbuf *s = (void *)((uintptr_t)item & ~RECYCLE_BIT);
		log_limited(&co->ll, co->now_s, LOG_ERROR,
		            "core %u: out of memory holding a broadcast for core %u", co->id, dst);
		if ((uintptr_t)item & RECYCLE_BIT)
			free(s); /* pool objects are single malloc blocks */
		else
			bcast_xrelease(co, s);
		return;
	}
	co->nheld++;
}

static void retry_held(struct worker *co)
{
	for (uint32_t dst = 0; dst < co->srv->ncores && co->nheld; dst++) {
		struct holdq *h = &co->held[dst];
		struct spsc *q = server_queue(co->srv, co->id, dst);
		bool woke = false, was_empty;
		while (h->head != h->tail &&
		       spsc_push(q, h->v[h->head & (h->cap - 1)], &was_empty)) {
			h->head++;
			co->nheld--;
			if (was_empty && !woke) {
				bcast_wake(co, dst);
				woke = true;
			}
		}
	}
	if (co->nheld && !co->retry_armed) {
		struct io_uring_sqe *sqe = worker_sqe(co);
		co->retry_ts.tv_sec = 0;
		co->retry_ts.tv_nsec = RETRY_NS;
		io_uring_prep_timeout(sqe, &co->retry_ts, 0, 0);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_RETRY, 0, 0));
		co->retry_armed = true;
	}
}

/* ---- who receives ---------------------------------------------------------- */

void bcast_join(struct worker *co, struct conn *c, uint32_t slot)
{
	c->open_pos = co->nopen;
	co->open[co->nopen++] = slot;
}

void bcast_leave(struct worker *co, struct conn *c)
{
	if (c->open_pos == OPEN_NONE)
		return;
	uint32_t last = co->open[--co->nopen];
	co->open[c->open_pos] = last;
	co->conns[last].open_pos = c->open_pos;
	c->open_pos = OPEN_NONE;
}

/* ---- references ------------------------------------------------------------ */

void bcast_xrelease(struct worker *co, struct rbuf *s)
{
	if (atomic_fetch_sub_explicit(&s->xrefs, 1, memory_order_acq_rel) != 1)
		return;
	if (s->origin == co->id) {
		atomic_store_explicit(&s->xrefs, 0, memory_order_relaxed);
		s->refs = 1;
		rbuf_put(co, s);
	} else {
		send_to(co, s->origin, (void *)((uintptr_t)s | RECYCLE_BIT));
	}
}

/* Local receivers of b on this core, except skip (UINT32_MAX: none). */
static void deliver_local(struct worker *co, struct rbuf *b, uint32_t len, uint32_t skip)
{
	bool auth_on = co->cfg->auth_file != NULL;

	/* Backwards: a receiver closed as a slow consumer leaves the open
	 * list by swapping in the last entry, which was already visited. */
	for (uint32_t i = co->nopen; i-- > 0;) {
		uint32_t s = co->open[i];
		struct conn *r = &co->conns[s];
		if (s == skip || (auth_on && !(r->flags & CF_AUTHED)))
			continue;
		if (out_append_ref(co, r, s, b, 0, len) < 0) {
			conn_close_hard(co, r, s);
			continue;
		}
		metrics_frames_sent(&co->m, FRAME_BROADCAST, 1);
		metrics_inc(&co->m.broadcast_deliveries);
		conn_check_backlog(co, r, s);
	}
}

void bcast_send(struct worker *co, uint32_t slot, const struct frame_view *f,
                struct rbuf *owner)
{
	uint32_t ncores = co->srv->ncores;
	struct rbuf *b = owner;

	/* The request is already a valid BROADCAST frame: its bytes are
	 * copied once (unless reassembly already did) and shared. */
	if (b) {
		rbuf_hold(b);
	} else {
		b = rbuf_get(co, f->size);
		if (!b) {
			log_limited(&co->ll, co->now_s, LOG_ERROR, "core %u: broadcast: out of memory",
			            co->id);
			return;
		}
		memcpy(b->data, f->frame, f->size);
		b->len = f->size;
	}
	if (ncores > 1) {
		atomic_store_explicit(&b->xrefs, ncores, memory_order_relaxed);
		for (uint32_t dst = 0; dst < ncores; dst++)
			if (dst != co->id)
				send_to(co, dst, b);
	}
	deliver_local(co, b, f->size, slot);
	rbuf_put(co, b);
	/* Other cores are not keeping up: stop taking broadcasts from this
	 * sender (TCP then pushes back on it) rather than hold them all. */
	if (co->nheld > co->held_high)
		conn_pause(co, slot);
}

static void on_item(struct worker *co, void *item)
{
	if ((uintptr_t)item & RECYCLE_BIT) {
		struct rbuf *s = (void *)((uintptr_t)item & ~RECYCLE_BIT);
		atomic_store_explicit(&s->xrefs, 0, memory_order_relaxed);
		s->refs = 1;
		rbuf_put(co, s);
		return;
	}
	struct rbuf *s = item;
	struct rbuf *p = rbuf_proxy(co, s);
	if (!p) {
		log_limited(&co->ll, co->now_s, LOG_ERROR, "core %u: broadcast: out of memory",
		            co->id);
		bcast_xrelease(co, s);
		return;
	}
	deliver_local(co, p, s->len, UINT32_MAX);
	rbuf_put(co, p); /* the last proxy reference releases our xref */
}

void bcast_poll(struct worker *co)
{
	struct server *srv = co->srv;

	if (co->nheld)
		retry_held(co);
	if (co->npaused && co->nheld <= co->held_low)
		conn_resume_all(co);
	for (uint32_t src = 0; src < srv->ncores; src++) {
		if (src == co->id)
			continue;
		struct spsc *q = server_queue(srv, src, co->id);
		void *item;
		uint32_t n = 0;
		while (n < POLL_BATCH && (item = spsc_pop(q))) {
			on_item(co, item);
			n++;
		}
		/* About to sleep? Only if the queue is truly empty: otherwise
		 * the producer saw it non-empty and sent no wake-up. A NOP
		 * completion brings us straight back. */
		if (!spsc_consumer_idle(q) && !co->nop_armed) {
			struct io_uring_sqe *sqe = worker_sqe(co);
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, ud_pack(OP_NOP, 0, src));
			co->nop_armed = true;
		}
	}
}

/* Single-threaded teardown: an item nobody will take any more. */
static void cleanup_item(void *item)
{
	struct rbuf *s = (void *)((uintptr_t)item & ~RECYCLE_BIT);
	if (((uintptr_t)item & RECYCLE_BIT) || atomic_fetch_sub(&s->xrefs, 1) == 1)
		free(s); /* pool objects are single malloc blocks */
}

void bcast_cleanup(struct server *srv)
{
	for (uint32_t src = 0; src < srv->ncores; src++) {
		struct worker *co = srv->cores ? srv->cores[src] : NULL;
		for (uint32_t dst = 0; co && co->held && dst < srv->ncores; dst++) {
			struct holdq *h = &co->held[dst];
			while (h->head != h->tail)
				cleanup_item(h->v[h->head++ & (h->cap - 1)]);
			free(h->v);
			h->v = NULL;
		}
	}
	if (!srv->queues)
		return;
	for (uint32_t i = 0; i < srv->ncores * srv->ncores; i++) {
		void *item;
		while ((item = spsc_pop(&srv->queues[i])))
			cleanup_item(item);
		spsc_destroy(&srv->queues[i]);
	}
	free(srv->queues);
	srv->queues = NULL;
}
