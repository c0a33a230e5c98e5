/*
 * conn.h - a client connection on its worker: its states and flags, its
 * life cycle, its completions, and the passes the loop makes over the
 * worker's connections each turn.
 *
 * Everything here runs on the connection's worker thread. A connection
 * lives in its worker's table at the index of its direct descriptor (its
 * slot) and is named by (slot, generation) in every SQE.
 *
 * Modules (one job each):
 *   conn.c       life cycle, submissions, completions (the diagram below)
 *   input.c      bytes to frames: decode in place, reassemble straddlers
 *   conn_tls.c   TLS glue: decrypt input, seal output in bounded slices
 *   outq.c       the output queue and the out_*() frame encoders
 *   sweep.c      once per loop turn: flush, re-arm, pause and resume, drain
 */
#ifndef NET001_NET_CONN_H
#define NET001_NET_CONN_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/outq.h"
#include "net/ratelimit.h"
#include "net/worker.h"
#include "proto/reasm.h"

struct rbuf;
struct tls_conn;

#define OPEN_NONE UINT32_MAX   /* conn.open_pos: not eligible for broadcasts */

/* A TLS session and the records waiting for the wire (net/tls.h). */
struct conn_tls {
	struct tls_conn *s;
	struct outq tx;         /* ciphertext; the send queue of a TLS conn */
};

/* ---- connections ----------------------------------------------------------
 *
 *        accept
 *          |
 *          v         protocol error, SERVER_FULL, IDLE_TIMEOUT,
 *       [OPEN] ----- SLOW_CONSUMER, AUTH_FAILED, shutdown, peer EOF --+
 *          |                                                        |
 *          | peer reset / send error / deadline (hard)              v
 *          |                                          [CLOSING]: input read
 *          |                                          and dropped, output
 *          |                                          flushed, then
 *          |                                          shutdown(SHUT_WR) and
 *          |                                          wait for the peer's
 *          |                                          EOF or the deadline
 *          v                                                        |
 *       [HARD]: output dropped, recv and send cancelled  <----------+ deadline
 *          |
 *          | no request naming the slot in flight (recv, send, shutdown,
 *          | cancel): a late one would act on the slot's next connection
 *          v
 *       close_direct, slot free (generation bumped)
 *
 * Within OPEN, receiving is suspended (no recv armed) while the core's
 * buffer ring is empty (NOBUF: re-armed as buffers return), while the
 * core holds too many broadcasts for slower cores (PAUSED: resumed when
 * they drain), or while the connection's own unsent output is above the
 * core's high-water mark (OUTFULL: resumed below the low-water mark, so
 * a client that does not read its replies is held back by its own TCP
 * window). None of them ends the connection; output past --max-output
 * does (SLOW_CONSUMER), which only output that reading cannot hold back
 * (broadcasts) can reach.
 *
 * Flags: */
enum conn_flag {
	CF_OPEN     = 1u << 0,  /* slot in use */
	CF_RECV     = 1u << 1,  /* multishot recv armed */
	CF_SEND     = 1u << 2,  /* a send is in flight */
	CF_CLOSING  = 1u << 3,  /* no more requests; flushing then lingering */
	CF_HARD     = 1u << 4,  /* drop output, cancel everything, close */
	CF_EOF      = 1u << 5,  /* peer finished sending; never re-arm recv */
	CF_SHUT     = 1u << 6,  /* shutdown(SHUT_WR) submitted */
	CF_AUTHED   = 1u << 7,
	CF_DIRTY    = 1u << 8,  /* on the core's flush list */
	CF_NOBUF    = 1u << 9,  /* waiting for buffers to re-arm recv */
	CF_CANCEL   = 1u << 10, /* recv cancel submitted */
	CF_REJECTED = 1u << 11, /* over --max-connections: not counted as open */
	CF_PAUSED   = 1u << 12, /* not reading: its core holds too many broadcasts */
	CF_OUTFULL  = 1u << 13, /* not reading: its unsent output is above out_high */
	CF_BPIN     = 1u << 14, /* on the worker's pinned list: left the broadcast
	                           audience with log bytes in a send in flight */
};
/* Reasons not to read that are ours, not the peer's. */
#define CF_HELD (CF_PAUSED | CF_OUTFULL)

/* A receiver's cursor in its worker's broadcast log (net/blog.h). Valid
 * while the connection is eligible (open_pos set), and while a send in
 * flight still carries log bytes after it left (CF_BPIN). */
struct bcur {
	uint64_t pos;           /* first log byte not yet sent (or passed over) */
	uint64_t fpos;          /* start of the frame that holds pos */
	uint64_t fno;           /* that frame's ordinal */
	uint64_t own_end;       /* ordinal after this connection's last broadcast */
	uint32_t inflight;      /* log bytes in the send in flight */
	uint32_t rest;          /* of them, the rest of a frame, sent first */
	uint64_t prog_ms;       /* worker clock when pos last moved, or it joined */
};

struct conn {
	uint32_t gen;           /* bumped each time the slot is freed */
	uint32_t flags;         /* enum conn_flag */
	uint32_t last_frame_s;  /* core clock at the last complete frame */
	uint32_t open_pos;      /* index in worker->open[] while broadcast-eligible */
	uint8_t auth_fails;
	uint8_t ctl;            /* shutdowns and cancels in flight: they name the slot */
	uint32_t replies;       /* replies queued since the last send (latency) */
	uint64_t reply_t0;      /* clock of the read behind the oldest of them */
	struct outq out;        /* frames to send (plaintext under TLS) */
	struct conn_tls *tls;   /* NULL unless --tls */
	uint32_t inflight;      /* bytes in the send in flight */
	struct rbuf *rx;        /* partial frame, only while one straddles reads */
	struct frame_reasm ra;  /* what of it is held in rx (proto/reasm.h) */
	struct bucket rl;       /* per-connection rate limit */
	struct bcur b;          /* where it reads the worker's broadcast log */
};

