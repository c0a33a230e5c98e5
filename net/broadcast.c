/*
 * broadcast.c - BROADCAST fan-out: each worker delivers from its broadcast
 * log (net/blog.h), and frames reach other workers' logs through one SPSC
 * queue per ordered pair of workers.
 *
 *   sender's worker                                   every other worker
 *   ---------------                                   ------------------
 *   frame -> its log (one copy); receivers' cursors
 *            move over it as their sends complete
 *   if other workers: the frame once more into a
 *   refcounted rbuf, xrefs = number of workers
 *   push pointer on queue (me -> dst) ------------> pop; append to its log
 *     MSG_RING only if dst's queue was empty          (one copy); xrefs--
 *     full queue: hold it back, in order, retry
 *   last xref anywhere: back to the origin's pool <-- (queue dst -> origin,
 *                                                      low bit set)
 *
 * Accepting a broadcast costs a copy into each worker's log whatever the
 * number of receivers; a receiver's one send per loop turn carries every
 * broadcast between its cursor and the log's head (conn.c, conn_send).
 *
 * Back-pressure, nothing accepted is dropped:
 *  - the log's room: a frame goes in only if no cursor would be
 *    overwritten; otherwise local frames wait in order (bhold) and the
 *    senders are paused, and a remote frame waits in its queue (bpend);
 *  - pace: when the slowest receiver that is keeping up falls more than
 *    half a log behind, the connections that broadcast stop being read
 *    (their TCP windows push back) until it is within a quarter;
 *  - other workers: a full queue holds items back; when another worker
 *    has not yet taken half a log's worth of what this one sent it (in
 *    the queue, held back, or waiting for its log), this one pauses its
 *    broadcasters too, and resumes them below a quarter.
 * A receiver whose cursor has not moved for BSTALL_MS while the frame it
 * waits for has been in the log as long is stalled: it does not hold the
 * others back, and once it is bkick_lag behind (or its bytes are what the
 * log needs room for) it gets SLOW_CONSUMER.
 *
 * Ordering: one sender's broadcasts enter each log and each queue in
 * order, and cursors only move forward, so every receiver sees them in
 * order, once. A sender's cursor passes over its own frames.
 *
 * No locks: each queue has one producer and one consumer thread; the only
 * atomic read-modify-write is one xrefs decrement per worker per broadcast.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/blog.h"
#include "net/broadcast.h"
#include "net/cluster.h"
#include "net/conn.h"
#include "net/rbuf.h"
#include "net/worker.h"
#include "proto/msg.h"

#define RECYCLE_BIT ((uintptr_t)1)
/* Items taken from one queue per loop iteration before I/O gets a turn. */
#define POLL_BATCH 1024u
/* A receiver behind whose cursor has not moved for this long is stalled:
 * far longer than a pause of the server itself (a SIGSTOP, a busy host)
 * or a client's own hiccup, short enough that one reader that never reads
 * holds nobody back for long. */
#define BSTALL_MS 5000u
/* Log bytes one send carries at most (fairness between receivers). */
#define BSEND_MAX (256u << 10)
#define RETRY_NS 200000   /* held items, paused broadcasters: look again after 200 us */

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

/* Come back soon: another worker's progress (room in a queue, frames it
 * took) wakes nobody here. One timeout, re-armed while waiting lasts. */
static void arm_retry(struct worker *co)
{
	if (co->retry_armed)
		return;
	struct io_uring_sqe *sqe = worker_sqe(co);
	co->retry_ts.tv_sec = 0;
	co->retry_ts.tv_nsec = RETRY_NS;
	io_uring_prep_timeout(sqe, &co->retry_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_RETRY, 0, 0));
	co->retry_armed = true;
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
	if (co->nheld)
		arm_retry(co);
}

/* ---- cursors ------------------------------------------------------------------ */

static inline bool in_audience(const struct conn *c)
{
	return c->open_pos != OPEN_NONE;
}

/* Pass over the connection's own broadcasts at the cursor. */
static void skip_own(const struct worker *co, struct conn *c, uint32_t slot)
{
	const struct blog *l = &co->log;
	while (c->b.pos == c->b.fpos && c->b.fno < c->b.own_end && c->b.fpos < l->head &&
	       blog_origin(l, c->b.fno) == slot + 1) {
		c->b.fpos += blog_frame_size(l, c->b.fpos);
		c->b.pos = c->b.fpos;
		c->b.fno++;
	}
}

