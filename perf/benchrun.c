/*
 * benchrun.c - net001-bench worker: io_uring load generation and reply
 * verification. See benchrun.h.
 *
 * Connection states:
 *
 *   CONNECTING --connect ok--> [AUTH --AUTH_REPLY ok-->] [PROBE --reply-->] READY
 *        |                          |                      |
 *        +--fails--> FAILED         +--------+-------------+
 *                                            v
 *                                 CLOSED (peer closed, reset, or a
 *                                 reply that breaks framing)
 *
 * PROBE is for --connect-only: one PING whose reply proves the server has
 * accepted and served the connection (a completed connect() only proves
 * the kernel queued it), so the held connections are really open.
 *
 * Every connection has one multishot recv armed from the worker's
 * provided-buffer ring and at most one send in flight. A request window
 * lives in the connection's send buffer, pre-filled with frames whose
 * payload is the shared pattern; before each send only the first 8
 * payload bytes (a CLOCK_MONOTONIC timestamp) and the CRC are rewritten,
 * so one send carries every frame of the window. The timestamps also sit
 * in a per-connection FIFO: replies arrive in request order, so the head
 * of the FIFO is the request a reply answers, which gives both the
 * expected payload and the latency.
 *
 * Replies are parsed in place in the provided buffer; only a frame that
 * straddles two recvs is copied into the connection's reassembly buffer
 * (the codec's reassembler, proto/reasm.h).
 * The header is checked as soon as its 8 bytes are present, so a wrong
 * type or length is caught without waiting for bytes that may never come.
 */
#include "perf/benchrun.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/clock.h"
#include "proto/frame.h"
#include "proto/reasm.h"
#include "perf/perfring.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define RING_ENTRIES    4096
#define CQ_ENTRIES      65536
#define BUF_COUNT       1024
#define BUF_SIZE        32768
#define BGID            1
/* Connects in flight per worker: below the server's accept backlog. */
#define CONNECT_WINDOW  256
/* Give up on connections that are still connecting after this long. */
#define CONNECT_TIMEOUT_NS (60ull * 1000000000ull)
#define PING_FRAME_SIZE (FRAME_OVERHEAD + MSG_PING_LEN)
/* How often a worker copies its counts for the progress line. */
#define PUBLISH_NS (250ull * 1000000ull)

enum op { OP_CONNECT = 1, OP_RECV, OP_SEND };

enum cstate {
	CS_IDLE, CS_CONNECTING, CS_AUTH, CS_PROBE, CS_READY, CS_FAILED, CS_CLOSED
};

struct bconn {
	int fd;
	uint32_t gidx;          /* index over the whole run (source address) */
	uint8_t state;
	bool receiver;
	bool send_busy;
	bool recv_armed;
	bool dirty;
	bool need_arm;
	uint64_t *fifo;         /* timestamps of requests awaiting replies */
	uint32_t fhead, fcount, fcap;
	uint32_t backlog;       /* open loop: due, not yet sent */
	uint64_t sent_w;        /* frames sent in the window */
	uint64_t err_w;         /* ERRORs counted against them */
	uint64_t await_ts;      /* broadcast: last of the window, until witnessed */
	uint8_t *sbuf;          /* request window */
	uint32_t slen, soff;    /* bytes in the current send, bytes done */
	uint32_t sframes;       /* frames (not counting a trailing PING) */
	struct frame_reasm ra;  /* a straddling frame; one buffer of a largest
	                         * frame, allocated the first time one does */
};

uint64_t benchrun_now(void)
{
	return clock_now_ns();
}

void benchrun_fill_pattern(uint8_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (uint8_t)(i * 131u + 7u);
}

static inline uint64_t ud(enum op op, uint32_t idx)
{
	return ((uint64_t)op << 32) | idx;
}

static inline bool measuring(const struct benchrun_worker *w)
{
	return w->now >= w->sh->t_measure && w->now < w->sh->t_end;
}

/* Whether a request stamped ts was sent in the window. */
static inline bool in_window(const struct benchrun_worker *w, uint64_t ts)
{
	return ts >= w->sh->t_measure && ts < w->sh->t_end;
}

static inline uint32_t frame_size(const struct benchopt *o)
{
	return FRAME_OVERHEAD + o->payload;
}

/* The request type this run sends and the reply type it expects back. */
static uint8_t req_type(const struct benchopt *o)
{
	switch (o->type) {
	case BENCH_PING: return FRAME_PING;
	case BENCH_ECHO: return FRAME_ECHO;
	case BENCH_DATA: return FRAME_DATA;
	case BENCH_BROADCAST: return FRAME_BROADCAST;
	}
	return 0;
}