/* ---- conn.c ---- */

void conn_accepted(struct worker *co, uint32_t slot);
void conn_on_recv(struct worker *co, uint32_t slot, struct io_uring_cqe *cqe);
void conn_on_send(struct worker *co, uint32_t slot, uint32_t gen, int res);
void conn_on_timer(struct worker *co, uint32_t slot);
/* A shutdown or cancel of the connection in slot completed. */
void conn_on_ctl(struct worker *co, uint32_t slot);
/* Close with an ERROR frame (code 0: none) sent first. */
void conn_close(struct worker *co, struct conn *c, uint32_t slot, unsigned code);
void conn_close_hard(struct worker *co, struct conn *c, uint32_t slot);
/* After output was queued: SLOW_CONSUMER once unsent output passes
 * --max-output; stop reading from the connection above out_high. */
void conn_check_backlog(struct worker *co, struct conn *c, uint32_t slot);
/* Answer with an ERROR: closing codes close (conn_close), the others are
 * queued as a reply (a latency sample) and the connection goes on. */
void conn_error(struct worker *co, struct conn *c, uint32_t slot, unsigned code);
/* Arm a receive unless one is armed or something says not to read. */
void conn_maybe_recv(struct worker *co, struct conn *c, uint32_t slot);
/* End the multishot recv (it completes with -ECANCELED and is not
 * re-armed while a CF_HELD reason stands). */
void conn_stop_recv(struct worker *co, struct conn *c, uint32_t slot);
/* Start the one send of everything queued. false: not now (the kernel
 * holds back SQEs and every sendmsg header is taken); try next turn. */
bool conn_send(struct worker *co, struct conn *c, uint32_t slot);
/* After output drained on a closing connection: FIN, then wait for EOF. */
void conn_closing_progress(struct worker *co, struct conn *c, uint32_t slot);

/*
 * A connection-level line on the core's rate-limited log, with the slot
 * and (under --debug) the peer: "core 0: slot 3 (127.0.0.1:51234)" then
 * the message, which brings its own separator (" idle timeout", ": ...").
 * In JSON, "slot" and "peer" come before the caller's fields. Does nothing
 * (not even formatting) for a line the limit or the level keeps out.
 */
void conn_log(struct worker *co, uint32_t slot, enum log_level lvl, const char *event,
              const struct log_kv *kv, size_t nkv, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* ---- input.c ---- */

/* Plaintext bytes from the peer: every whole frame in them is handled. */
void conn_input(struct worker *co, struct conn *c, uint32_t slot, const uint8_t *p,
                size_t n);
/* Forget a partial frame (the connection closes). */
void conn_rx_drop(struct worker *co, struct conn *c);

/* ---- conn_tls.c ---- */

/* Ciphertext from the peer: decrypt and feed the frames to conn_input(). */
void ctls_input(struct worker *co, struct conn *c, uint32_t slot, const uint8_t *p,
                size_t n);
/* Before a send: encrypt a bounded slice of the queued frames. 0, or
 * -EPROTO after closing the connection hard. */
int ctls_seal(struct worker *co, struct conn *c, uint32_t slot);

/* ---- sweep.c: once per loop turn ---- */

/* Start the sends of connections with output, at most FLUSH_BUDGET per
 * turn; the others stay on the list, in order, and the next turn does not
 * sleep (co->flush_more). */
#define FLUSH_BUDGET 64u
void conn_flush_all(struct worker *co);
void conn_rearm_nobuf(struct worker *co);
/* Stop reading from a connection until conn_resume_all() (broadcast
 * back-pressure); the frames already read are still handled. */
void conn_pause(struct worker *co, uint32_t slot);
void conn_resume_all(struct worker *co);
/* Shutdown: SHUTTING_DOWN to every client, then close as usual. */
void conn_drain_all(struct worker *co);
/* Last resort at the drain deadline: everything closes now. */
void conn_release_all(struct worker *co);

/* ---- small helpers ---- */

static inline void mark_dirty(struct worker *co, struct conn *c, uint32_t slot)
{
	if (c->flags & CF_DIRTY)
		return;
	c->flags |= CF_DIRTY;
	co->dirty[co->ndirty++] = slot;
}


/* Replies not yet confirmed sent: frames, and under TLS records. */
static inline uint64_t unsent_replies(const struct conn *c)
{
	return c->out.bytes + (c->tls ? c->tls->tx.bytes : 0);
}

/* Everything not yet confirmed sent: replies, and broadcasts still
 * ahead of the connection's cursor in the log. */
static inline uint64_t unsent(const struct worker *co, const struct conn *c)
{
	uint64_t lag = c->open_pos != OPEN_NONE ? co->log.head - c->b.pos : 0;
	return unsent_replies(c) + lag;
}

/* What goes on the wire: the frames, or under TLS the records. */
static inline struct outq *sendq(struct conn *c)
{
	return c->tls ? &c->tls->tx : &c->out;
}

/* A reply is queued: its latency runs from this iteration's read. */
static inline void reply_started(struct worker *co, struct conn *c)
{
	if (c->replies++ == 0)
		c->reply_t0 = co->now_ns;
}

#endif
