/*
 * worker.h - a worker: one pinned thread per core that owns an io_uring,
 * a listening socket with multishot accept, a provided-buffer ring, a
 * table of direct descriptors and the connections in it, and runs the
 * completion loop (worker.c).
 *
 * Threads: each struct worker, and every connection, buffer and pool in
 * it, belongs to its worker thread alone; other threads touch only the
 * fields marked "shared".
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
#ifndef NET001_NET_WORKER_H
#define NET001_NET_WORKER_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/bufring.h"
#include "core/bytering.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/ring.h"
#include "core/wheel.h"
#include "metrics/metrics.h"
#include "net/ratelimit.h"
#include "net/blog.h"
#include "net/broadcast.h"
#include "net/rbuf.h"
#include "net/server.h"
#include "proto/frame.h"

struct conn;
struct tls_ctx;

/* A peer's address as accept() gives it: IPv4 or IPv6 (family 0: none). */
struct peer_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	};
};

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

/* ---- a core ------------------------------------------------------------------ */

#define TLS_PLAIN_MAX     16384 /* one TLS record's plaintext */
#define TLS_SEAL_MAX      (4 * TLS_PLAIN_MAX) /* ciphertext queued per connection at once */
#define OUT_HIGH_MAX      (256u << 10) /* out_high, unless --max-output / 2 is less */
#define CORE_SEND_SCRATCH 256   /* sendmsg headers prepared between submits */
#define CORE_IOV_MAX      64    /* iovecs per sendmsg */

struct worker {
	struct ring ring;               /* this worker's io_uring (core/ring.h) */
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
	bool flush_more;                /* the last flush stopped at its budget */
	uint32_t *nobuf;                /* slots waiting for receive buffers */
	uint32_t nnobuf;
	uint32_t nlive;                 /* slots in use, any state */

	struct wheel wheel;
	struct pool blk_pool, ref_pool;
	struct pool rbuf_pool[RBUF_CLASSES];

	/* Broadcasts to deliver here: the log, and what waits to enter it. */
	struct blog log;
	uint64_t bflushed;              /* log head at the last flush pass */
	uint64_t btail_fast;            /* slowest cursor of receivers keeping up (last scan) */
	uint64_t bpause_at, bresume_at; /* head - btail_fast: pause / resume broadcasters */
	uint64_t bkick_lag;             /* a stalled receiver this far behind: SLOW_CONSUMER */
	bool bscanned;                  /* cursors scanned this turn */
	uint64_t bscan_head;            /* the log's head at that scan */
	struct holdq bhold;             /* local broadcasts waiting for room in the log */
	void **bpend;                   /* [ncores]: an item from that core waiting for room */
	uint32_t *bpinned;              /* slots with CF_BPIN */
	uint32_t nbpinned;
	/* --cluster (net/cluster.h); NULL without: */
	struct bytering *cl_out;        /* broadcasts accepted here, to the bridge */
	struct bytering *cl_in;         /* other servers' broadcasts, from the bridge */
	int cl_efd;                     /* the bridge's eventfd */

	struct holdq *held;             /* [ncores]: per destination core */
	uint32_t nheld;                 /* items across held[] */
	uint64_t *xq_sent;              /* [ncores]: broadcast bytes handed to send_to(dst) */
	uint64_t out_high, out_low;     /* per-connection unsent output: stop / resume reading */
	uint32_t *paused;               /* slots paused for that (may be stale) */
	uint32_t npaused;
	bool retry_armed;
	bool nop_armed;
	struct __kernel_timespec retry_ts;

	uint32_t pong_crc_delta;        /* PING -> PONG: CRC xor this */
	struct tls_ctx *tls;            /* NULL unless --tls (shared; its context swapped by SIGHUP) */
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
	/* --debug only (NULL otherwise): each slot's peer, from accepts that
	 * ask for the address one at a time (conn_log() prints it). */
	struct peer_addr *peers;
	struct peer_addr acc_addr;      /* the accept in flight writes here */
	socklen_t acc_len;
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

/* An SQE, submitting first if the SQ is full. Never NULL. */
struct io_uring_sqe *worker_sqe(struct worker *co);
/* Hand what is queued to the kernel. */
void worker_submit(struct worker *co);

#endif
