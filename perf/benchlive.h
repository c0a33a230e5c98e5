/*
 * benchlive.h - what every net001-bench load engine (benchrun.c: the
 * io_uring request/reply and paced broadcast load; flood.c: the broadcast
 * flood against net001, Redis or NATS) counts, and how the main thread
 * sees those counts while the run goes on.
 *
 * Threads: a worker owns its struct bench_counts and struct lathist and
 * writes them without locks. About once a second (and when it stops) it
 * copies both into its struct bench_live under the live lock; the main
 * thread reads that copy under the same lock for the per-second progress
 * line. After joining the workers the main thread merges their own
 * counts.
 */
#ifndef NET001_BENCHLIVE_H
#define NET001_BENCHLIVE_H

#include <pthread.h>
#include <stdint.h>

#include "perf/lathist.h"
#include "proto/msg.h"

/* Kinds of reply mismatch, counted separately for the report. */
enum bench_mismatch {
	MM_MAGIC,      /* bytes where a magic should be are not DE AD BE EF */
	MM_VERSION,
	MM_TYPE,       /* a frame type that is not the expected reply */
	MM_LENGTH,     /* the header's length is not the expected one */
	MM_CRC,
	MM_PAYLOAD,    /* reply payload differs from what was sent */
	MM_UNEXPECTED, /* a reply with no request outstanding */
	MM_AUTH,       /* AUTH_REPLY failed or malformed */
	MM_KINDS,
};

struct bench_counts {
	uint64_t msgs;          /* in the window: replies, DATA sent, deliveries */
	uint64_t payload_bytes; /* payload bytes of those msgs */
	uint64_t sent;          /* requests (or broadcasts) sent in the window */
	uint64_t sends;         /* send operations carrying them (batching) */
	uint64_t deliveries;    /* broadcast frames received by receivers, all run */
	uint64_t sent_total;    /* requests (or broadcasts) sent, all run */
	uint64_t checked;       /* --flood: deliveries whose CRC and payload
	                           were checked (every --check-every'th) */
	uint64_t late;          /* open loop: sends that waited for a full window */
	uint64_t mismatch[MM_KINDS];
	/* ERROR frames by code ([0]: unknown code) that answer a request sent
	 * in the window: never more than sent. */
	uint64_t errors[ERR_MAX + 1];
	/* The others: answers to setup (AUTH) or warmup requests, and ERRORs
	 * about the connection rather than a request. */
	uint64_t errors_other[ERR_MAX + 1];
	uint64_t connect_failed;
	uint64_t closed;        /* closed by the peer or reset, before the end */
	uint64_t open_at_end;
	int first_connect_err;  /* -errno of the first failed connect */
};

/* d += s, every field (first_connect_err: the first one seen). */
void bench_counts_add(struct bench_counts *d, const struct bench_counts *s);

struct bench_live {
	pthread_mutex_t lock;
	struct bench_counts c;
	struct lathist hist;
};

void bench_live_init(struct bench_live *l);
void bench_live_destroy(struct bench_live *l);
/* Worker: copy its counts and histogram in. */
void bench_live_publish(struct bench_live *l, const struct bench_counts *c,
                        const struct lathist *h);
/* Main thread: add the last published copy to *c and *h. */
void bench_live_read(struct bench_live *l, struct bench_counts *c, struct lathist *h);

#endif
