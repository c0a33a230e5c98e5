/*
 * cluster.c - the bridge between the workers and NATS (see cluster.h).
 *
 * Threads here, none of them a worker:
 *  - the bridge thread: takes frames from every worker's ring to the
 *    bridge, writes the header in place and publishes them (the NATS
 *    client copies them into its buffer; its flusher thread writes them);
 *    once a second a heartbeat. Sleeps on an eventfd that workers write
 *    through their io_uring when their ring was empty.
 *  - the subscription's delivery thread (the NATS client's, one per
 *    subscription): checks each message, keeps the sequence numbers per
 *    origin, copies the frame into every worker's ring from the bridge
 *    (behind a full one, into a queue of its own for that worker, so no
 *    worker waits for another) and wakes a worker that may sleep with
 *    MSG_RING, from a small io_uring of its own.
 *  - the NATS client's callback thread: connection lost / back.
 * Each metric is written by one of them only (struct metrics_cluster).
 */
#include "net/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "net/cluster_wire.h"
#include "net/server.h"
#include "net/worker.h"
#include "proto/clock.h"
#include "proto/frame.h"

#if HAVE_CLUSTER
#include <nats/nats.h>
#endif

#define BEAT_NS      1000000000ull  /* heartbeat period */
#define OUT_BATCH    256u           /* records taken from one ring before the next */
#define ORIGINS      1024u          /* origins tracked (a power of two) */
#define INBOUND_WAIT_NS 6000000000ull /* room in a worker's ring: waited for this long */
/* An incarnation heard from this long after a newer one of its node id
 * appeared is alive: two servers share the id (not one restarted). */
#define CLASH_GRACE_NS  500000000ull

/*
 * One server incarnation heard from: a node id and the incarnation its
 * process drew at start, so that a restarted server, or two servers
 * given the same --node-id, are numbered apart.
 */
struct origin {
	char id[CLUSTER_ID_MAX];
	uint8_t idlen;                  /* 0: free */
	bool clashed;                   /* counted as sharing its id */
	uint64_t incarnation;
	uint64_t last;                  /* last sequence number seen */
	uint64_t seen_ns;
	uint64_t superseded_ns;         /* when a newer incarnation of its id
	                                   appeared; 0: none has */
};

struct cluster {
	struct metrics_cluster m;       /* first: its own cache lines */
	const struct config *cfg;
	uint32_t ncores;
	struct bytering *out;           /* [ncores]: worker -> bridge */
	struct bytering *in;            /* [ncores]: bridge -> worker */
	int efd;                        /* workers -> bridge thread */
	char node_id[CLUSTER_ID_MAX + 1];
	uint8_t idlen;
	uint64_t incarnation;
	struct server *srv;

	/* The bridge thread's. */
	pthread_t thread;
	bool running;
	_Atomic bool stop;
	uint64_t seq;                   /* last sequence number used */
	uint32_t poll_us;               /* NET001_CLUSTER_POLL_US: poll, no eventfd (measuring) */
	uint64_t *drops_seen;           /* [ncores]: ring drops already counted in seq */
	uint64_t reopen_at_ns;          /* closed: when to open a new connection */
	uint64_t last_too_large_log_ns;
	uint64_t slow_base;             /* slow-consumer drops of closed subscriptions */

	/* The delivery thread's. */
	struct origin *origins;         /* [ORIGINS] */
	/* [ncores]: frames for a worker whose ring was full, in order, so
	 * that no other worker waits for it (a private FIFO: this thread
	 * both writes and reads it). */
	struct bytering *defer;
	uint64_t *defer_since;          /* [ncores]: when defer[w] last moved */
	uint64_t deferred_bytes;        /* in all of defer[] (the gauge's value);
	                                   0: nothing waits for any worker */
	struct io_uring wake;           /* MSG_RING to workers */
	bool wake_ok;
	uint64_t last_invalid_log_ns, last_clash_log_ns;
	struct log_limit restart_log;

	/* The NATS client's callback thread's. */
	_Atomic uint64_t down_since_ns; /* also set by cluster_start */
	_Atomic uint64_t dropped_at_down;
	_Atomic bool ever_up;           /* a connection has been up: the next is a reconnection */
	/* The NATS client gave up a connection: closed is set (release) with
	 * closed_why written, for the bridge thread to open a new one. */
	_Atomic bool closed;
	char closed_why[128];
	_Atomic bool closed_logged;     /* once per outage */
	_Atomic int reopen_attempts;    /* since the last connection was up */

#if HAVE_CLUSTER
	natsOptions *opts;
	natsConnection *nc;             /* the bridge thread's (and start and stop) */
	natsSubscription *sub;
	/*
	 * Each subscription has a delivery thread of its own, and after
	 * reopen() an old one may still be in on_msg: only the live
	 * subscription's messages are taken. live_sub is NULL while reopen()
	 * swaps them (on_msg waits), NO_SUB while there is none; delivering
	 * counts the threads inside, which reopen() waits to leave.
	 */
	_Atomic(natsSubscription *) live_sub;
	_Atomic uint32_t delivering;
#endif
	char url_shown[160];            /* the first URL, credentials left out */
};

/* ---- the worker side (no NATS here) ----------------------------------------------- */

static const uint64_t efd_one = 1;

