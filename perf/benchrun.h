/*
 * benchrun.h - the load-generating worker of net001-bench.
 *
 * One worker per client thread; each owns an io_uring, a provided-buffer
 * ring and its share of the connections (connection g of the run goes to
 * worker g % threads). The main thread fills struct benchrun_shared,
 * starts the workers, waits until every worker has connected (ready),
 * publishes the time line, sets go, and joins the workers after t_end.
 *
 * Thread ownership: struct benchrun_shared is written by the main thread
 * before go is set and only read by workers after they see go, except the
 * atomics. A struct benchrun_worker is written only by its own thread
 * until benchrun_worker_main returns; the main thread reads its results
 * (hist, counts) after joining. Connection memory belongs to the worker
 * and is freed by benchrun_worker_free.
 */
#ifndef NET001_BENCHRUN_H
#define NET001_BENCHRUN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <liburing.h>

#include "perf/benchlive.h"
#include "perf/benchopt.h"
#include "perf/lathist.h"
#include "proto/msg.h"
#include "core/bufring.h"

/* The address connection gidx connects to: receivers spread over
 * --receivers-at, the rest at --port. */
struct benchrun_shared;
const struct sockaddr *benchrun_addr(const struct benchrun_shared *sh, uint32_t gidx);

struct benchrun_shared {
	const struct benchopt *opt;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/* --receivers-at: addr with each of those ports. */
	struct sockaddr_storage raddr[BENCH_RECEIVERS_AT_MAX];
	const uint8_t *pattern; /* FRAME_MAX_PAYLOAD bytes, read-only */
	/* Time line, CLOCK_MONOTONIC ns, valid once go is set. */
	uint64_t t_connect;     /* before any connect: lower bound of timestamps */
	uint64_t t_start;       /* load starts (warmup) */
	uint64_t t_measure;     /* window opens */
	uint64_t t_end;         /* window closes, workers stop */
	atomic_uint ready;      /* workers done connecting */
	atomic_int go;
};

struct bconn;

struct benchrun_worker {
	struct benchrun_shared *sh;
	pthread_t tid;
	unsigned id;
	int err;                /* -errno of a setup failure, else 0 */
	char errmsg[128];

	struct io_uring ring;
	bool ring_ok;
	struct bufring br;

	struct bconn *conns;    /* nload load connections, then receivers */
	uint32_t nconns;
	uint32_t nload;
	uint32_t next_connect;  /* next connection to start connecting */
	uint32_t connecting;    /* connects in flight */
	uint32_t settled;       /* connections ready or failed */
	uint32_t *dirty;        /* connections to refill or re-arm after a batch */
	uint32_t ndirty;

	bool loading;           /* past go: the time line is valid */
	enum {
		BENCH_FLOW_NONE,    /* not closed-loop broadcast */
		BENCH_FLOW_WITNESS, /* window done when a local receiver has it */
		BENCH_FLOW_PING,    /* window done when its trailing PING returns */
	} bflow;
	double rate;            /* this worker's share of --rate */
	uint64_t scheduled;     /* open loop: messages made due so far */
	uint32_t rr;            /* open loop: next connection to get one */

	uint64_t now;           /* clock read once per loop iteration */
	struct lathist hist;
	struct bench_counts c;
	struct bench_live live; /* a copy of hist and c, about once a second */
	uint64_t next_publish;
};

/* Allocate the worker's connections. Returns 0 or -errno. */
int benchrun_worker_init(struct benchrun_worker *w, struct benchrun_shared *sh,
                         unsigned id);

/* Thread entry: connect, wait for go, run until t_end, tear down. */
void *benchrun_worker_main(void *arg);

/* Free what init allocated (the thread has been joined). */
void benchrun_worker_free(struct benchrun_worker *w);

/*
 * This worker's share of the run's connections: connection g (load
 * connections first, then receivers) belongs to worker g % threads. Sets
 * *nload to its load connections; returns how many it has in all.
 */
uint32_t benchrun_share(const struct benchopt *o, unsigned id, uint32_t *nload);

uint64_t benchrun_now(void);

/* Fill dst[0..n) with the payload pattern every request and reply uses. */
void benchrun_fill_pattern(uint8_t *dst, size_t n);

#endif