/* Where the cursor stops: the head while the connection receives
 * broadcasts; after it left, the end of the frame it is in the middle of
 * (a partly sent frame is always finished, so the stream stays framed). */
static uint64_t cur_target(const struct worker *co, const struct conn *c)
{
	if (in_audience(c))
		return co->log.head;
	return c->b.pos == c->b.fpos ? c->b.pos
	                             : c->b.fpos + blog_frame_size(&co->log, c->b.fpos);
}

uint64_t bcast_pending(const struct worker *co, const struct conn *c)
{
	return cur_target(co, c) - c->b.pos;
}

bool bcast_mid_frame(const struct conn *c)
{
	return c->b.pos != c->b.fpos;
}

uint32_t bcast_gather(struct worker *co, struct conn *c, uint32_t slot, bool rest_only,
                      struct iovec *iov, int max, int *n)
{
	const struct blog *l = &co->log;
	skip_own(co, c, slot);
	uint64_t target = cur_target(co, c);
	uint64_t pos = c->b.pos, fpos = c->b.fpos, fno = c->b.fno;
	uint32_t total = 0;

	if (pos >= target || *n >= max)
		return 0;
	if (pos != fpos) {
		/* The rest of a frame a partial send began: asked for alone,
		 * and passed over when asked for the frames after it. */
		uint64_t end = fpos + blog_frame_size(l, fpos);
		if (rest_only) {
			iov[*n].iov_base = blog_at(l, pos);
			iov[*n].iov_len = (size_t)(end - pos);
			(*n)++;
			return (uint32_t)(end - pos);
		}
		if (!in_audience(c))
			return 0; /* after leaving, only that rest is owed */
		pos = fpos = end;
		fno++;
	} else if (rest_only) {
		return 0;
	}
	if (c->b.own_end <= fno) {
		/* None of its own broadcasts ahead: one run of bytes. */
		uint64_t end = target - pos > BSEND_MAX ? pos + BSEND_MAX : target;
		if (end > pos && *n < max) {
			iov[*n].iov_base = blog_at(l, pos);
			iov[*n].iov_len = (size_t)(end - pos);
			(*n)++;
			total += (uint32_t)(end - pos);
		}
		return total;
	}
	/* Its own broadcasts are among them: runs between them, whole frames. */
	uint64_t run = pos;
	while (fpos < target && total + (fpos - run) < BSEND_MAX) {
		uint32_t size = blog_frame_size(l, fpos);
		if (blog_origin(l, fno) == slot + 1) {
			if (fpos > run) {
				if (*n == max)
					return total;
				iov[*n].iov_base = blog_at(l, run);
				iov[*n].iov_len = (size_t)(fpos - run);
				(*n)++;
				total += (uint32_t)(fpos - run);
			}
			run = fpos + size;
		}
		fpos += size;
		fno++;
	}
	if (fpos > run && *n < max) {
		iov[*n].iov_base = blog_at(l, run);
		iov[*n].iov_len = (size_t)(fpos - run);
		(*n)++;
		total += (uint32_t)(fpos - run);
	}
	return total;
}