void cluster_out(struct worker *co, const uint8_t *frame, uint32_t size)
{
	uint8_t *p = bytering_reserve(co->cl_out, CLUSTER_HDR + size);
	bool was_empty;

	if (!p) {
		bytering_drop(co->cl_out); /* the bridge counts it, and skips its number */
		return;
	}
	memcpy(p + CLUSTER_HDR, frame, size); /* the bridge writes the header */
	bytering_commit(co->cl_out, &was_empty);
	if (was_empty && co->cl_efd >= 0) {
		/* The bridge may sleep: one eventfd write in our next
		 * submission, no system call of its own. */
		struct io_uring_sqe *sqe = worker_sqe(co);
		io_uring_prep_write(sqe, co->cl_efd, &efd_one, sizeof efd_one, 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 0));
	}
}

struct bytering *cluster_ring_out(struct cluster *cl, uint32_t w)
{
	return &cl->out[w];
}

struct bytering *cluster_ring_in(struct cluster *cl, uint32_t w)
{
	return &cl->in[w];
}

int cluster_efd(const struct cluster *cl)
{
	return cl->poll_us ? -1 : cl->efd;
}

const struct metrics_cluster *cluster_metrics(const struct cluster *cl)
{
	return &cl->m;
}

const char *cluster_node_id(const struct cluster *cl)
{
	return cl->node_id;
}

#if HAVE_CLUSTER
static void mset(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

static void madd(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static uint64_t mget(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}
#endif

/* ---- set-up ------------------------------------------------------------------------- */

/* The first URL of the list for the log, without user and password. */
static void show_url(char *dst, size_t cap, const char *list)
{
	size_t n = strcspn(list, ",");
	const char *at = memchr(list, '@', n);
	const char *scheme = strstr(list, "://");
	if (at) {
		size_t k = scheme && scheme < at ? (size_t)(scheme + 3 - list) : 0;
		snprintf(dst, cap, "%.*s%.*s", (int)k, list, (int)(n - (size_t)(at + 1 - list)),
		         at + 1);
	} else {
		snprintf(dst, cap, "%.*s", (int)n, list);
	}
	if (list[n] == ',')
		snprintf(dst + strlen(dst), cap - strlen(dst), " (and others)");
}

int cluster_new(const struct config *cfg, uint32_t ncores, struct cluster **out,
                char *err, size_t errlen)
{
	struct cluster *cl = aligned_alloc(METRICS_CACHELINE,
	                                   (sizeof *cl + METRICS_CACHELINE - 1) &
	                                   ~(size_t)(METRICS_CACHELINE - 1));
	if (!cl) {
		snprintf(err, errlen, "cluster: out of memory");
		return -ENOMEM;
	}
	memset(cl, 0, sizeof *cl);
	cl->cfg = cfg;
	cl->ncores = ncores;
	cl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cl->out = aligned_alloc(BYTERING_LINE, sizeof *cl->out * ncores);
	cl->in = aligned_alloc(BYTERING_LINE, sizeof *cl->in * ncores);
	cl->drops_seen = calloc(ncores, sizeof *cl->drops_seen);
	cl->origins = calloc(ORIGINS, sizeof *cl->origins);
	cl->defer = aligned_alloc(BYTERING_LINE, sizeof *cl->defer * ncores);
	cl->defer_since = calloc(ncores, sizeof *cl->defer_since);
	if (cl->out)
		memset(cl->out, 0, sizeof *cl->out * ncores);
	if (cl->in)
		memset(cl->in, 0, sizeof *cl->in * ncores);
	if (cl->defer)
		memset(cl->defer, 0, sizeof *cl->defer * ncores);
	int r = cl->efd < 0 ? -errno : 0;
	if (!r && (!cl->out || !cl->in || !cl->drops_seen || !cl->origins || !cl->defer ||
	           !cl->defer_since))
		r = -ENOMEM;
	/* Half the backlog in the workers' rings, half in the NATS client's
	 * reconnect buffer. */
	uint64_t per = cfg->cluster_backlog / 2 / ncores;
	for (uint32_t w = 0; !r && w < ncores; w++) {
		r = bytering_init(&cl->out[w], per, CLUSTER_HDR + FRAME_MAX_SIZE);
		if (!r)
			r = bytering_init(&cl->in[w], CLUSTER_IN_RING, FRAME_MAX_SIZE);
		/* Pages are touched only when a worker falls behind. */
		if (!r)
			r = bytering_init(&cl->defer[w], CLUSTER_IN_RING, FRAME_MAX_SIZE);
	}
	if (r < 0) {
		snprintf(err, errlen, "cluster: %s", strerror(-r));
		cluster_free(cl);
		return r;
	}
	if (cfg->node_id[0]) {
		snprintf(cl->node_id, sizeof cl->node_id, "%s", cfg->node_id);
	} else {
		uint8_t b[8] = { 0 };
		if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
			uint64_t t = clock_now_ns() ^ (uint64_t)getpid() << 32;
			memcpy(b, &t, sizeof b);
		}
		for (int i = 0; i < 8; i++)
			snprintf(cl->node_id + 2 * i, 3, "%02x", b[i]);
	}
	cl->idlen = (uint8_t)strlen(cl->node_id);
	if (getrandom(&cl->incarnation, sizeof cl->incarnation, 0) !=
	    (ssize_t)sizeof cl->incarnation)
		cl->incarnation = clock_now_ns() ^ (uint64_t)getpid();
	snprintf(cl->m.node_id, sizeof cl->m.node_id, "%s", cl->node_id);
	snprintf(cl->m.subject, sizeof cl->m.subject, "%s", cfg->cluster_subject);
	show_url(cl->url_shown, sizeof cl->url_shown, cfg->cluster);
	/* Measuring only: the bridge polls every N us instead of sleeping on
	 * the workers' eventfd writes (which they then leave out). */
	const char *pu = getenv("NET001_CLUSTER_POLL_US");
	if (pu && *pu) {
		long v = strtol(pu, NULL, 10);
		cl->poll_us = v > 0 && v < 1000000 ? (uint32_t)v : 0;
	}
	*out = cl;
	return 0;
}

void cluster_free(struct cluster *cl)
{
	if (!cl)
		return;
	for (uint32_t w = 0; w < cl->ncores; w++) {
		if (cl->out)
			bytering_destroy(&cl->out[w]);
		if (cl->in)
			bytering_destroy(&cl->in[w]);
		if (cl->defer)
			bytering_destroy(&cl->defer[w]);
	}
	if (cl->efd >= 0)
		close(cl->efd);
	if (cl->wake_ok)
		io_uring_queue_exit(&cl->wake);
	free(cl->out);
	free(cl->in);
	free(cl->drops_seen);
	free(cl->origins);
	free(cl->defer);
	free(cl->defer_since);
	free(cl);
}

#if HAVE_CLUSTER

/* This node's header for a message of the given kind and number. */
static void put_header(const struct cluster *cl, uint8_t *p, uint8_t kind, uint64_t seq)
{
	cluster_put_header(p, kind, cl->node_id, cl->idlen, cl->incarnation, seq);
}

/* ---- receiving (the subscription's delivery thread) --------------------------------------- */

static uint32_t id_hash(const char *id, uint8_t n)
{
	uint32_t h = 2166136261u;
	for (uint8_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)id[i]) * 16777619u;
	return h;
}