static uint8_t reply_type(const struct benchopt *o)
{
	if (o->raw_echo)
		return req_type(o);
	return o->type == BENCH_ECHO ? FRAME_ECHO_REPLY : FRAME_PONG;
}

/*
 * Closed-loop broadcast: a sender's next window waits until the last
 * broadcast of its window has reached a witness, one of the receivers on
 * the sender's own worker (sender j's witness is local receiver
 * j % receivers), which finds it by its timestamp. That bounds what the
 * server has queued to the receivers. A worker without receivers (or
 * payloads too short for a timestamp) ends each window with a PING
 * instead: its PONG says the server has handled the window, a weaker
 * bound.
 */
static void mark_dirty(struct benchrun_worker *w, uint32_t idx);

static bool bcast_ping(const struct benchrun_worker *w)
{
	return w->bflow == BENCH_FLOW_PING;
}

static void witness_check(struct benchrun_worker *w, uint32_t ridx, uint64_t ts)
{
	uint32_t nrecv = w->nconns - w->nload;
	for (uint32_t j = ridx - w->nload; j < w->nload; j += nrecv) {
		struct bconn *s = &w->conns[j];
		if (s->await_ts == ts) {
			s->await_ts = 0;
			mark_dirty(w, j);
		}
	}
}

static void mark_dirty(struct benchrun_worker *w, uint32_t idx)
{
	struct bconn *c = &w->conns[idx];
	if (!c->dirty) {
		c->dirty = true;
		w->dirty[w->ndirty++] = idx;
	}
}

static void arm_recv(struct benchrun_worker *w, uint32_t idx)
{
	struct bconn *c = &w->conns[idx];
	struct io_uring_sqe *sqe = perfring_sqe(&w->ring);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, ud(OP_RECV, idx));
	c->recv_armed = true;
	c->need_arm = false;
}

static void submit_send(struct benchrun_worker *w, uint32_t idx)
{
	struct bconn *c = &w->conns[idx];
	struct io_uring_sqe *sqe = perfring_sqe(&w->ring);
	io_uring_prep_send(sqe, c->fd, c->sbuf + c->soff, c->slen - c->soff,
	                   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud(OP_SEND, idx));
	c->send_busy = true;
}

/* Stop using a connection. shutdown() ends its multishot recv and any
 * send in flight; their completions are then ignored. The descriptor is
 * closed at teardown, so no completion can name a reused descriptor. */
static void conn_close(struct benchrun_worker *w, struct bconn *c, bool unexpected)
{
	if (c->state == CS_CLOSED || c->state == CS_FAILED)
		return;
	if (c->state == CS_CONNECTING || c->state == CS_AUTH || c->state == CS_PROBE)
		w->settled++;
	if (unexpected)
		w->c.closed++;
	c->state = CS_CLOSED;
	shutdown(c->fd, SHUT_RDWR);
}

static void mismatch(struct benchrun_worker *w, struct bconn *c,
                     enum bench_mismatch kind, bool fatal)
{
	w->c.mismatch[kind]++;
	if (fatal)
		conn_close(w, c, false);
}

static void put_ts(uint8_t *p, uint32_t len, uint64_t ts)
{
	uint8_t be[8];
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(ts >> (56 - 8 * i));
	memcpy(p, be, len < 8 ? len : 8);
}

