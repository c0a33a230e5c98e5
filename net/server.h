/*
 * server.h - the server as a whole: the workers, the state and tables they
 * share, and starting and stopping them.
 *
 * Threads: main() owns struct server and calls server_*(); each worker
 * reads cfg and the fields marked "shared" (atomics). The broadcast queues
 * between workers are described with struct server.
 */
#ifndef NET001_NET_SERVER_H
#define NET001_NET_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/spsc.h"

struct auth_table;
struct cluster;
struct tls_ctx;
struct worker;

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
	struct cluster *cluster;        /* set before start when --cluster */

	/* shared: */
	_Atomic uint32_t conns;         /* open client connections, all cores */
	_Atomic int state;              /* enum server_state */
	_Atomic(struct auth_table *) auth;
	_Atomic uint64_t auth_gen;      /* bumped by each reload (auth table, TLS context) */
	_Atomic uint32_t ready;         /* workers that finished setup */
	_Atomic uint32_t failed;        /* workers that failed setup */
	_Atomic uint32_t uring_refused; /* of them, refused io_uring (ENOSYS, EPERM) */
	_Atomic uint32_t exited;        /* workers out of their loop */

	/* Broadcast queues: queues[src * ncores + dst] carries rbuf pointers
	 * from core src (its only producer) to core dst (its only consumer).
	 * The low pointer bit marks a buffer coming home to be recycled. */
	struct spsc *queues;
	uint32_t xq_cap;                /* slots per queue (fewer on many cores) */
	/* xq_taken[src * ncores + dst]: broadcast bytes core dst has taken
	 * into its log from core src (written by dst only; src compares it
	 * with what it sent to know what is still on the way). */
	struct xq_taken *xq_taken;
};

struct xq_taken {
	_Atomic uint64_t bytes;
	char pad_[56];                  /* one cache line each */
};

#define XQ_CAPACITY NET001_XCORE_QUEUE
#define XQ_BUDGET   (32u << 20)   /* bytes of queue slots, all pairs together */

static inline struct spsc *server_queue(struct server *srv, uint32_t src, uint32_t dst)
{
	return &srv->queues[src * srv->ncores + dst];
}

/* Open the listeners, start cfg->threads workers and return once all are
 * serving (0), or -errno with one line in err and nothing left running. */
int server_start(struct server *srv, const struct config *cfg, char *err, size_t errlen);
/* Ask every worker to drain (SHUTTING_DOWN to clients) and wait for them. */
void server_stop(struct server *srv);
/* Wake every worker so it notices a state or auth change. */
void server_kick(struct server *srv);
void server_free(struct server *srv);

#endif