/*
 * The entry of m's node id and incarnation: found, or a free one, or the
 * longest unheard (when ORIGINS are known: garbage with valid headers,
 * mostly), which then is *fresh. Entries are placed by the node id alone,
 * so another incarnation of the id lies on the way: *twin is the one of
 * those heard from last, if any.
 */
static struct origin *origin_for(struct cluster *cl, const struct cluster_msg *m, uint64_t now,
                                 bool *fresh, struct origin **twin)
{
	uint32_t h = id_hash(m->id, m->idlen);
	struct origin *oldest = NULL;
	*twin = NULL;
	for (uint32_t i = 0; i < ORIGINS; i++) {
		struct origin *o = &cl->origins[(h + i) & (ORIGINS - 1)];
		if (o->idlen == 0) {
			oldest = o;
			break;
		}
		if (o->idlen == m->idlen && memcmp(o->id, m->id, m->idlen) == 0) {
			if (o->incarnation == m->incarnation) {
				*fresh = false;
				o->seen_ns = now;
				return o;
			}
			if (!*twin || o->seen_ns > (*twin)->seen_ns)
				*twin = o;
		}
		if (!oldest || o->seen_ns < oldest->seen_ns)
			oldest = o;
	}
	*fresh = true;
	if (oldest == *twin)
		*twin = NULL;
	*oldest = (struct origin){ .idlen = m->idlen, .incarnation = m->incarnation,
	                           .seen_ns = now };
	memcpy(oldest->id, m->id, m->idlen);
	return oldest;
}

/* Incarnation o of a node id speaks beside another: two servers publish
 * under one id. Counted once per incarnation; a warning at most every
 * 10 s. Delivery is not affected (each incarnation is numbered apart). */
static void id_clash(struct cluster *cl, struct origin *o, bool ours, uint64_t now)
{
	o->clashed = true;
	madd(&cl->m.clashes, 1);
	if (now - cl->last_clash_log_ns < 10 * BEAT_NS)
		return;
	cl->last_clash_log_ns = now;
	log_warn("cluster: two servers publish as node %.*s%s; give each server its own "
	         "--node-id (%" PRIu64 " such incarnations so far)", (int)o->idlen, o->id,
	         ours ? " (this server's id)" : "", mget(&cl->m.clashes));
}

static void wake_worker(struct cluster *cl, uint32_t w)
{
	if (!cl->wake_ok)
		return;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&cl->wake);
	if (!sqe) {
		io_uring_submit(&cl->wake);
		sqe = io_uring_get_sqe(&cl->wake);
		if (!sqe)
			return;
	}
	io_uring_prep_msg_ring(sqe, cl->srv->cores[w]->ring.u.ring_fd, 0,
	                       ud_pack(OP_XCORE, 0, cl->ncores), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, w);
}

/* Completions here are failed wake-ups only: send them again. */
static void reap_wakes(struct cluster *cl)
{
	struct io_uring_cqe *cqe;
	uint32_t again[64], n = 0;
	while (io_uring_peek_cqe(&cl->wake, &cqe) == 0) {
		if (cqe->res < 0 && n < 64)
			again[n++] = (uint32_t)io_uring_cqe_get_data64(cqe);
		io_uring_cqe_seen(&cl->wake, cqe);
	}
	for (uint32_t i = 0; i < n; i++)
		if (again[i] < cl->ncores && !atomic_load(&cl->stop))
			wake_worker(cl, again[i]);
}

/*
 * Worker w's ring is full when its log is full of what its receivers have
 * not read yet. Its frames then wait here, behind the ring and in order,
 * while the other workers get theirs at once. Once a worker has taken
 * nothing for INBOUND_WAIT_NS (longer than a stalled receiver takes to be
 * dropped with SLOW_CONSUMER, so only receivers that do not read make a
 * remote broadcast lost) what waits for it is given up (at most once).
 * Only when its queue here is full too does this thread wait for that
 * worker, and the NATS client's pending queue takes up the slack.
 */