static uint64_t get_ts(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* ---- sending ------------------------------------------------------------ */

/* Lay out the window once: headers and pattern payloads. Only the
 * timestamp and CRC change per send. The AUTH frame, sent before this,
 * used the same buffer. */
static void conn_lay_window(struct benchrun_worker *w, struct bconn *c)
{
	const struct benchopt *o = w->sh->opt;
	uint32_t fs = frame_size(o);
	for (uint32_t i = 0; i < o->pipeline; i++) {
		uint8_t *f = c->sbuf + (size_t)i * fs;
		frame_put_header(f, req_type(o), (uint16_t)o->payload);
		memcpy(f + FRAME_HEADER_SIZE, w->sh->pattern, o->payload);
	}
}

static void conn_ready(struct benchrun_worker *w, struct bconn *c)
{
	if (c->fifo)
		conn_lay_window(w, c);
	c->state = CS_READY;
	w->settled++;
}

static void stamp_frame(uint8_t *f, uint32_t len, uint64_t ts)
{
	put_ts(f + FRAME_HEADER_SIZE, len, ts);
	frame_put_u32(f + FRAME_HEADER_SIZE + len,
	              frame_crc(0, f, FRAME_HEADER_SIZE + (size_t)len));
}

static void fifo_push(struct bconn *c, uint64_t ts)
{
	c->fifo[(c->fhead + c->fcount) % c->fcap] = ts;
	c->fcount++;
}

static uint64_t fifo_pop(struct bconn *c)
{
	uint64_t ts = c->fifo[c->fhead];
	c->fhead = (c->fhead + 1) % c->fcap;
	c->fcount--;
	return ts;
}

/* Send the next window on a ready connection with no send in flight. */
static void conn_fill(struct benchrun_worker *w, uint32_t idx)
{
	struct bconn *c = &w->conns[idx];
	const struct benchopt *o = w->sh->opt;
	bool replies = o->type == BENCH_PING || o->type == BENCH_ECHO;
	uint32_t k;

	if (c->state != CS_READY || c->receiver || c->send_busy ||
	    o->connect_only || w->now >= w->sh->t_end)
		return;
	if ((bcast_ping(w) && c->fcount) || c->await_ts)
		return;
	k = replies ? o->pipeline - c->fcount : o->pipeline;
	if (o->rate > 0) {
		if (c->backlog > k)
			w->c.late++;
		k = c->backlog < k ? c->backlog : k;
		c->backlog -= k;
	}
	if (k == 0)
		return;

	uint32_t fs = frame_size(o);
	uint64_t ts = benchrun_now();
	for (uint32_t i = 0; i < k; i++) {
		stamp_frame(c->sbuf + (size_t)i * fs, o->payload, ts + i);
		if (replies)
			fifo_push(c, ts + i);
	}
	c->slen = k * fs;
	if (w->bflow == BENCH_FLOW_WITNESS)
		c->await_ts = ts + k - 1;
	if (bcast_ping(w)) {
		uint8_t *p = c->sbuf + c->slen;
		frame_put_header(p, FRAME_PING, MSG_PING_LEN);
		stamp_frame(p, MSG_PING_LEN, ts + k);
		fifo_push(c, ts + k);
		c->slen += PING_FRAME_SIZE;
	}
	c->soff = 0;
	c->sframes = k;
	w->c.sent_total += k;
	/* By the requests' own stamp, as their ERRORs are matched below.
	 * DATA counts when the kernel has taken it (on_send). */
	if (o->type != BENCH_DATA && in_window(w, ts)) {
		w->c.sent += k;
		w->c.sends++;
		c->sent_w += k;
	}
	submit_send(w, idx);
}

static void on_send(struct benchrun_worker *w, uint32_t idx, int res)
{
	struct bconn *c = &w->conns[idx];
	const struct benchopt *o = w->sh->opt;

	c->send_busy = false;
	if (c->state == CS_CLOSED)
		return;
	if (res < 0) {
		conn_close(w, c, w->now < w->sh->t_end);
		return;
	}
	c->soff += (uint32_t)res;
	if (c->soff < c->slen) {
		submit_send(w, idx);
		return;
	}
	if (c->state == CS_AUTH || c->state == CS_PROBE)
		return;
	/* DATA gets no reply: it counts once the kernel has taken it. */
	if (o->type == BENCH_DATA && measuring(w)) {
		w->c.msgs += c->sframes;
		w->c.sent += c->sframes;
		w->c.sends++;
		c->sent_w += c->sframes;
		w->c.payload_bytes += (uint64_t)c->sframes * o->payload;
	}
	mark_dirty(w, idx);
}

/* ---- receiving ---------------------------------------------------------- */

/* Is this payload ours: timestamp prefix as expected (or plausible, when
 * want_ts is 0) and the pattern after it? */
static bool payload_ok(const struct benchrun_worker *w, const uint8_t *p,
                       uint32_t len, uint64_t want_ts)
{
	uint32_t tl = len < 8 ? len : 8;
	if (want_ts) {
		uint8_t be[8];
		put_ts(be, 8, want_ts);
		if (memcmp(p, be, tl) != 0)
			return false;
	} else if (len >= 8) {
		uint64_t ts = get_ts(p);
		if (ts < w->sh->t_connect || ts > w->now + 1000000000ull)
			return false;
	}
	return memcmp(p + tl, w->sh->pattern + tl, len - tl) == 0;
}

/*
 * Check a header as soon as its 8 bytes are here. Returns false (and
 * closes the connection) when the type or length cannot be a frame this
 * connection expects: framing from there on cannot be trusted.
 */
static bool header_ok(struct benchrun_worker *w, struct bconn *c,
                      const struct frame_view *f)
{
	const struct benchopt *o = w->sh->opt;

	if (f->type == FRAME_ERROR)
		return true;
	if (c->state == CS_AUTH) {
		if (f->type != FRAME_AUTH_REPLY) {
			mismatch(w, c, MM_TYPE, true);
			return false;
		}
		if (f->len != MSG_AUTH_REPLY_LEN) {
			mismatch(w, c, MM_LENGTH, true);
			return false;
		}
		return true;
	}
	if (o->type == BENCH_BROADCAST && f->type == FRAME_BROADCAST) {
		if (f->len != o->payload) {
			mismatch(w, c, MM_LENGTH, true);
			return false;
		}
		return true;
	}
	uint8_t want = bcast_ping(w) ? FRAME_PONG : reply_type(o);
	uint32_t want_len = want == FRAME_PONG ? MSG_PING_LEN : o->payload;
	if (c->receiver || f->type != want) {
		mismatch(w, c, MM_TYPE, true);
		return false;
	}
	if (f->len != want_len) {
		mismatch(w, c, MM_LENGTH, true);
		return false;
	}
	if (c->fcount == 0) {
		mismatch(w, c, MM_UNEXPECTED, true);
		return false;
	}
	return true;
}

static void on_error_frame(struct benchrun_worker *w, struct bconn *c,
                           const struct frame_view *f)
{
	uint16_t code;
	const uint8_t *text;
	size_t tlen;

	if (msg_error_parse(f->payload, f->len, &code, &text, &tlen) < 0) {
		mismatch(w, c, MM_LENGTH, false);
		return;
	}
	unsigned slot = code <= ERR_MAX ? code : 0;
	if (c->state == CS_AUTH || c->state == CS_PROBE) {
		w->c.errors_other[slot]++;
		conn_close(w, c, false);
		return;
	}
	/*
	 * An error that does not close answers one request in its place, and
	 * counts when that request was sent in the window. In closed-loop
	 * broadcast the FIFO holds only the window's PING, and an error there
	 * most likely answers a BROADCAST: leave it. BROADCAST and DATA have
	 * no answer to take the place of; their ERRORs arriving in the window
	 * count up to the frames this connection sent in it. So the window's
	 * ERROR count never exceeds its requests sent.
	 */
	bool counted;
	if (code <= ERR_MAX && !msg_error_closes(code) && c->fcount && !bcast_ping(w))
		counted = in_window(w, fifo_pop(c));
	else
		counted = measuring(w) && c->err_w < c->sent_w;
	if (counted) {
		w->c.errors[slot]++;
		c->err_w++;
	} else {
		w->c.errors_other[slot]++;
	}
	/* A refused broadcast may have been the one the witness waits for:
	 * do not wait for it. */
	if (w->bflow == BENCH_FLOW_WITNESS && !c->receiver)
		c->await_ts = 0;
	mark_dirty(w, (uint32_t)(c - w->conns));
}

/* --connect-only: one PING, answered before the connection counts. */
static void start_probe(struct benchrun_worker *w, struct bconn *c)
{
	const struct benchopt *o = w->sh->opt;
	conn_lay_window(w, c);
	uint64_t ts = benchrun_now();
	stamp_frame(c->sbuf, o->payload, ts);
	fifo_push(c, ts);
	c->slen = frame_size(o);
	c->soff = 0;
	c->sframes = 0;
	c->state = CS_PROBE;
	submit_send(w, (uint32_t)(c - w->conns));
}

static void on_auth_reply(struct benchrun_worker *w, struct bconn *c,
                          const struct frame_view *f)
{
	if (f->payload[0] != 1) {
		w->c.mismatch[MM_AUTH]++;
		conn_close(w, c, false);
		return;
	}
	if (w->sh->opt->connect_only)
		start_probe(w, c);
	else
		conn_ready(w, c);
}

/* A whole, CRC-checked frame (header already passed header_ok). */
static void on_frame(struct benchrun_worker *w, struct bconn *c,
                     const struct frame_view *f)
{
	if (f->type == FRAME_ERROR) {
		on_error_frame(w, c, f);
		return;
	}
	if (c->state == CS_AUTH) {
		on_auth_reply(w, c, f);
		return;
	}
	if (f->type == FRAME_BROADCAST) {
		if (!payload_ok(w, f->payload, f->len, 0)) {
			mismatch(w, c, MM_PAYLOAD, false);
			return;
		}
		if (c->receiver) {
			if (w->bflow == BENCH_FLOW_WITNESS)
				witness_check(w, (uint32_t)(c - w->conns), get_ts(f->payload));
			w->c.deliveries++;
			if (measuring(w)) {
				w->c.msgs++;
				w->c.payload_bytes += f->len;
				uint64_t ts = f->len >= 8 ? get_ts(f->payload) : 0;
				if (ts && ts <= w->now)
					lathist_record(&w->hist, w->now - ts);
			}
		}
		return;
	}

	uint64_t ts = fifo_pop(c);
	if (c->state == CS_PROBE) {
		if (payload_ok(w, f->payload, f->len, ts))
			conn_ready(w, c);
		else
			mismatch(w, c, MM_PAYLOAD, true);
		return;
	}
	if (!payload_ok(w, f->payload, f->len, ts)) {
		mismatch(w, c, MM_PAYLOAD, false);
	} else if (measuring(w) && !bcast_ping(w)) {
		w->c.msgs++;
		w->c.payload_bytes += f->len;
		lathist_record(&w->hist, w->now - ts);
	}
	mark_dirty(w, (uint32_t)(c - w->conns));
}

/*
 * Act on a frame_decode result for a frame at hand. Returns false when
 * the connection was closed (stop parsing its bytes).
 */
static bool on_decoded(struct benchrun_worker *w, struct bconn *c, int r,
                       const struct frame_view *f)
{
	switch (r) {
	case FRAME_EMAGIC:
		mismatch(w, c, MM_MAGIC, true);
		return false;
	case FRAME_EVERSION:
		mismatch(w, c, MM_VERSION, true);
		return false;
	case FRAME_ETOOLARGE:
		mismatch(w, c, MM_LENGTH, true);
		return false;
	case FRAME_ECRC:
		if (!header_ok(w, c, f))
			return false;
		mismatch(w, c, MM_CRC, false);
		/* The damaged frame still answered its request. */
		if (f->type != FRAME_ERROR && f->type != FRAME_BROADCAST &&
		    c->state == CS_READY && c->fcount) {
			fifo_pop(c);
			mark_dirty(w, (uint32_t)(c - w->conns));
		}
		return c->state != CS_CLOSED;
	default:
		if (!header_ok(w, c, f))
			return false;
		on_frame(w, c, f);
		return c->state != CS_CLOSED;
	}
}

static void conn_input(struct benchrun_worker *w, struct bconn *c,
                       const uint8_t *p, size_t n)
{
	while (c->state != CS_CLOSED) {
		struct frame_view f;
		int r = frame_reasm_next(&c->ra, NULL, &p, &n, &f);
		if (r == FRAME_NEED_MORE || r == FRAME_REASM_NOBUF) {
			/* A partial frame: its header is checked as soon as it
			 * is here, not when bytes that may never come arrive. */
			if (f.payload && !header_ok(w, c, &f))
				return;
			if (r == FRAME_NEED_MORE)
				return;
			uint8_t *b = malloc(FRAME_MAX_SIZE);
			if (!b) {
				conn_close(w, c, true);
				return;
			}
			free(frame_reasm_move(&c->ra, b, FRAME_MAX_SIZE));
			continue;
		}
		if (!on_decoded(w, c, r, &f))
			return;
	}
}

static void on_recv(struct benchrun_worker *w, uint32_t idx,
                    const struct io_uring_cqe *cqe)
{
	struct bconn *c = &w->conns[idx];
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		bufring_took(&w->br);
		if (cqe->res > 0 && c->state != CS_CLOSED)
			conn_input(w, c, bufring_addr(&w->br, bid), (size_t)cqe->res);
		bufring_put(&w->br, bid);
	}
	if (!more)
		c->recv_armed = false;
	if (c->state == CS_CLOSED)
		return;
	if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS)) {
		conn_close(w, c, w->now < w->sh->t_end);
		return;
	}
	if (!more) {
		/* Out of buffers (or the kernel ended the multishot): re-arm
		 * after this batch has handed its buffers back. */
		c->need_arm = true;
		mark_dirty(w, idx);
	}
}