void bcast_sent(struct worker *co, struct conn *c, uint32_t slot, uint32_t n)
{
	const struct blog *l = &co->log;
	uint64_t frames = 0;

	uint64_t remote = 0;
	skip_own(co, c, slot);
	uint64_t oldest = c->b.fno;
	if (!co->cl_in && c->b.own_end <= c->b.fno) {
		/* None of its own ahead and no remote ones to tell apart: find
		 * the frame the last byte fell in, count those before it. */
		uint64_t p = c->b.pos + n;
		uint64_t f = p == l->head ? l->nframes : blog_frame_of(l, c->b.fno, c->b.fpos, p);
		frames = f - c->b.fno;
		c->b.fpos = f == l->nframes ? l->head : blog_start(l, f, c->b.fpos);
		c->b.fno = f;
		c->b.pos = p;
		n = 0;
	}
	while (n) {
		uint64_t end = c->b.fpos + blog_frame_size(l, c->b.fpos);
		uint64_t k = end - c->b.pos;
		if (n < k) {
			c->b.pos += n;
			break;
		}
		n -= (uint32_t)k;
		frames++;
		if (co->cl_in && blog_origin(l, c->b.fno) == BLOG_ORIGIN_REMOTE)
			remote++;
		c->b.pos = c->b.fpos = end;
		c->b.fno++;
		skip_own(co, c, slot);
	}
	if (remote)
		metrics_add(&co->m.cluster_deliveries, remote);
	if (frames) {
		metrics_add(&co->m.broadcast_deliveries, frames);
		metrics_frames_sent(&co->m, FRAME_BROADCAST, frames);
		metrics_observe_fanout(&co->m, (uint64_t)blog_age_us(l, oldest) * 1000u);
	}
	c->b.prog_ms = co->now_ns / 1000000u;
}

/* ---- who receives ---------------------------------------------------------- */

void bcast_join(struct worker *co, struct conn *c, uint32_t slot)
{
	if (in_audience(c))
		return;
	/* A cursor still draining from an earlier membership finishes its
	 * frame first: joining starts at the head only from a boundary. */
	if (!(c->flags & CF_BPIN) || (c->b.pos == c->b.fpos && !c->b.inflight)) {
		c->b.pos = c->b.fpos = co->log.head;
		c->b.fno = co->log.nframes;
	}
	c->b.own_end = 0;
	c->b.prog_ms = co->now_ns / 1000000u;
	c->open_pos = co->nopen;
	co->open[co->nopen++] = slot;
}

void bcast_leave(struct worker *co, struct conn *c, uint32_t slot)
{
	if (!in_audience(c))
		return;
	uint32_t last = co->open[--co->nopen];
	co->open[c->open_pos] = last;
	co->conns[last].open_pos = c->open_pos;
	c->open_pos = OPEN_NONE;
	/* Log bytes still in a send, or a frame begun: the cursor pins the
	 * log until they are done. */
	if ((c->b.inflight || c->b.pos != c->b.fpos) && !(c->flags & CF_BPIN)) {
		c->flags |= CF_BPIN;
		co->bpinned[co->nbpinned++] = slot;
	}
}

void bcast_unpin(struct worker *co, struct conn *c, uint32_t slot)
{
	if (!(c->flags & CF_BPIN) || in_audience(c) || c->b.inflight || (c->flags & CF_HARD))
		return;
	if (c->b.pos != c->b.fpos) {
		uint64_t end = c->b.fpos + blog_frame_size(&co->log, c->b.fpos);
		if (out_prepend_copy(co, c, slot, blog_at(&co->log, c->b.pos),
		                     (uint32_t)(end - c->b.pos)) < 0) {
			conn_close_hard(co, c, slot);
			return;
		}
		c->b.pos = c->b.fpos = end;
		c->b.fno++;
	}
	c->flags &= ~CF_BPIN; /* the pinned list drops it at the next scan */
}

/* ---- the log's room and pace ------------------------------------------------- */

static void slow_consumer(struct worker *co, struct conn *c, uint32_t slot, uint64_t lag)
{
	metrics_inc(&co->m.slow_consumer_closes);
	conn_log(co, slot, LOG_DEBUG, "close",
	         LOG_FIELDS(LOG_STR("reason", "slow_consumer"), LOG_UINT("behind", lag)),
	         " slow consumer (%llu broadcast bytes behind)", (unsigned long long)lag);
	conn_close(co, c, slot, ERR_SLOW_CONSUMER);
	/* Its send in flight holds log bytes and may never drain (the peer
	 * does not read): cancel it; conn_on_send() then takes what was
	 * sent, and bcast_unpin() copies the rest of a frame begun, so the
	 * log is free and the ERROR still goes out in a framed stream. */
	if ((c->flags & CF_SEND) && c->b.inflight) {
		struct io_uring_sqe *sqe = worker_sqe(co);
		io_uring_prep_cancel64(sqe, ud_pack(OP_SEND, c->gen, slot), 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, c->gen, slot));
	}
}