static bool deferring(const struct cluster *cl, uint32_t w)
{
	return bytering_used(&cl->defer[w]) != 0;
}

/* The delivery thread's pause while it waits for a worker's room. */
static void poll_pause(void)
{
	struct timespec ts = { 0, 100000 };
	nanosleep(&ts, NULL);
}

/* Move what waits for worker w into its ring while it has room, or give
 * it up. True if w may be asleep with frames to take. */
static bool flush_deferred(struct cluster *cl, uint32_t w, uint64_t now)
{
	struct bytering *d = &cl->defer[w];
	bool wake = false, was_empty;
	uint32_t len;
	uint8_t *p;
	while ((p = bytering_peek(d, &len)) && bytering_push(&cl->in[w], p, len, &was_empty)) {
		bytering_release(d, len);
		cl->deferred_bytes -= len;
		cl->defer_since[w] = now;
		wake |= was_empty;
	}
	if (p && now - cl->defer_since[w] >= INBOUND_WAIT_NS) {
		uint64_t n = 0;
		for (; p; p = bytering_peek(d, &len), n++) {
			bytering_release(d, len);
			cl->deferred_bytes -= len;
		}
		madd(&cl->m.dropped_inbound, n);
	}
	mset(&cl->m.deferred_bytes, cl->deferred_bytes);
	return wake;
}

static void wake_now(struct cluster *cl)
{
	if (cl->wake_ok) {
		io_uring_submit(&cl->wake);
		reap_wakes(cl);
	}
}

/* One frame to worker w. True if w may be asleep with frames to take. */
static bool deliver_to(struct cluster *cl, uint32_t w, const struct cluster_msg *m, uint64_t now)
{
	bool wake = false, was_empty;
	for (;;) {
		if (deferring(cl, w))
			wake |= flush_deferred(cl, w, now);
		if (!deferring(cl, w) && bytering_push(&cl->in[w], m->frame, m->size, &was_empty))
			return wake || was_empty;
		if (bytering_push(&cl->defer[w], m->frame, m->size, &was_empty)) {
			if (was_empty)
				cl->defer_since[w] = now;
			cl->deferred_bytes += m->size;
			mset(&cl->m.deferred_bytes, cl->deferred_bytes);
			return wake;
		}
		if (atomic_load_explicit(&cl->stop, memory_order_relaxed)) {
			madd(&cl->m.dropped_inbound, 1);
			return wake;
		}
		if (wake) {
			wake_worker(cl, w);
			wake = false;
		}
		wake_now(cl);
		poll_pause();
		now = clock_now_ns();
	}
}

/* Frames wait behind a full worker ring: while no message is pending for
 * this thread, wait here for room (polling every 100 us) rather than until
 * the next message, which may be a second's heartbeat away; return as soon
 * as one is pending, so that no other worker waits for this one. */
static void drain_deferred(struct cluster *cl, natsSubscription *sub)
{
	while (cl->deferred_bytes && !atomic_load_explicit(&cl->stop, memory_order_relaxed)) {
		int pending = 0;
		if (natsSubscription_GetPending(sub, &pending, NULL) != NATS_OK || pending > 0)
			return;
		poll_pause();
		uint64_t now = clock_now_ns();
		bool woke = false;
		for (uint32_t w = 0; w < cl->ncores; w++) {
			if (deferring(cl, w) && flush_deferred(cl, w, now)) {
				wake_worker(cl, w);
				woke = true;
			}
		}
		if (woke)
			wake_now(cl);
	}
}

static void handle_msg(struct cluster *cl, natsMsg *msg)
{
	const uint8_t *p = (const uint8_t *)natsMsg_GetData(msg);
	int n = natsMsg_GetDataLength(msg);
	struct cluster_msg m = { 0 };
	uint64_t now = clock_now_ns();

	const char *why = n >= 0 && p ? cluster_parse(p, (size_t)n, &m) : "no data";
	if (!why && m.idlen == cl->idlen && memcmp(m.id, cl->node_id, m.idlen) == 0 &&
	    m.incarnation == cl->incarnation)
		why = "this node's own";
	if (why) {
		madd(&cl->m.invalid, 1);
		if (now - cl->last_invalid_log_ns >= 10 * BEAT_NS) {
			cl->last_invalid_log_ns = now;
			log_warn("cluster: dropped a message on %s that is not a broadcast from "
			         "another node (%s; %" PRIu64 " so far)", cl->m.subject, why,
			         mget(&cl->m.invalid));
		}
		natsMsg_Destroy(msg);
		return;
	}
	bool fresh;
	struct origin *twin;
	struct origin *o = origin_for(cl, &m, now, &fresh, &twin);
	if (fresh) {
		/* First word from it: nothing before counts as missed. */
		o->last = m.kind == CLUSTER_KIND_FRAME ? m.seq - 1 : m.seq;
		if (m.idlen == cl->idlen && memcmp(m.id, cl->node_id, m.idlen) == 0) {
			id_clash(cl, o, true, now);
		} else if (twin) {
			twin->superseded_ns = now;
			log_limited(&cl->restart_log, now / BEAT_NS, LOG_INFO,
			            "cluster: node %.*s restarted (a new incarnation)", (int)m.idlen,
			            m.id);
		}
	} else if (o->superseded_ns && !o->clashed && now - o->superseded_ns >= CLASH_GRACE_NS) {
		id_clash(cl, o, false, now);
	}
	if (m.kind == CLUSTER_KIND_BEAT) {
		if (m.seq > o->last) {
			madd(&cl->m.gaps, m.seq - o->last);
			o->last = m.seq;
		}
		natsMsg_Destroy(msg);
		return;
	}
	if (m.seq <= o->last) {
		madd(&cl->m.duplicates, 1);
		natsMsg_Destroy(msg);
		return;
	}
	if (m.seq - o->last > 1)
		madd(&cl->m.gaps, m.seq - o->last - 1);
	o->last = m.seq;
	madd(&cl->m.received, 1);

	bool woke = false;
	for (uint32_t w = 0; w < cl->ncores; w++) {
		if (deliver_to(cl, w, &m, now)) {
			wake_worker(cl, w);
			woke = true;
		}
	}
	natsMsg_Destroy(msg);
	if (woke)
		wake_now(cl);
}

