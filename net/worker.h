/*
 * engine.h - the thread-per-core io_uring engine: types shared by core/
 * (rings, loop, accept, shutdown) and net/ (connections, messages).
 *
 * Threads: main() owns struct server and starts one worker per core. Each
 * struct worker, and every connection, buffer and pool in it, belongs to its
 * worker thread alone; other threads touch only the fields marked "shared".
 *
 * user_data of every SQE packs the operation, the connection slot and the
 * slot's generation, so a completion for a closed and reused slot is
 * recognised and dropped:
 *
 *     63      56 55          32 31                0
 *     +---------+--------------+------------------+
 *     |   op    |  generation  |   slot (index)   |
 *     +---------+--------------+------------------+
 */
#ifndef NET001_ENGINE_H
#define NET001_ENGINE_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/bufring.h"
#include "core/config.h"   /* core/config.h: flags and environment (pulls in the generated <config.h>) */
#include "proto/frame.h"
#include "core/log.h"
#include "metrics/metrics.h"
#include "core/pool.h"
#include "net/ratelimit.h"
#include "core/spsc.h"
#include "core/wheel.h"

struct config;
struct auth_table;
struct tls_ctx;
struct tls_conn;
struct worker;
struct conn;

/* ---- operations in user_data ------------------------------------------ */
enum op {
	OP_IGNORE = 0,  /* cancels, shutdowns, closes: nothing to do */
	OP_ACCEPT,
	OP_RECV,
	OP_SEND,
	OP_TICK,        /* the core's one-second timeout */
	OP_WAKE,        /* eventfd read: main thread wants attention */
	OP_XCORE,       /* MSG_RING from another core: its queue has items */
	OP_MSGRING,     /* our MSG_RING failed (success CQEs are skipped) */
	OP_RETRY,       /* timer: retry broadcasts held back by full queues */
	OP_NOP,         /* a queue filled while we looked: do not sleep */
	OP_CTL,         /* a shutdown or cancel naming a slot (counted in conn.ctl) */
};

static inline uint64_t ud_pack(enum op op, uint32_t gen, uint32_t slot)
{
	return ((uint64_t)op << 56) | ((uint64_t)(gen & 0xFFFFFF) << 32) | slot;
}
static inline enum op ud_op(uint64_t ud) { return (enum op)(ud >> 56); }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xFFFFFF; }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)ud; }

/* ---- shared buffers ------------------------------------------------------ */

/*
 * A reference-counted byte buffer: a reassembled request (then possibly
 * its own reply), or one broadcast frame shared by many sends.
 *
 * refs counts holders on one core and is touched by that core only. A
 * broadcast frame that crosses cores is "shared": xrefs counts the cores
 * still holding it (atomic, one decrement per core, never per delivery).
 * Other cores hold it through a proxy, a local rbuf whose shared field
 * points at it. The core whose refs reach zero drops its xref; the last
 * xref returns the buffer to its origin core's pool (through the queue
 * back to that core when another core let go last).
 */
struct rbuf {
	uint32_t refs;          /* holders on the current core */
	uint32_t len;           /* bytes used */
	uint32_t cap;           /* bytes in data[] */
	uint8_t cls;            /* pool class in struct worker */
	uint8_t pad_;
	uint16_t origin;        /* core whose pool it belongs to (< 1024) */
	_Atomic uint32_t xrefs; /* cores holding a shared buffer; 0 = core-local */
	struct rbuf *shared;    /* proxy: the shared buffer it stands for */
	uint8_t data[];
};

enum { RBUF_SMALL, RBUF_MID, RBUF_LARGE, RBUF_PROXY, RBUF_CLASSES };

static inline const uint8_t *rbuf_data(const struct rbuf *b)
{
	return b->shared ? b->shared->data : b->data;
}
#define RBUF_SMALL_CAP 512u
#define RBUF_MID_CAP   4096u

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
};
/* Reasons not to read that are ours, not the peer's. */
#define CF_HELD (CF_PAUSED | CF_OUTFULL)

struct conn {
	uint32_t gen;           /* bumped each time the slot is freed */
	uint32_t flags;         /* enum conn_flag */
	uint32_t last_frame_s;  /* core clock at the last complete frame */
	uint32_t open_pos;      /* index in core->open[] while broadcast-eligible */
	uint8_t auth_fails;
	uint8_t ctl;            /* shutdowns and cancels in flight: they name the slot */
	uint32_t replies;       /* replies queued since the last send (latency) */
	uint64_t reply_t0;      /* clock of the read behind the oldest of them */
	struct outq out;        /* frames to send (plaintext under TLS) */
	struct conn_tls *tls;   /* NULL unless --tls */
	uint32_t inflight;      /* bytes in the send in flight */
	struct rbuf *rx;        /* partial frame, only while one straddles reads */
	struct bucket rl;       /* per-connection rate limit */
};

/* ---- the data handler hook --------------------------------------------- */

/*
 * Called on the connection's core for every accepted DATA frame. payload
 * is valid only during the call. conn_id is unique among open
 * connections (core << 32 | slot) and may be reused after close.
 */