/*
 * Walk the cursors: the log's tail (nothing before it is needed), the
 * slowest cursor among receivers that keep up, and SLOW_CONSUMER for the
 * stalled ones too far behind (or, when the log needs the room, behind by
 * more than half of it). Once per loop turn at most, when the log runs
 * short of room or broadcasters are paused: O(receivers).
 */
static void scan(struct worker *co, bool need_room)
{
	struct blog *l = &co->log;
	uint64_t tail = l->head, fast = l->head;

	/* Backwards: a receiver that leaves swaps in the last, already seen. */
	for (uint32_t i = co->nopen; i-- > 0;) {
		uint32_t slot = co->open[i];
		struct conn *c = &co->conns[slot];
		uint64_t lag = l->head - c->b.pos;
		/* Stalled: it has not moved for BSTALL_MS, and the frame it
		 * waits for has been there that long (one that was caught up
		 * and idle is not stalled by the first burst after). The
		 * frame's age wraps after 71 minutes: a receiver stuck that
		 * long may then count as stalled up to BSTALL_MS later. */
		bool stalled = lag && co->now_ns / 1000000u - c->b.prog_ms >= BSTALL_MS &&
		               blog_age_us(l, c->b.fno) >= BSTALL_MS * 1000u;
		if (stalled && (lag + unsent_replies(c) > co->bkick_lag ||
		                (need_room && lag > l->cap / 2))) {
			slow_consumer(co, c, slot, lag);
			if (c->flags & CF_BPIN && c->b.fpos < tail)
				tail = c->b.fpos;
			continue;
		}
		/* From the start of the frame it is in: the walk over what is
		 * sent reads that frame's header. */
		if (c->b.fpos < tail)
			tail = c->b.fpos;
		if (!stalled && c->b.fpos < fast)
			fast = c->b.fpos;
	}
	uint32_t kept = 0;
	for (uint32_t i = 0; i < co->nbpinned; i++) {
		uint32_t slot = co->bpinned[i];
		struct conn *c = &co->conns[slot];
		if (!(c->flags & CF_BPIN))
			continue;
		if (!(c->flags & CF_OPEN) || in_audience(c) ||
		    (!c->b.inflight && c->b.pos == c->b.fpos)) {
			c->flags &= ~CF_BPIN;
			continue;
		}
		/* A closing connection (a slow consumer, say) whose last send
		 * does not drain: when the log needs the room, it is closed
		 * hard, which cancels that send and lets go of the log. */
		if (need_room && (c->flags & CF_CLOSING) && !(c->flags & CF_HARD))
			conn_close_hard(co, c, slot);
		if (c->b.fpos < tail)
			tail = c->b.fpos;
		co->bpinned[kept++] = slot;
	}
	co->nbpinned = kept;
	l->tail = tail;
	co->btail_fast = fast;
	co->bscanned = true;
	co->bscan_head = l->head;
}

/* Room for size bytes in the log, scanning if it looks short: once a turn,
 * and again only if frames came in since. The cursors do not move within
 * a turn, but what no receiver waits for (all of it, on a worker with no
 * receivers) is free as soon as it is in; without the second scan such a
 * worker took one log's worth per tick. */
static bool log_room(struct worker *co, uint32_t size)
{
	if (blog_room(&co->log) >= size)
		return true;
	if (!co->bscanned || co->bscan_head != co->log.head)
		scan(co, true);
	return blog_room(&co->log) >= size;
}

/* Broadcasters should wait: the log is more than half a log ahead of the
 * slowest receiver that keeps up. */
static bool log_behind(struct worker *co)
{
	if (co->log.head - co->btail_fast <= co->bpause_at)
		return false;
	if (!co->bscanned)
		scan(co, false);
	return co->log.head - co->btail_fast > co->bpause_at;
}

/* Bytes sent to some other worker that it has not yet taken into its log
 * (in its queue, held back here, or waiting for room there) above limit:
 * that worker is behind. Two plain loads per worker, no atomic RMW. */