/* live_sub when there is no subscription: matches none. */
static char no_sub;
#define NO_SUB ((natsSubscription *)(void *)&no_sub)

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	struct cluster *cl = arg;
	(void)nc;
	natsSubscription *live;
	for (;;) {
		live = atomic_load(&cl->live_sub);
		if (!live) {
			/* reopen() is swapping subscriptions (its connect can take
			 * a while): wait outside */
			if (atomic_load(&cl->stop)) {
				natsMsg_Destroy(msg);
				return;
			}
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
			continue;
		}
		atomic_fetch_add(&cl->delivering, 1);
		if (atomic_load(&cl->live_sub) == live)
			break;
		atomic_fetch_sub(&cl->delivering, 1);
	}
	if (sub == live) {
		handle_msg(cl, msg);
		if (cl->deferred_bytes)
			drain_deferred(cl, sub);
	} else {
		natsMsg_Destroy(msg); /* a given-up connection's */
	}
	atomic_fetch_sub(&cl->delivering, 1);
}

/* ---- connection events (the NATS client's callback thread) ------------------------------ */

static uint64_t dropped_now(const struct cluster *cl)
{
	return mget(&cl->m.dropped_disconnected) + mget(&cl->m.dropped_backlog);
}

/* A NATS server that takes less than the largest cluster message (a
 * 65,535-byte broadcast behind the header) is said so at each connection:
 * larger broadcasts will not reach other servers. */
static void check_max_payload(natsConnection *nc)
{
	int64_t max = natsConnection_GetMaxPayload(nc);
	uint64_t need = CLUSTER_HDR + FRAME_MAX_SIZE;
	if (max > 0 && (uint64_t)max < need)
		log_warn("cluster: the NATS server takes messages of at most %" PRId64
		         " bytes (max_payload): broadcasts of more than %" PRIu64 " bytes will not "
		         "reach other servers; set max_payload to %" PRIu64 " or more", max,
		         (uint64_t)max > CLUSTER_HDR + FRAME_OVERHEAD
		                 ? (uint64_t)max - CLUSTER_HDR - FRAME_OVERHEAD : 0,
		         need);
}

/*
 * A connection is up: at the start, after the client reconnected, or a
 * new one after it gave the last one up. Says where (without user and
 * password); after the first time it is a reconnection, counted and said
 * with what was dropped meanwhile. Then the max_payload check. On the
 * thread that learns of it (main, bridge or the client's callbacks).
 */
static void came_up(struct cluster *cl, natsConnection *nc)
{
	char raw[256] = "", url[160];
	natsConnection_GetConnectedUrl(nc, raw, sizeof raw);
	show_url(url, sizeof url, raw);
	mset(&cl->m.up, 1);
	if (atomic_exchange(&cl->ever_up, true)) {
		madd(&cl->m.reconnects, 1);
		uint64_t since = atomic_load(&cl->down_since_ns);
		double secs = since ? (double)(clock_now_ns() - since) / 1e9 : 0;
		log_info("cluster: reconnected to NATS at %s after %.1f s (%" PRIu64
		         " broadcasts for other servers dropped meanwhile)", url, secs,
		         dropped_now(cl) - atomic_load(&cl->dropped_at_down));
		atomic_store(&cl->closed_logged, false);
		atomic_store(&cl->reopen_attempts, 0);
	} else {
		log_info("cluster: connected to NATS at %s (node %s, subject %s)", url,
		         cl->node_id, cl->m.subject);
	}
	atomic_store(&cl->down_since_ns, 0);
	check_max_payload(nc);
}

/* A connection that was not up at its start (NATS away, or a new one
 * after the client gave the last one up) is now. */
static void on_connected(natsConnection *nc, void *arg)
{
	came_up(arg, nc);
}

static void on_disconnected(natsConnection *nc, void *arg)
{
	struct cluster *cl = arg;
	(void)nc;
	if (!mget(&cl->m.up))
		return; /* once per outage */
	mset(&cl->m.up, 0);
	atomic_store(&cl->down_since_ns, clock_now_ns());
	atomic_store(&cl->dropped_at_down, dropped_now(cl));
	if (atomic_load(&cl->stop))
		return;
	log_warn("cluster: lost the connection to NATS; local broadcasting goes on, "
	         "broadcasts for other servers are held up to --cluster-backlog and then "
	         "dropped; reconnecting");
}

static void on_reconnected(natsConnection *nc, void *arg)
{
	came_up(arg, nc); /* perhaps to another server of the list */
}

/*
 * The NATS client gave this connection up for good: it does after the
 * server refused its credentials (on a reconnection too), and it would
 * not try again. Unless the server is stopping, the bridge thread opens
 * a new one (reopen()).
 */