typedef void (*data_handler_fn)(void *ctx, uint64_t conn_id,
                                const uint8_t *payload, size_t len);

/* ---- the server (shared by all threads) --------------------------------- */

enum server_state { SERVER_STARTING, SERVER_RUNNING, SERVER_DRAINING, SERVER_STOPPED };

struct server {
	const struct config *cfg;       /* read-only after start */
	uint32_t ncores;
	uint32_t table_size;            /* direct descriptors per core */
	struct worker **cores;
	pthread_t *threads;
	uint32_t nstarted;              /* threads running */
	data_handler_fn data_fn;        /* set before start */
	void *data_ctx;
	struct tls_ctx *tls;            /* set before start when --tls */

	/* shared: */
	_Atomic uint32_t conns;         /* open client connections, all cores */
	_Atomic int state;              /* enum server_state */
	_Atomic(struct auth_table *) auth;
	_Atomic uint64_t auth_gen;      /* bumped by each reload */
	_Atomic uint32_t ready;         /* workers that finished setup */
	_Atomic uint32_t failed;        /* workers that failed setup */
	_Atomic uint32_t exited;        /* workers out of their loop */

	/* Broadcast queues: queues[src * ncores + dst] carries rbuf pointers
	 * from core src (its only producer) to core dst (its only consumer).
	 * The low pointer bit marks a buffer coming home to be recycled. */
	struct spsc *queues;
};

#define XQ_CAPACITY NET001_XCORE_QUEUE
#define XQ_BUDGET   (32u << 20)   /* bytes of queue slots, all pairs together */

static inline struct spsc *server_queue(struct server *srv, uint32_t src, uint32_t dst)
{
	return &srv->queues[src * srv->ncores + dst];
}

/* Broadcasts a core could not queue yet (the queue was full), in order. */
struct holdq {
	void **v;
	uint32_t head, tail, cap; /* tail - head items; cap a power of two */
};

/* ---- a core ------------------------------------------------------------------ */

#define TLS_PLAIN_MAX     16384 /* one TLS record's plaintext */
#define TLS_SEAL_MAX      (4 * TLS_PLAIN_MAX) /* ciphertext queued per connection at once */
#define OUT_HIGH_MAX      (256u << 10) /* out_high, unless --max-output / 2 is less */
#define CORE_SEND_SCRATCH 256   /* sendmsg headers prepared between submits */
#define CORE_IOV_MAX      64    /* iovecs per sendmsg */

struct worker {
	struct io_uring ring;
	struct server *srv;
	const struct config *cfg;
	uint32_t id;
	int cpu;                        /* pinned CPU, -1 if not pinned */
	int listen_fd;
	int wake_fd;                    /* eventfd; main writes, core reads */
	uint64_t wake_val;              /* read target for wake_fd */
	struct bufring br;
	struct frame_decoder dec;

	struct conn *conns;             /* [srv->table_size], slot = fixed file index */
	uint32_t *open;                 /* slots eligible for broadcast */
	uint32_t nopen;
	uint32_t *dirty;                /* slots with output to flush */
	uint32_t ndirty;
	uint32_t *nobuf;                /* slots waiting for receive buffers */
	uint32_t nnobuf;
	uint32_t nlive;                 /* slots in use, any state */

	struct wheel wheel;
	struct pool blk_pool, ref_pool;
	struct pool rbuf_pool[RBUF_CLASSES];

	struct holdq *held;             /* [ncores]: per destination core */
	uint32_t nheld;                 /* items across held[] */
	uint32_t held_high, held_low;   /* pause / resume broadcasting readers */
	uint64_t out_high, out_low;     /* per-connection unsent output: stop / resume reading */
	uint32_t *paused;               /* slots paused for that (may be stale) */
	uint32_t npaused;
	bool retry_armed;
	bool nop_armed;
	struct __kernel_timespec retry_ts;

	uint32_t pong_crc_delta;        /* PING -> PONG: CRC xor this */
	struct tls_ctx *tls;            /* NULL unless --tls (shared, read-only) */
	uint8_t *tls_plain;             /* TLS_PLAIN_MAX bytes of decrypted input */

	struct bucket global_rl;
	uint32_t global_rate;
	uint64_t now_ns;                /* cached clock, once per iteration */
	uint32_t now_s;
	bool poll_wait;                 /* never block in io_uring_enter (valgrind) */
	bool accept_armed;
	bool draining;
	uint32_t drain_deadline_s;
	struct __kernel_timespec tick_ts;

	struct log_limit ll;
	/* shared: written by this core only, read by the metrics exporter. */
	struct metrics_shard m;

	/* sendmsg headers live until their SQEs are submitted (the kernel
	 * copies them at submission: IORING_FEAT_SUBMIT_STABLE). */
	uint32_t nscratch;
	struct msghdr scratch_msg[CORE_SEND_SCRATCH];
	struct iovec scratch_iov[CORE_SEND_SCRATCH][CORE_IOV_MAX];

	/* shared: */
	_Atomic uint64_t seen_gen;      /* auth_gen this core last observed */
};

/* ---- core/engine.c ---------------------------------------------------------- */

