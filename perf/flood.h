/*
 * flood.h - net001-bench's broadcast flood (--flood, --target).
 *
 * Publishers (--connections, default 1) write broadcasts as fast as their
 * sockets take them, with no bound on how many are in flight: each write
 * hands the kernel a batch (--pipeline messages, default 16 KiB of them)
 * as soon as the last one was taken; with --rate, open loop instead: each
 * message written when it falls due and stamped with that time (flood.c).
 * Receivers (--receivers) read everything. Every message carries, in its
 * first 8 payload bytes, the CLOCK_MONOTONIC time its batch was made (or
 * it fell due); a receiver takes the latency from it at arrival and checks
 * the rest of the payload against the shared pattern. Deliveries are
 * counted where they arrive.
 *
 * The same shape against three servers, spoken over plain sockets:
 *
 *   net001  BROADCAST frames (CRC checked); a PING before the load proves
 *           each connection is served; receivers PING every 10 s against
 *           the idle timeout
 *   redis   PUBLISH (RESP) pipelined on the publishers, whose integer
 *           replies are read and counted; SUBSCRIBE on the receivers
 *   nats    PUB on the publishers, SUB on the receivers (CONNECT with
 *           verbose off; the server's PINGs answered)
 *
 * on a channel or subject of the run's own ("net001bench.PID").
 *
 * One epoll loop per thread over its share of the connections (connection
 * g goes to thread g % threads, publishers first). Threads as in
 * benchrun.h: the main thread fills struct benchrun_shared, starts the
 * workers, waits for ready, sets go, joins after t_end.
 */
#ifndef NET001_FLOOD_H
#define NET001_FLOOD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "perf/benchlive.h"
#include "perf/benchrun.h"

struct fconn;

struct flood_worker {
	struct benchrun_shared *sh;
	pthread_t tid;
	unsigned id;
	int err;                /* -errno of a setup failure, else 0 */
	char errmsg[160];
	char why[128];          /* the first failed connection's reason */

	int ep;                 /* epoll */
	struct fconn *conns;    /* nload publishers, then receivers */
	uint32_t nconns, nload;
	uint8_t *rbuf;          /* reads land here, after a carried-over part */
	uint8_t *tmpl;          /* one publish message with the pattern payload */
	uint32_t msg_size;      /* bytes of one publish message */
	uint32_t ts_off;        /* where its payload (and timestamp) starts */
	uint32_t batch;         /* messages per write */
	double rate_pub;        /* --rate: messages/s per publisher; 0: flood */
	char chan[48];          /* channel / subject */

	uint64_t now;
	uint64_t next_publish;
	uint64_t next_keepalive;
	struct lathist hist;
	struct bench_counts c;
	struct bench_live live;
};

/* Allocate the worker's connections. Returns 0 or -errno. */
int flood_worker_init(struct flood_worker *w, struct benchrun_shared *sh, unsigned id);

/* Thread entry: connect and subscribe, wait for go, flood until t_end. */
void *flood_worker_main(void *arg);

/* Free what init allocated (the thread has been joined). */
void flood_worker_free(struct flood_worker *w);

/*
 * The receiving side's parsers, exposed for the unit tests. Each looks at
 * one message at the start of p[0..n): returns its size (> 0), 0 when more
 * bytes are needed, or -1 when the bytes cannot be the protocol.
 */
struct flood_item {
	char kind;              /* RESP: '+', '-', ':', '$' (nil: len -1), '*';
	                           NATS: 'M' (MSG), 'P' (PING), 'O' (PONG),
	                           '+' (+OK), '-' (-ERR), 'I' (INFO) */
	const uint8_t *p;       /* simple string, error, bulk or MSG payload */
	long long len;          /* its length, or the integer */
	int nelem;              /* RESP array: elements (at most 4 kept) */
	struct {
		char kind;
		const uint8_t *p;
		long long len;
	} elem[4];
};
long flood_parse_resp(const uint8_t *p, size_t n, struct flood_item *it);
long flood_parse_nats(const uint8_t *p, size_t n, struct flood_item *it);

#endif