static void on_closed(natsConnection *nc, void *arg)
{
	struct cluster *cl = arg;
	mset(&cl->m.up, 0);
	if (atomic_load(&cl->stop))
		return;
	const char *why = NULL;
	natsConnection_GetLastError(nc, &why);
	snprintf(cl->closed_why, sizeof cl->closed_why, "%s", why && *why ? why : "no reason given");
	atomic_store_explicit(&cl->closed, true, memory_order_release);
	uint64_t one = 1;
	ssize_t w = write(cl->efd, &one, sizeof one);
	(void)w;
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *arg)
{
	struct cluster *cl = arg;
	static _Atomic uint64_t last_ns;
	uint64_t now = clock_now_ns();
	(void)nc;
	(void)sub;
	(void)cl;
	/* Slow consumer reports come once per episode at most; still, keep
	 * the log bounded. */
	if (now - atomic_load(&last_ns) >= 10 * BEAT_NS) {
		atomic_store(&last_ns, now);
		log_warn("cluster: NATS: %s", natsStatus_GetText(s));
	}
}

/* Reconnect backoff: 50 ms doubling to 2 s, with a quarter of jitter. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *arg)
{
	(void)nc;
	(void)arg;
	int64_t d = 50;
	for (int i = 1; i < attempts && d < 2000; i++)
		d *= 2;
	if (d > 2000)
		d = 2000;
	uint32_t r = 0;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = (uint32_t)clock_now_ns();
	return d - d / 8 + (int64_t)(r % (uint32_t)(d / 4 + 1));
}

/* ---- publishing (the bridge thread) -------------------------------------------------------- */

/* Broadcasts the workers dropped since the last look take their numbers,
 * so receivers count them as missed too. */
static void count_ring_drops(struct cluster *cl)
{
	uint64_t total = 0;
	for (uint32_t w = 0; w < cl->ncores; w++) {
		uint64_t d = bytering_drops(&cl->out[w]);
		cl->seq += d - cl->drops_seen[w];
		cl->drops_seen[w] = d;
		total += d;
	}
	mset(&cl->m.dropped_backlog, total);
}

static void publish(struct cluster *cl, uint8_t *p, uint32_t n)
{
	natsStatus s = natsConnection_Publish(cl->nc, cl->m.subject, p, (int)n);
	if (s == NATS_OK) {
		madd(&cl->m.published, 1);
	} else if (s == NATS_MAX_PAYLOAD) {
		madd(&cl->m.dropped_too_large, 1);
		uint64_t now = clock_now_ns();
		if (now - cl->last_too_large_log_ns >= 10 * BEAT_NS) {
			cl->last_too_large_log_ns = now;
			log_warn("cluster: a broadcast of %u bytes is over the NATS server's "
			         "max_payload: not sent to other servers (%" PRIu64 " so far)",
			         n - CLUSTER_HDR - FRAME_OVERHEAD, mget(&cl->m.dropped_too_large));
		}
	} else {
		madd(&cl->m.dropped_disconnected, 1);
	}
}

/* Everything the workers queued, a batch per ring in turn. True if any. */
static bool drain(struct cluster *cl)
{
	bool any = false, more = true;
	while (more && !atomic_load_explicit(&cl->stop, memory_order_relaxed)) {
		more = false;
		count_ring_drops(cl);
		for (uint32_t w = 0; w < cl->ncores; w++) {
			struct bytering *r = &cl->out[w];
			uint32_t len, k = 0;
			uint8_t *p;
			while (k < OUT_BATCH && (p = bytering_peek(r, &len))) {
				put_header(cl, p, CLUSTER_KIND_FRAME, ++cl->seq);
				publish(cl, p, len);
				bytering_release(r, len);
				k++;
			}
			if (k) {
				any = true;
				more |= k == OUT_BATCH;
			}
		}
	}
	return any;
}

static void beat(struct cluster *cl)
{
	uint8_t h[CLUSTER_HDR];
	count_ring_drops(cl);
	put_header(cl, h, CLUSTER_KIND_BEAT, cl->seq ? cl->seq : 1);
	if (!cl->seq)
		cl->seq = 1; /* the beat took number 1: nothing to miss */
	natsConnection_Publish(cl->nc, cl->m.subject, h, CLUSTER_HDR);
	int64_t dropped = 0;
	if (cl->sub && natsSubscription_GetDropped(cl->sub, &dropped) == NATS_OK && dropped >= 0)
		mset(&cl->m.slow, cl->slow_base + (uint64_t)dropped);
}

static natsStatus connect_and_subscribe(struct cluster *cl);

/*
 * The NATS client gave its connection up (on_closed): a new one, made as
 * at the start (it connects in the background), with the reconnection
 * backoff between attempts. Meanwhile publishing fails and is counted as
 * dropped (disconnected), as while the client reconnects.
 */
static void reopen(struct cluster *cl)
{
	atomic_store(&cl->closed, false);
	atomic_store(&cl->live_sub, NULL);
	while (atomic_load(&cl->delivering))
		sched_yield();
	int attempts = atomic_fetch_add(&cl->reopen_attempts, 1) + 1;
	if (!atomic_exchange(&cl->closed_logged, true))
		log_warn("cluster: the NATS client gave up its connection (%s); local "
		         "broadcasting goes on; opening a new connection, again every 2 s "
		         "at most until it is up", cl->closed_why);
	if (cl->sub) {
		int64_t d = 0;
		if (natsSubscription_GetDropped(cl->sub, &d) == NATS_OK && d > 0)
			cl->slow_base += (uint64_t)d;
		natsSubscription_Destroy(cl->sub);
		cl->sub = NULL;
	}
	natsConnection_Destroy(cl->nc);
	cl->nc = NULL;
	cl->reopen_at_ns = clock_now_ns() + (uint64_t)reconnect_delay(NULL, attempts, NULL) * 1000000;
	natsStatus s = connect_and_subscribe(cl);
	if (s == NATS_OK)
		came_up(cl, cl->nc);
	else if (s != NATS_NOT_YET_CONNECTED)
		atomic_store(&cl->closed, true); /* the next attempt at reopen_at_ns */
}