/* Open the listeners, start cfg->threads workers and return once all are
 * serving (0), or -errno with one line in err and nothing left running. */
int server_start(struct server *srv, const struct config *cfg, char *err, size_t errlen);
/* Ask every worker to drain (SHUTTING_DOWN to clients) and wait for them. */
void server_stop(struct server *srv);
/* Wake every worker so it notices a state or auth change. */
void server_kick(struct server *srv);
void server_free(struct server *srv);

/* An SQE, submitting first if the SQ is full. Never NULL. */
struct io_uring_sqe *worker_sqe(struct worker *co);
void worker_submit(struct worker *co);


/* ---- net/conn.c --------------------------------------------------------------- */

void conn_accepted(struct worker *co, uint32_t slot);
void conn_on_recv(struct worker *co, uint32_t slot, struct io_uring_cqe *cqe);
void conn_on_send(struct worker *co, uint32_t slot, int res);
void conn_on_timer(struct worker *co, uint32_t slot);
/* A shutdown or cancel of the connection in slot completed. */
void conn_on_ctl(struct worker *co, uint32_t slot);
/* Close with an ERROR frame (code 0: none) sent first. */
void conn_close(struct worker *co, struct conn *c, uint32_t slot, unsigned code);
void conn_close_hard(struct worker *co, struct conn *c, uint32_t slot);
void conn_flush_all(struct worker *co);
/* After output was queued: SLOW_CONSUMER once unsent output passes
 * --max-output; stop reading from the connection above out_high. */
void conn_check_backlog(struct worker *co, struct conn *c, uint32_t slot);
void conn_rearm_nobuf(struct worker *co);
/* Stop reading from a connection until conn_resume_all() (broadcast
 * back-pressure); the frames already read are still handled. */
void conn_pause(struct worker *co, uint32_t slot);
void conn_resume_all(struct worker *co);
void conn_drain_all(struct worker *co);
void conn_release_all(struct worker *co);

/* Output: a reference to [off, off + len) of b, which must be whole
 * frames; marks the conn dirty. Returns 0 or -ENOMEM. */
int out_append_ref(struct worker *co, struct conn *c, uint32_t slot, struct rbuf *b,
                   uint32_t off, uint32_t len);
/* Queue the request frame f again as a reply of another type (PONG,
 * ECHO_REPLY): one copy, and a CRC derived from the request's. */
int out_reply(struct worker *co, struct conn *c, uint32_t slot, const struct frame_view *f,
              uint8_t type);

/* CRC of a request frame fr whose type byte was `from` (CRC old) and now
 * holds the reply type: a constant for PONG, frame_crc_retype() for big
 * payloads, computed afresh for small ones. */
uint32_t reply_crc(const struct worker *co, const uint8_t *fr, uint32_t old, uint8_t from,
                   uint16_t len);
/* Queue a whole frame (header, payload copied, CRC). 0 or -ENOMEM. */
int out_frame(struct worker *co, struct conn *c, uint32_t slot, uint8_t type,
              const void *payload, uint16_t len);
int out_error(struct worker *co, struct conn *c, uint32_t slot, unsigned code);
/* Answer with an ERROR: closing codes close (conn_close), the others are
 * queued as a reply (a latency sample) and the connection goes on. */
void conn_error(struct worker *co, struct conn *c, uint32_t slot, unsigned code);

/* A reply is queued: its latency runs from this iteration's read. */
static inline void reply_started(struct worker *co, struct conn *c)
{
	if (c->replies++ == 0)
		c->reply_t0 = co->now_ns;
}

struct rbuf *rbuf_get(struct worker *co, uint32_t size);
/* A local stand-in for a shared buffer from another core (refs 1). */
struct rbuf *rbuf_proxy(struct worker *co, struct rbuf *shared);
static inline void rbuf_hold(struct rbuf *b) { b->refs++; }
void rbuf_put(struct worker *co, struct rbuf *b);

/* ---- net/broadcast.c --------------------------------------------------------- */

/* Fan a valid BROADCAST frame from slot out to every other eligible
 * connection on every core. owner as for handle_frame(). */
void bcast_send(struct worker *co, uint32_t slot, const struct frame_view *f,
                struct rbuf *owner);
/* Deliver what other cores queued for this one; retry held items. Once
 * per loop iteration. */
void bcast_poll(struct worker *co);
/* Tell core dst (MSG_RING) that its queue from this core has items. */
void bcast_wake(struct worker *co, uint32_t dst);
/* Drop a core-holder's reference to a shared buffer. */
void bcast_xrelease(struct worker *co, struct rbuf *s);
/* After every worker stopped: free what is still queued. Main thread. */
void bcast_cleanup(struct server *srv);

/* ---- net/handler.c ------------------------------------------------------------ */

/* One complete, CRC-valid frame. owner: the rbuf holding it when it was
 * reassembled (the handler may keep a reference), NULL when it lies in a
 * provided buffer (valid only during the call). */
void handle_frame(struct worker *co, struct conn *c, uint32_t slot,
                  const struct frame_view *f, struct rbuf *owner);

#endif