static bool xq_behind(const struct worker *co, uint64_t limit)
{
	const struct server *srv = co->srv;
	/* Items held back here count too: a small queue passes few frames
	 * per wake-up, whatever their size. Four queues' worth pauses, one
	 * resumes (limit is bpause_at or bresume_at). */
	if (co->nheld > (limit == co->bpause_at ? 4 : 1) * srv->xq_cap)
		return true;
	for (uint32_t dst = 0; dst < srv->ncores; dst++) {
		if (dst == co->id)
			continue;
		uint64_t taken = atomic_load_explicit(
			&srv->xq_taken[co->id * srv->ncores + dst].bytes, memory_order_acquire);
		if (co->xq_sent[dst] - taken > limit)
			return true;
	}
	return false;
}

/* ---- sending --------------------------------------------------------------------- */

static void append_local(struct worker *co, const uint8_t *frame, uint32_t size,
                         struct conn *sender, uint32_t slot)
{
	blog_append(&co->log, frame, size, slot + 1);
	if (in_audience(sender)) {
		sender->b.own_end = co->log.nframes;
		skip_own(co, sender, slot); /* caught up: its cursor passes at once */
	}
}

void bcast_send(struct worker *co, uint32_t slot, const struct frame_view *f,
                struct rbuf *owner)
{
	uint32_t ncores = co->srv->ncores;
	struct conn *c = &co->conns[slot];
	struct rbuf *b = NULL;

	if (co->cl_out)
		cluster_out(co, f->frame, f->size); /* other servers: once, never waits */

	/* Other workers get the frame in a buffer of its own (the
	 * reassembly buffer itself when there is one). */
	if (ncores > 1 || co->bhold.head != co->bhold.tail || !log_room(co, f->size)) {
		if (owner) {
			rbuf_hold(owner);
			b = owner;
		} else if ((b = rbuf_get(co, f->size))) {
			memcpy(b->data, f->frame, f->size);
			b->len = f->size;
		} else {
			log_limited(&co->ll, co->now_s, LOG_ERROR,
			            "core %u: broadcast: out of memory", co->id);
			return;
		}
	}
	if (ncores > 1) {
		atomic_store_explicit(&b->xrefs, ncores, memory_order_relaxed);
		for (uint32_t dst = 0; dst < ncores; dst++) {
			if (dst == co->id)
				continue;
			co->xq_sent[dst] += f->size;
			send_to(co, dst, b);
		}
	}
	if (co->bhold.head == co->bhold.tail && log_room(co, f->size)) {
		append_local(co, f->frame, f->size, c, slot);
		if (b)
			rbuf_put(co, b);
	} else {
		/* No room: it waits, in order, and so does its sender. The
		 * origin goes with it (the low bits of an rbuf pointer are
		 * free, the slot is not: it is kept in the buffer). */
		b->origin_slot = slot;
		b->origin_gen = c->gen;
		if (!hold_push(&co->bhold, b)) {
			log_limited(&co->ll, co->now_s, LOG_ERROR,
			            "core %u: out of memory holding a broadcast", co->id);
			rbuf_put(co, b);
		}
		conn_pause(co, slot);
		return;
	}
	/* This worker (or another) is not keeping up: stop taking broadcasts
	 * from this sender (TCP then pushes back on it) rather than hold
	 * them all. */
	if (xq_behind(co, co->bpause_at) || log_behind(co))
		conn_pause(co, slot);
}

/* Local broadcasts that waited for room, in order. */
static void drain_bhold(struct worker *co)
{
	struct holdq *h = &co->bhold;
	while (h->head != h->tail) {
		struct rbuf *b = h->v[h->head & (h->cap - 1)];
		if (!log_room(co, b->len))
			return;
		h->head++;
		struct conn *c = &co->conns[b->origin_slot];
		if ((c->flags & CF_OPEN) && c->gen == b->origin_gen)
			append_local(co, b->data, b->len, c, b->origin_slot);
		else
			blog_append(&co->log, b->data, b->len, 0); /* its sender is gone */
		rbuf_put(co, b);
	}
}

/* An item from another worker: into the log, or false (no room: it waits
 * in bpend[src] and nothing more is taken from that queue). */