static void *bridge_main(void *arg)
{
	struct cluster *cl = arg;
	uint64_t next_beat = clock_now_ns();

	pthread_setname_np(pthread_self(), "net001-cluster");
	while (!atomic_load(&cl->stop)) {
		if (atomic_load_explicit(&cl->closed, memory_order_acquire) &&
		    clock_now_ns() >= cl->reopen_at_ns)
			reopen(cl);
		bool any = drain(cl);
		uint64_t now = clock_now_ns();
		if (now >= next_beat) {
			beat(cl);
			next_beat = now + BEAT_NS;
		}
		if (any)
			continue;
		/* Asleep only with every ring seen empty after the fence: a
		 * worker that commits later sees was_empty and writes the
		 * eventfd. */
		bool idle = true;
		for (uint32_t w = 0; w < cl->ncores && idle; w++)
			idle = bytering_idle(&cl->out[w]);
		if (!idle)
			continue;
		struct pollfd pfd = { .fd = cl->efd, .events = POLLIN };
		uint64_t until = next_beat;
		if (atomic_load(&cl->closed) && cl->reopen_at_ns < until)
			until = cl->reopen_at_ns > now ? cl->reopen_at_ns : now;
		int ms = (int)((until - now) / 1000000) + 1;
		if (cl->poll_us) {
			/* The alternative measured in the README: no wake-ups,
			 * a short sleep between looks. */
			struct timespec ts = { 0, (long)cl->poll_us * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(&pfd, 1, ms) > 0) {
			uint64_t v;
			ssize_t r = read(cl->efd, &v, sizeof v);
			(void)r;
		}
	}
	return NULL;
}

/*
 * Connect (NATS_NOT_YET_CONNECTED: in the background, on_connected
 * follows) and subscribe. NATS_CONNECTION_CLOSED: the client has given
 * the connection up already (on_closed follows). cl->nc is set whenever
 * a connection was made, up or not.
 */
static natsStatus connect_and_subscribe(struct cluster *cl)
{
	natsStatus s = natsConnection_Connect(&cl->nc, cl->opts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		atomic_store(&cl->live_sub, NO_SUB);
		return s;
	}
	natsStatus sub = natsConnection_Subscribe(&cl->sub, cl->nc, cl->cfg->cluster_subject,
	                                          on_msg, cl);
	if (sub == NATS_OK)
		sub = natsSubscription_SetPendingLimits(cl->sub, 65536, 256 << 20);
	atomic_store(&cl->live_sub, sub == NATS_OK ? cl->sub : NO_SUB);
	if (sub != NATS_OK && natsConnection_IsClosed(cl->nc))
		return NATS_CONNECTION_CLOSED; /* whichever step it met first */
	return sub == NATS_OK ? s : sub;
}

/* TLS to NATS on opts: the CAs to verify servers with and the client
 * certificate, when given. NATS_OK, or an error with one line in err. */
static natsStatus tls_options(natsOptions *opts, const struct config *cfg, char *err,
                              size_t errlen)
{
	natsStatus s = NATS_OK;
	const char *what = "";
	if (cfg->cluster_ca) {
		what = "--cluster-ca";
		s = natsOptions_LoadCATrustedCertificates(opts, cfg->cluster_ca);
	}
	if (s == NATS_OK && cfg->cluster_cert) {
		what = "--cluster-cert/--cluster-key";
		s = natsOptions_LoadCertificatesChain(opts, cfg->cluster_cert, cfg->cluster_key);
	}
	if (s != NATS_OK) {
		/* The client's text, without its "(file.c:line): " */
		const char *why = nats_GetLastError(NULL);
		const char *past = why && why[0] == '(' ? strstr(why, "): ") : NULL;
		why = past ? past + 3 : why;
		snprintf(err, errlen, "%s: %s", what, why && *why ? why : natsStatus_GetText(s));
	}
	return s;
}

int cluster_check_tls(const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->cluster_ca && !cfg->cluster_cert)
		return 0;
	natsOptions *opts = NULL;
	natsStatus s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = tls_options(opts, cfg, err, errlen);
	else
		snprintf(err, errlen, "cluster: NATS options: %s", natsStatus_GetText(s));
	natsOptions_Destroy(opts);
	return s == NATS_OK ? 0 : -EINVAL;
}