/* ---- connecting --------------------------------------------------------- */

const struct sockaddr *benchrun_addr(const struct benchrun_shared *sh, uint32_t gidx)
{
	const struct benchopt *o = sh->opt;
	if (o->nreceivers_at && gidx >= o->connections)
		return (const struct sockaddr *)&sh->raddr[(gidx - o->connections) %
		                                           o->nreceivers_at];
	return (const struct sockaddr *)&sh->addr;
}

static int conn_socket(struct benchrun_worker *w, struct bconn *c)
{
	const struct benchopt *o = w->sh->opt;
	int fd = socket(w->sh->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (o->source_addrs) {
		/* Defer the port choice to connect(), so each source address
		 * gets its own ephemeral range per destination. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		struct sockaddr_in src = {
			.sin_family = AF_INET,
			.sin_addr.s_addr = htonl(0x7f000001u + c->gidx % o->source_addrs),
		};
		if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
			int err = -errno;
			close(fd);
			return err;
		}
	}
	c->fd = fd;
	return 0;
}

static void connect_fail(struct benchrun_worker *w, struct bconn *c, int err)
{
	w->c.connect_failed++;
	if (!w->c.first_connect_err)
		w->c.first_connect_err = err;
	c->state = CS_FAILED;
	w->settled++;
}

static void start_connects(struct benchrun_worker *w)
{
	while (w->connecting < CONNECT_WINDOW && w->next_connect < w->nconns) {
		uint32_t idx = w->next_connect++;
		struct bconn *c = &w->conns[idx];
		int ret = conn_socket(w, c);
		if (ret < 0) {
			connect_fail(w, c, ret);
			continue;
		}
		struct io_uring_sqe *sqe = perfring_sqe(&w->ring);
		io_uring_prep_connect(sqe, c->fd, benchrun_addr(w->sh, c->gidx),
		                      w->sh->addrlen);
		io_uring_sqe_set_data64(sqe, ud(OP_CONNECT, idx));
		c->state = CS_CONNECTING;
		w->connecting++;
	}
}

static void send_auth(struct benchrun_worker *w, uint32_t idx)
{
	const struct benchopt *o = w->sh->opt;
	struct bconn *c = &w->conns[idx];
	int len = msg_auth_build(c->sbuf + FRAME_HEADER_SIZE, o->auth_user,
	                         o->auth_user_len, o->auth_token, o->auth_token_len);
	c->slen = (uint32_t)frame_encode(c->sbuf, FRAME_AUTH, c->sbuf + FRAME_HEADER_SIZE,
	                                 (uint16_t)len);
	c->soff = 0;
	c->sframes = 0;
	submit_send(w, idx);
}

static void on_connect(struct benchrun_worker *w, uint32_t idx, int res)
{
	const struct benchopt *o = w->sh->opt;
	struct bconn *c = &w->conns[idx];

	w->connecting--;
	if (c->state != CS_CONNECTING)
		return; /* timed out meanwhile */
	if (res < 0) {
		connect_fail(w, c, res);
		return;
	}
	/* Room for the request window (load connections) or the AUTH frame,
	 * whichever is bigger. */
	size_t cap = 0;
	if (c->fifo)
		cap = (size_t)frame_size(o) * o->pipeline + PING_FRAME_SIZE;
	size_t auth_room = FRAME_OVERHEAD + 1 + MSG_AUTH_USER_MAX + MSG_AUTH_TOKEN_MAX;
	if (o->auth_user && cap < auth_room)
		cap = auth_room;
	if (cap && !(c->sbuf = malloc(cap))) {
		shutdown(c->fd, SHUT_RDWR);
		connect_fail(w, c, -ENOMEM);
		return;
	}
	arm_recv(w, idx);
	if (o->auth_user) {
		c->state = CS_AUTH;
		send_auth(w, idx);
	} else if (o->connect_only) {
		start_probe(w, c);
	} else {
		conn_ready(w, c);
	}
}

/* ---- loop --------------------------------------------------------------- */

static void handle_cqe(struct benchrun_worker *w, const struct io_uring_cqe *cqe)
{
	uint64_t d = io_uring_cqe_get_data64(cqe);
	uint32_t idx = (uint32_t)d;
	switch ((enum op)(d >> 32)) {
	case OP_CONNECT:
		on_connect(w, idx, cqe->res);
		break;
	case OP_RECV:
		on_recv(w, idx, cqe);
		break;
	case OP_SEND:
		on_send(w, idx, cqe->res);
		break;
	}
}

/* Open loop: hand out the messages that have fallen due, round-robin
 * (one pass over the connections however many fell due: a rate far above
 * what the bench can send must not turn this into the busiest loop). */
static void schedule_due(struct benchrun_worker *w)
{
	if (w->rate <= 0 || w->nload == 0 || !w->loading)
		return;
	uint64_t due = (uint64_t)((double)(w->now - w->sh->t_start) * w->rate / 1e9) + 1;
	if (due <= w->scheduled)
		return;
	uint64_t n = due - w->scheduled;
	uint64_t each = n / w->nload, rest = n % w->nload;
	w->scheduled = due;
	for (uint32_t j = 0; j < w->nload; j++) {
		/* The first rest connections from rr get one more. */
		uint32_t idx = (uint32_t)((w->rr + j) % w->nload);
		uint64_t k = each + (j < rest ? 1 : 0);
		struct bconn *c = &w->conns[idx];
		if (k == 0 || c->state != CS_READY)
			continue;
		c->backlog = k > UINT32_MAX - c->backlog ? UINT32_MAX : c->backlog + (uint32_t)k;
		mark_dirty(w, idx);
	}
	w->rr = (uint32_t)((w->rr + rest) % w->nload);
}

static uint64_t next_wake(const struct benchrun_worker *w, uint64_t limit)
{
	if (w->rate > 0 && w->loading) {
		uint64_t t = w->sh->t_start + (uint64_t)((double)w->scheduled * 1e9 / w->rate);
		if (t < limit)
			limit = t;
	}
	return limit;
}

/* Refill and re-arm what the last batch (or the scheduler) made ready. */
static void flush_dirty(struct benchrun_worker *w)
{
	for (uint32_t i = 0; i < w->ndirty; i++) {
		uint32_t idx = w->dirty[i];
		struct bconn *c = &w->conns[idx];
		c->dirty = false;
		if (c->state == CS_CLOSED || c->state == CS_FAILED)
			continue;
		if (c->need_arm && !c->recv_armed)
			arm_recv(w, idx);
		conn_fill(w, idx);
	}
	w->ndirty = 0;
}

/* One turn: send what is ready, submit, wait until a completion or
 * wake_at, handle the batch, and hand its buffers back at once. */
static void turn(struct benchrun_worker *w, uint64_t wake_at)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = { 0 };

	flush_dirty(w);
	uint64_t now = benchrun_now();
	/* Wake at least every PUBLISH_NS to publish the live counts. */
	if (wake_at > now + PUBLISH_NS)
		wake_at = now + PUBLISH_NS;
	uint64_t wait = wake_at > now ? wake_at - now : 0;
	ts.tv_sec = (long long)(wait / 1000000000ull);
	ts.tv_nsec = (long long)(wait % 1000000000ull);
	/* Behind schedule (open loop): do not wait, but still ask for events.
	 * With DEFER_TASKRUN the replies that arrived are task work that
	 * reaches the CQ only in an io_uring_enter with GETEVENTS; a plain
	 * submit would leave them there for as long as the bench stays
	 * behind, and a rate above what it can send counted nothing. */
	if (wait)
		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
	else
		io_uring_submit_and_get_events(&w->ring);

	w->now = benchrun_now();
	unsigned head, seen = 0;
	io_uring_for_each_cqe(&w->ring, head, cqe) {
		handle_cqe(w, cqe);
		seen++;
	}
	io_uring_cq_advance(&w->ring, seen);
	bufring_flush(&w->br);
	schedule_due(w);
	if (w->now >= w->next_publish) {
		bench_live_publish(&w->live, &w->c, &w->hist);
		w->next_publish = w->now + PUBLISH_NS;
	}
}

static int worker_setup(struct benchrun_worker *w)
{
	int ret = perfring_init(&w->ring, RING_ENTRIES, CQ_ENTRIES);
	if (ret < 0) {
		snprintf(w->errmsg, sizeof w->errmsg, "io_uring setup: %s", strerror(-ret));
		return ret;
	}
	w->ring_ok = true;
	ret = bufring_init(&w->br, &w->ring, BGID, BUF_COUNT, BUF_SIZE);
	if (ret < 0) {
		snprintf(w->errmsg, sizeof w->errmsg, "buffer ring: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

void *benchrun_worker_main(void *arg)
{
	struct benchrun_worker *w = arg;
	struct benchrun_shared *sh = w->sh;
	bool counted_ready = false;

	w->err = worker_setup(w);
	if (w->err < 0) {
		atomic_fetch_add(&sh->ready, 1);
		return NULL;
	}

	/* Connect everything, then idle (still serving completions) until
	 * the main thread says go. */
	uint64_t deadline = benchrun_now() + CONNECT_TIMEOUT_NS;
	for (;;) {
		w->now = benchrun_now();
		if (w->settled < w->nconns && w->now >= deadline) {
			for (uint32_t i = 0; i < w->nconns; i++) {
				struct bconn *c = &w->conns[i];
				if (c->state == CS_CONNECTING) {
					connect_fail(w, c, -ETIMEDOUT);
					shutdown(c->fd, SHUT_RDWR);
				} else if (c->state == CS_AUTH) {
					w->c.mismatch[MM_AUTH]++;
					conn_close(w, c, false);
				} else if (c->state == CS_PROBE) {
					/* Connected, never served: not open. */
					c->state = CS_CONNECTING;
					connect_fail(w, c, -ETIMEDOUT);
					shutdown(c->fd, SHUT_RDWR);
				}
			}
		}
		start_connects(w);
		if (!counted_ready && w->settled >= w->nconns) {
			counted_ready = true;
			atomic_fetch_add(&sh->ready, 1);
		}
		if (counted_ready && atomic_load_explicit(&sh->go, memory_order_acquire))
			break;
		turn(w, w->now + 1000000ull);
	}

	/* Load: closed-loop workers prime every window now; open-loop ones
	 * wait for their messages to fall due. */
	w->now = benchrun_now();
	w->loading = true;
	for (uint32_t i = 0; i < w->nload; i++)
		mark_dirty(w, i);
	while (w->now < sh->t_end)
		turn(w, next_wake(w, sh->t_end));

	for (uint32_t i = 0; i < w->nconns; i++) {
		struct bconn *c = &w->conns[i];
		if (c->state == CS_READY)
			w->c.open_at_end++;
	}
	bench_live_publish(&w->live, &w->c, &w->hist);
	return NULL;
}

int benchrun_worker_init(struct benchrun_worker *w, struct benchrun_shared *sh,
                         unsigned id)
{
	const struct benchopt *o = sh->opt;
	memset(w, 0, sizeof *w);
	w->sh = sh;
	w->id = id;
	bench_live_init(&w->live);

	uint32_t nall = benchrun_share(o, id, &w->nload);
	w->nconns = nall;
	w->rate = o->rate / o->threads;
	w->conns = calloc(nall ? nall : 1, sizeof *w->conns);
	w->dirty = calloc(nall ? nall : 1, sizeof *w->dirty);
	if (!w->conns || !w->dirty)
		goto err;

	if (o->type == BENCH_BROADCAST && o->rate == 0)
		w->bflow = nall > w->nload && o->payload >= 8 ? BENCH_FLOW_WITNESS
		                                              : BENCH_FLOW_PING;
	uint32_t fcap = bcast_ping(w) ? 1 : o->pipeline;
	uint32_t li = 0, ri = w->nload;
	for (uint32_t g = id; g < o->connections + o->receivers; g += o->threads) {
		bool rcv = g >= o->connections;
		struct bconn *c = &w->conns[rcv ? ri++ : li++];
		c->fd = -1;
		c->gidx = g;
		c->receiver = rcv;
		if (!rcv) {
			c->fcap = fcap;
			c->fifo = calloc(fcap, sizeof *c->fifo);
			if (!c->fifo)
				goto err;
		}
	}
	return 0;
err:
	benchrun_worker_free(w);
	return -ENOMEM;
}

uint32_t benchrun_share(const struct benchopt *o, unsigned id, uint32_t *nload)
{
	uint32_t t = o->threads;
	uint32_t total = o->connections + o->receivers;
	*nload = o->connections / t + (id < o->connections % t ? 1 : 0);
	return total / t + (id < total % t ? 1 : 0);
}

void benchrun_worker_free(struct benchrun_worker *w)
{
	if (w->ring_ok) {
		/* Exiting the ring cancels every request still in flight,
		 * so the buffers and descriptors below are ours again. */
		io_uring_queue_exit(&w->ring);
		bufring_destroy(&w->br, NULL);
		w->ring_ok = false;
	}
	for (uint32_t i = 0; w->conns && i < w->nconns; i++) {
		struct bconn *c = &w->conns[i];
		if (c->fd >= 0)
			close(c->fd);
		free(c->fifo);
		free(c->sbuf);
		free(c->ra.buf);
	}
	free(w->conns);
	free(w->dirty);
	w->conns = NULL;
	w->dirty = NULL;
	bench_live_destroy(&w->live);
}