static bool on_item(struct worker *co, uint32_t src, void *item)
{
	if ((uintptr_t)item & RECYCLE_BIT) {
		struct rbuf *s = (void *)((uintptr_t)item & ~RECYCLE_BIT);
		atomic_store_explicit(&s->xrefs, 0, memory_order_relaxed);
		s->refs = 1;
		rbuf_put(co, s);
		return true;
	}
	struct rbuf *s = item;
	if (!log_room(co, s->len)) {
		co->bpend[src] = s;
		return false;
	}
	blog_append(&co->log, s->data, s->len, 0);
	/* Only this worker writes its taken counters. */
	_Atomic uint64_t *t = &co->srv->xq_taken[src * co->srv->ncores + co->id].bytes;
	atomic_store_explicit(t, atomic_load_explicit(t, memory_order_relaxed) + s->len,
	                      memory_order_release);
	bcast_xrelease(co, s);
	return true;
}

/* Other servers' broadcasts (--cluster): from the bridge's ring into the
 * log while it has room; the rest waits in the ring (the bridge waits for
 * room there, then drops and counts). */
static void take_remote(struct worker *co)
{
	uint32_t len, n = 0;
	uint8_t *p;
	while (n < POLL_BATCH && (p = bytering_peek(co->cl_in, &len))) {
		if (!log_room(co, len))
			return; /* a send completion or the tick comes back */
		blog_append(&co->log, p, len, BLOG_ORIGIN_REMOTE);
		bytering_release(co->cl_in, len);
		n++;
	}
	if (!bytering_idle(co->cl_in) && !co->nop_armed) {
		struct io_uring_sqe *sqe = worker_sqe(co);
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_NOP, 0, co->srv->ncores));
		co->nop_armed = true;
	}
}

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

void bcast_poll(struct worker *co)
{
	struct server *srv = co->srv;

	co->bscanned = false;
	if (co->nheld)
		retry_held(co);
	if (co->bhold.head != co->bhold.tail)
		drain_bhold(co);
	for (uint32_t src = 0; src < srv->ncores; src++) {
		if (src == co->id)
			continue;
		if (co->bpend[src]) {
			void *item = co->bpend[src];
			co->bpend[src] = NULL;
			if (!on_item(co, src, item))
				continue;
		}
		struct spsc *q = server_queue(srv, src, co->id);
		void *item;
		uint32_t n = 0;
		bool room = true;
		while (n < POLL_BATCH && (item = spsc_pop(q))) {
			n++;
			if (!(room = on_item(co, src, item)))
				break;
		}
		/* About to sleep? Only if the queue is truly empty: otherwise
		 * the producer saw it non-empty and sent no wake-up. A NOP
		 * completion brings us straight back. (With no room, the tick
		 * or a send completion comes back first.) */
		if (room && !spsc_consumer_idle(q) && !co->nop_armed) {
			struct io_uring_sqe *sqe = worker_sqe(co);
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, ud_pack(OP_NOP, 0, src));
			co->nop_armed = true;
		}
	}
	if (co->cl_in)
		take_remote(co);
	if (co->npaused) {
		if (co->bhold.head == co->bhold.tail && !xq_behind(co, co->bresume_at)) {
			if (!co->bscanned)
				scan(co, false);
			if (co->log.head - co->btail_fast <= co->bresume_at)
				conn_resume_all(co);
		}
		/* What lets them go may be another worker taking frames: it
		 * does not wake this one, so look again soon. */
		if (co->npaused)
			arm_retry(co);
	}
	/* Receivers with broadcasts to send and no send in flight. */
	if (co->log.head != co->bflushed) {
		for (uint32_t i = 0; i < co->nopen; i++) {
			uint32_t slot = co->open[i];
			struct conn *c = &co->conns[slot];
			if (!(c->flags & (CF_SEND | CF_DIRTY)) && c->b.pos < co->log.head)
				mark_dirty(co, c, slot);
		}
		co->bflushed = co->log.head;
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
		for (uint32_t i = 0; co && co->bpend && i < srv->ncores; i++)
			if (co->bpend[i])
				cleanup_item(co->bpend[i]);
		while (co && co->bhold.head != co->bhold.tail) {
			struct rbuf *b = co->bhold.v[co->bhold.head++ & (co->bhold.cap - 1)];
			if (atomic_load(&b->xrefs) == 0)
				free(b);
			else
				cleanup_item(b);
		}
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