int cluster_start(struct cluster *cl, struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = cl->cfg;
	natsStatus s;
	char name[64];
	cl->srv = srv;

	int r = io_uring_queue_init(64, &cl->wake, 0);
	if (r < 0) {
		snprintf(err, errlen, "cluster: io_uring for wake-ups: %s", strerror(-r));
		return r;
	}
	cl->wake_ok = true;

	/* The server list. */
	char *list = strdup(cfg->cluster);
	const char *urls[64];
	int nurls = 0;
	if (!list) {
		snprintf(err, errlen, "cluster: out of memory");
		return -ENOMEM;
	}
	/* TLS when a URL says tls:// or TLS files are given */
	bool tls = cfg->cluster_ca || cfg->cluster_cert;
	for (char *save = NULL, *u = strtok_r(list, ",", &save); u && nurls < 64;
	     u = strtok_r(NULL, ",", &save)) {
		urls[nurls++] = u;
		tls |= strncmp(u, "tls://", 6) == 0;
	}
	snprintf(name, sizeof name, "net001 %s", cl->node_id);
	uint64_t rbuf = cfg->cluster_backlog / 2;
	s = natsOptions_Create(&cl->opts);
	if (s == NATS_OK) s = natsOptions_SetServers(cl->opts, urls, nurls);
	if (s == NATS_OK) s = natsOptions_SetName(cl->opts, name);
	if (s == NATS_OK) s = natsOptions_SetNoEcho(cl->opts, true);
	if (s == NATS_OK && tls) s = natsOptions_SetSecure(cl->opts, true);
	if (s == NATS_OK && tls && tls_options(cl->opts, cfg, err, errlen) != NATS_OK) {
		free(list);
		return -EINVAL;
	}
	if (s == NATS_OK) s = natsOptions_SetNoRandomize(cl->opts, false);
	/* The NATS client's buffered writes (its flusher batches what the
	 * bridge published in about a millisecond): the receiving nodes then
	 * read batches, not one message per wake-up, at half the CPU for the
	 * same p99 (README, Cluster). NET001_CLUSTER_ASAP=1 writes each
	 * publish at once (lower p50), for measuring. */
	if (s == NATS_OK && getenv("NET001_CLUSTER_ASAP"))
		s = natsOptions_SetSendAsap(cl->opts, true);
	if (s == NATS_OK) s = natsOptions_SetMaxReconnect(cl->opts, -1);
	if (s == NATS_OK) s = natsOptions_SetCustomReconnectDelay(cl->opts, reconnect_delay, cl);
	if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(cl->opts, (int)rbuf);
	if (s == NATS_OK) s = natsOptions_SetTimeout(cl->opts, 2000);
	if (s == NATS_OK) s = natsOptions_SetPingInterval(cl->opts, 5000);
	if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(cl->opts, 2);
	if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(cl->opts, 65536);
	if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(cl->opts, on_disconnected, cl);
	if (s == NATS_OK) s = natsOptions_SetReconnectedCB(cl->opts, on_reconnected, cl);
	if (s == NATS_OK) s = natsOptions_SetClosedCB(cl->opts, on_closed, cl);
	if (s == NATS_OK) s = natsOptions_SetErrorHandler(cl->opts, on_error, cl);
	if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(cl->opts, true, on_connected, cl);
	free(list);
	if (s != NATS_OK) {
		snprintf(err, errlen, "cluster: NATS options: %s", natsStatus_GetText(s));
		return -EINVAL;
	}
	atomic_store(&cl->down_since_ns, clock_now_ns());
	s = connect_and_subscribe(cl);
	if (s == NATS_OK) {
		came_up(cl, cl->nc);
	} else if (s == NATS_NOT_YET_CONNECTED) {
		log_warn("cluster: NATS at %s is not reachable yet; serving locally and "
		         "connecting in the background (node %s)", cl->url_shown, cl->node_id);
	} else if (s == NATS_CONNECTION_CLOSED) {
		/* Given up already (refused credentials): the bridge says why
		 * and tries again. */
		atomic_store(&cl->closed, true);
	} else {
		snprintf(err, errlen, "cluster: NATS at %s: %s", cl->url_shown,
		         natsStatus_GetText(s));
		return -EINVAL;
	}
	r = pthread_create(&cl->thread, NULL, bridge_main, cl);
	if (r != 0) {
		snprintf(err, errlen, "cluster: start the bridge: %s", strerror(r));
		return -r;
	}
	cl->running = true;
	return 0;
}

void cluster_stop(struct cluster *cl)
{
	if (!cl)
		return;
	atomic_store(&cl->stop, true);
	if (cl->running) {
		uint64_t one = 1;
		ssize_t w = write(cl->efd, &one, sizeof one);
		(void)w;
		pthread_join(cl->thread, NULL);
		cl->running = false;
	}
	/* What was published goes out before the connection closes. */
	if (cl->nc && mget(&cl->m.up))
		natsConnection_FlushTimeout(cl->nc, 1000);
	if (cl->sub)
		natsSubscription_Unsubscribe(cl->sub);
	if (cl->nc)
		natsConnection_Close(cl->nc);
	natsSubscription_Destroy(cl->sub);
	natsConnection_Destroy(cl->nc);
	natsOptions_Destroy(cl->opts);
	cl->sub = NULL;
	cl->nc = NULL;
	cl->opts = NULL;
	/* The NATS client's threads (the delivery thread writes the rings
	 * and sends MSG_RINGs) are gone after this. */
	nats_CloseAndWait(5000);
}

#else /* !HAVE_CLUSTER */

int cluster_check_tls(const struct config *cfg, char *err, size_t errlen)
{
	(void)cfg;
	(void)err;
	(void)errlen;
	return 0; /* --cluster is refused before: no TLS files to check */
}

int cluster_start(struct cluster *cl, struct server *srv, char *err, size_t errlen)
{
	(void)cl;
	(void)srv;
	snprintf(err, errlen, "cluster: this build has no cluster support (libnats)");
	return -ENOTSUP;
}

void cluster_stop(struct cluster *cl)
{
	(void)cl;
}

#endif
