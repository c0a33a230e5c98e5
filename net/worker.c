/*
 * worker.c - the workers: one pinned thread per core, each owning an
 * io_uring, a listening socket with multishot accept (with --debug, one
 * accept at a time, each giving the peer's address), a provided-buffer
 * ring, a table of direct descriptors and the connections in it.
 *
 * The loop of a core (the only thread that touches its struct worker):
 *
 *   submit what is queued and wait for at least one completion
 *   read the clock once
 *   walk the completions: accept, recv, send, tick, wake
 *   return receive buffers, re-arm receives that ran out of buffers
 *   start one send per connection with output (everything queued in it)
 *
 * main() talks to a core only through struct server's shared fields and
 * an eventfd write (server_kick), which the core reads through its ring.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "proto/clock.h"
#include "net/broadcast.h"
#include "net/cluster.h"
#include "net/conn.h"
#include "net/worker.h"
#include "net/listener.h"

#if HAVE_MIMALLOC
#include <mimalloc.h>
#endif
#if HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define TICK_NS 1000000000LL  /* idle and linger deadlines have 1 s grain */
#define DRAIN_GRACE_S 6u      /* after SHUTTING_DOWN: 5 s linger, then hard */
#define WHEEL_SLOTS 128

/* ---- ring helpers ------------------------------------------------------------- */

void worker_submit(struct worker *co)
{
	ring_submit(&co->ring);
	/* Completions posted while we were not reaping (sends that finish
	 * at submission) beyond the CQ's room wait in the kernel. */
	if (IO_URING_READ_ONCE(*co->ring.u.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
		metrics_inc(&co->m.cq_overflows);
	/* sendmsg headers are copied by the kernel at submission: once
	 * nothing waits in the backlog, they can all be used again. */
	if (!ring_backlog(&co->ring))
		co->nscratch = 0;
}

struct io_uring_sqe *worker_sqe(struct worker *co)
{
	struct io_uring_sqe *sqe = ring_sqe(&co->ring);
	if (!sqe) {
		/* The kernel takes nothing and no memory is left to hold
		 * SQEs back: nothing a worker can do but stop. */
		log_event(LOG_ERROR, "ring_stuck", LOG_NO_FIELDS,
		          "core %u: io_uring takes no requests and memory is exhausted", co->id);
		abort();
	}
	return sqe;
}

static void arm_accept(struct worker *co)
{
	struct io_uring_sqe *sqe = worker_sqe(co);
	/* Direct descriptors: the kernel picks a free slot of this ring's
	 * table, so connections never use the process's fd table. A multishot
	 * accept gives no peer address, and getpeername() cannot name a direct
	 * descriptor; so with --debug, accepts go one at a time, each writing
	 * its peer's address (SOCKET_URING_OP_GETSOCKNAME would do it for a
	 * multishot accept's descriptors, but arrives only with kernel 6.19). */
	if (co->peers) {
		co->acc_len = sizeof co->acc_addr;
		io_uring_prep_accept_direct(sqe, co->listen_fd, &co->acc_addr.sa, &co->acc_len, 0,
		                            IORING_FILE_INDEX_ALLOC - 1);
	} else {
		io_uring_prep_multishot_accept_direct(sqe, co->listen_fd, NULL, NULL, 0);
	}
	io_uring_sqe_set_data64(sqe, ud_pack(OP_ACCEPT, 0, 0));
	co->accept_armed = true;
}

static void arm_tick(struct worker *co)
{
	struct io_uring_sqe *sqe = worker_sqe(co);
	co->tick_ts.tv_sec = TICK_NS / 1000000000LL;
	co->tick_ts.tv_nsec = TICK_NS % 1000000000LL;
	io_uring_prep_timeout(sqe, &co->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_TICK, 0, 0));
}

static void arm_wake(struct worker *co)
{
	struct io_uring_sqe *sqe = worker_sqe(co);
	io_uring_prep_read(sqe, co->wake_fd, &co->wake_val, sizeof co->wake_val, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_WAKE, 0, 0));
}

/* ---- events --------------------------------------------------------------------- */

static void on_accept(struct worker *co, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		co->accept_armed = false;
	if (cqe->res >= 0) {
		if (co->peers) {
			/* Taken before the accept is armed again into the same
			 * buffer. An address the kernel cut short is left out. */
			struct peer_addr *p = &co->peers[cqe->res];
			if (co->acc_len <= sizeof *p)
				*p = co->acc_addr;
			else
				p->sa.sa_family = AF_UNSPEC;
		}
		conn_accepted(co, (uint32_t)cqe->res);
	} else if (cqe->res != -ECANCELED) {
		/* -ENFILE: this core's table is full; the peer sees a reset. */
		log_event_limited(&co->ll, co->now_s, LOG_WARN, "accept_failed",
		                  LOG_FIELDS(LOG_STR("error", strerror(-cqe->res))),
		                  "core %u: accept: %s", co->id, strerror(-cqe->res));
	}
	/* Re-arm now, except after a full table: the tick retries then, so
	 * a full table does not turn into a busy loop. */
	if (!co->accept_armed && !co->draining && cqe->res != -ENFILE)
		arm_accept(co);
}

static void timer_fired(void *ctx, uint32_t slot)
{
	conn_on_timer(ctx, slot);
}

static void start_drain(struct worker *co)
{
	co->draining = true;
	co->drain_deadline_s = co->now_s + DRAIN_GRACE_S;
	/* accept_armed stays set until the cancelled accept's last CQE: the
	 * request holds the listening socket until then. */
	if (co->accept_armed) {
		struct io_uring_sqe *sqe = worker_sqe(co);
		io_uring_prep_cancel64(sqe, ud_pack(OP_ACCEPT, 0, 0), 0);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 0));
	}
	/* New clients are refused by the kernel from now on, instead of
	 * waiting in a backlog nobody accepts from. */
	if (co->listen_fd >= 0) {
		close(co->listen_fd);
		co->listen_fd = -1;
	}
	conn_drain_all(co);
}

/* Once a second: objects the pools kept but nobody took since the last
 * tick go back to the allocator, and the allocator returns what is free
 * to the system, so memory after a burst falls back to what traffic uses. */
static void trim_pools(struct worker *co)
{
	uint32_t n = pool_trim(&co->blk_pool) + pool_trim(&co->ref_pool);
	for (int i = 0; i < RBUF_CLASSES; i++)
		n += pool_trim(&co->rbuf_pool[i]);
#if HAVE_MIMALLOC
	if (n)
		mi_collect(false);
#endif
}

static void on_tick(struct worker *co)
{
	wheel_advance(&co->wheel, co->now_s, timer_fired, co);
	trim_pools(co);
	if (co->draining && co->now_s >= co->drain_deadline_s)
		conn_release_all(co);
	if (!co->accept_armed && !co->draining)
		arm_accept(co);
	arm_tick(co);
}

static void on_wake(struct worker *co)
{
	atomic_store_explicit(&co->seen_gen,
	                      atomic_load_explicit(&co->srv->auth_gen, memory_order_acquire),
	                      memory_order_release);
	if (!co->draining &&
	    atomic_load_explicit(&co->srv->state, memory_order_acquire) == SERVER_DRAINING)
		start_drain(co);
	arm_wake(co);
}

static void dispatch(struct worker *co, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);

	switch (ud_op(ud)) {
	case OP_RECV:
		conn_on_recv(co, ud_slot(ud), cqe);
		break;
	case OP_SEND:
		conn_on_send(co, ud_slot(ud), ud_gen(ud), cqe->res);
		break;
	case OP_CTL:
		conn_on_ctl(co, ud_slot(ud));
		break;
	case OP_ACCEPT:
		on_accept(co, cqe);
		break;
	case OP_TICK:
		on_tick(co);
		break;
	case OP_WAKE:
		on_wake(co);
		break;
	case OP_XCORE:
		break; /* bcast_poll() drains the queues every iteration */
	case OP_NOP:
		co->nop_armed = false;
		break;
	case OP_RETRY:
		co->retry_armed = false;
		break;
	case OP_MSGRING:
		/* The wake-up did not arrive: the other core may sleep on a
		 * non-empty queue, so send it again (unless it is gone). */
		if (!co->draining) {
			log_event_limited(&co->ll, co->now_s, LOG_WARN, "msg_ring_failed",
			                  LOG_FIELDS(LOG_UINT("to_core", ud_slot(ud)),
			                             LOG_STR("error", strerror(-cqe->res))),
			                  "core %u: MSG_RING to core %u: %s", co->id, ud_slot(ud),
			                  strerror(-cqe->res));
			bcast_wake(co, ud_slot(ud));
		}
		break;
	case OP_IGNORE:
		break;
	}
}

/* Submit (the backlog first), and wait for at least one completion;
 * with sends still to start, only take what has completed (and run the
 * receives that data arrived for meanwhile). */
static int worker_wait(struct worker *co)
{
	worker_submit(co);
	if (co->flush_more) {
		struct __kernel_timespec zero = { 0, 0 };
		struct io_uring_cqe *cqe;
		return io_uring_submit_and_wait_timeout(&co->ring.u, &cqe, 1, &zero, NULL);
	}
	if (!co->poll_wait)
		return io_uring_submit_and_wait(&co->ring.u, 1);
	/* Under valgrind (3.19 holds its big lock across io_uring_enter, so
	 * one sleeping worker would stall every thread): never sleep in the
	 * kernel, yield instead. */
	struct __kernel_timespec zero = { 0, 0 };
	struct io_uring_cqe *cqe;
	int r = io_uring_submit_and_wait_timeout(&co->ring.u, &cqe, 1, &zero, NULL);
	if (r == -ETIME)
		sched_yield();
	return r;
}

static void worker_loop(struct worker *co)
{
	for (;;) {
		int r = worker_wait(co);
		co->now_ns = clock_now_ns();
		co->now_s = (uint32_t)(co->now_ns / 1000000000u);
		co->log.clock_us = (uint32_t)(co->now_ns / 1000u);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME)
			log_event_limited(&co->ll, co->now_s, LOG_ERROR, "ring_enter_failed",
			                  LOG_FIELDS(LOG_STR("error", strerror(-r))),
			                  "core %u: io_uring_enter: %s", co->id, strerror(-r));

		/* Each completion is copied and released before it is
		 * handled: a handler that has to submit finds the CQ room
		 * made so far (the kernel flushes overflowed completions into
		 * it), never a CQ full of entries already dealt with. */
		struct io_uring_cqe *cqe;
		while (io_uring_peek_cqe(&co->ring.u, &cqe) == 0) {
			struct io_uring_cqe c = *cqe;
			io_uring_cqe_seen(&co->ring.u, cqe);
			dispatch(co, &c);
		}

		bcast_poll(co);
		bufring_flush(&co->br);
		metrics_set(&co->m.buffer_ring_free, bufring_free(&co->br));
		if (co->nnobuf)
			conn_rearm_nobuf(co);
		conn_flush_all(co);
		/* Done when every connection is closed and the accept is gone
		 * (so no listening socket outlives the process). */
		if (co->draining && co->nlive == 0 && !co->accept_armed)
			break;
	}
	/* Hand the last closes to the kernel. */
	worker_submit(co);
}

/* ---- setup and teardown ------------------------------------------------------------ */

/* kernel.io_uring_disabled: 0 (or no such sysctl, or unreadable, as
 * under ProcSubset=pid): -1; else its value. */
static int uring_sysctl(void)
{
	char buf[16] = "";
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	if (!f)
		return -1;
	bool ok = fgets(buf, sizeof buf, f) != NULL;
	fclose(f);
	int v = ok ? atoi(buf) : 0;
	return v > 0 ? v : -1;
}

/*
 * io_uring_setup refused with ENOSYS or EPERM: said once for the server
 * (every core meets the same refusal), and main() exits with status 3.
 * The sysctl is named as the cause when it is set; otherwise a seccomp
 * filter is the likely one (container runtimes' default profiles and
 * systemd's SystemCallFilter= refuse io_uring with ENOSYS or EPERM).
 */
static void uring_refused(struct worker *co, int r)
{
	if (atomic_fetch_add(&co->srv->uring_refused, 1) != 0)
		return;
	int v = uring_sysctl();
	if (v > 0)
		log_event(LOG_ERROR, "io_uring_refused",
		          LOG_FIELDS(LOG_STR("error", strerror(-r)), LOG_STR("cause", "sysctl"),
		                     LOG_INT("io_uring_disabled", v)),
		          "core %u: io_uring setup: %s: io_uring is turned off by the sysctl "
		          "kernel.io_uring_disabled = %d%s", co->id, strerror(-r), v,
		          v == 1 ? " (only the group in kernel.io_uring_group may use it)" : "");
	else
		log_event(LOG_ERROR, "io_uring_refused",
		          LOG_FIELDS(LOG_STR("error", strerror(-r)), LOG_STR("cause", "seccomp")),
		          "core %u: io_uring setup: %s: io_uring is not allowed here; "
		          "likely a seccomp profile that blocks io_uring_setup (containers: "
		          "use deploy/seccomp/net001.json; systemd: SystemCallFilter=) or the "
		          "sysctl kernel.io_uring_disabled", co->id, strerror(-r));
}

static int worker_setup(struct worker *co)
{
	int r = ring_init(&co->ring, NET001_RING_ENTRIES, NET001_CQ_ENTRIES);
	if (r < 0) {
		if (r == -ENOSYS || r == -EPERM)
			uring_refused(co, r);
		else
			log_event(LOG_ERROR, "io_uring_setup_failed",
			          LOG_FIELDS(LOG_STR("error", strerror(-r))),
			          "core %u: io_uring setup: %s", co->id, strerror(-r));
		return r;
	}
	if (co->ring.fallback && co->id == 0)
		log_event(LOG_WARN, "io_uring_fallback", LOG_NO_FIELDS,
		          "io_uring: SINGLE_ISSUER/DEFER_TASKRUN refused by the kernel; "
		          "running with COOP_TASKRUN");
	r = io_uring_register_files_sparse(&co->ring.u, co->srv->table_size);
	if (r < 0) {
		log_event(LOG_ERROR, "register_files_failed",
		          LOG_FIELDS(LOG_UINT("descriptors", co->srv->table_size),
		                     LOG_STR("error", strerror(-r))),
		          "core %u: register %u direct descriptors: %s", co->id,
		          co->srv->table_size, strerror(-r));
		return r;
	}
	r = bufring_init(&co->br, &co->ring.u, 0, NET001_BUF_COUNT, NET001_BUF_SIZE);
	if (r < 0) {
		log_event(LOG_ERROR, "buffer_ring_failed", LOG_FIELDS(LOG_STR("error", strerror(-r))),
		          "core %u: provided buffer ring: %s", co->id, strerror(-r));
		return r;
	}
	/* The loop refreshes the gauge after each wake-up; an idle core
	 * must not read as out of buffers until its first event. */
	metrics_set(&co->m.buffer_ring_free, bufring_free(&co->br));
	co->now_ns = clock_now_ns();
	co->now_s = (uint32_t)(co->now_ns / 1000000000u);
	r = wheel_init(&co->wheel, co->srv->table_size, WHEEL_SLOTS, co->now_s);
	if (r < 0)
		return r;
	bucket_init(&co->global_rl, co->global_rate, co->now_ns);
	arm_accept(co);
	arm_wake(co);
	arm_tick(co);
	worker_submit(co);
	return 0;
}

static void worker_teardown(struct worker *co)
{
	if (co->ring.u.ring_fd > 0) {
		bufring_destroy(&co->br, &co->ring.u);
		ring_exit(&co->ring);
	}
	wheel_destroy(&co->wheel);
}

static void *worker_thread(void *arg)
{
	struct worker *co = arg;
	char name[16];

	snprintf(name, sizeof name, "net001-core%u", co->id);
	pthread_setname_np(pthread_self(), name);
	log_set_thread_core((int)co->id);
	if (co->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(co->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
			log_event(LOG_WARN, "pin_failed", LOG_FIELDS(LOG_INT("cpu", co->cpu)),
			          "core %u: cannot pin to CPU %d", co->id, co->cpu);
	}
	if (worker_setup(co) < 0) {
		worker_teardown(co);
		atomic_fetch_add(&co->srv->failed, 1);
		return NULL;
	}
	atomic_fetch_add(&co->srv->ready, 1);
	/* Other cores send us MSG_RINGs: start serving only once every ring
	 * exists. */
	while (atomic_load(&co->srv->ready) + atomic_load(&co->srv->failed) < co->srv->ncores &&
	       atomic_load(&co->srv->state) != SERVER_DRAINING)
		sched_yield();
	if (!atomic_load(&co->srv->failed) && atomic_load(&co->srv->state) != SERVER_DRAINING)
		worker_loop(co);
	/* ... and keep our ring alive until no core can message it. */
	atomic_fetch_add(&co->srv->exited, 1);
	while (atomic_load(&co->srv->exited) < atomic_load(&co->srv->ready)) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	/* The ring is SINGLE_ISSUER: its owner takes it down. */
	worker_teardown(co);
	return NULL;
}

/* ---- the server ----------------------------------------------------------------------- */

/* Direct descriptors per ring: every ring's table is bounded by
 * RLIMIT_NOFILE on its own, so raise the soft limit to the hard one. */
static uint32_t table_size_for(const struct config *cfg)
{
	struct rlimit rl;
	uint64_t want = (uint64_t)cfg->max_connections + 64 + cfg->max_connections / 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur != RLIM_INFINITY && want > rl.rlim_cur)
			want = rl.rlim_cur;
	}
	if (want > (1u << 20))
		want = 1u << 20;
	return (uint32_t)want;
}

static void worker_free(struct worker *co)
{
	if (!co)
		return;
	if (co->listen_fd >= 0)
		close(co->listen_fd);
	if (co->wake_fd >= 0)
		close(co->wake_fd);
	/* Workers leave their loop only with every slot freed (output, rx
	 * and TLS state included), so only the pools hold memory here. */
	pool_destroy(&co->blk_pool);
	pool_destroy(&co->ref_pool);
	for (int i = 0; i < RBUF_CLASSES; i++)
		pool_destroy(&co->rbuf_pool[i]);
	free(co->held);
	free(co->paused);
	free(co->bpend);
	free(co->xq_sent);
	free(co->bpinned);
	free(co->bhold.v);
	blog_destroy(&co->log);
	free(co->tls_plain);
	free(co->conns);
	free(co->open);
	free(co->dirty);
	free(co->nobuf);
	free(co->peers);
	free(co);
}

static struct worker *worker_new(struct server *srv, uint32_t id, int cpu, int listen_fd)
{
	const struct config *cfg = srv->cfg;
	struct worker *co = aligned_alloc(64, (sizeof *co + 63) & ~(size_t)63);
	if (!co)
		return NULL;
	memset(co, 0, sizeof *co);
	metrics_shard_init(&co->m);
	co->srv = srv;
	co->cfg = cfg;
	co->id = id;
	co->cpu = cpu;
	co->listen_fd = listen_fd;
	co->wake_fd = eventfd(0, EFD_CLOEXEC);
	co->poll_wait = RUNNING_ON_VALGRIND;
	co->dec.max_payload = cfg->max_payload;
	co->pong_crc_delta = frame_crc_retype(0, FRAME_PING, FRAME_PONG, 8);
	co->tls = srv->tls;
	co->tls_plain = srv->tls ? malloc(TLS_PLAIN_MAX) : NULL;
	if (srv->cluster) {
		co->cl_out = cluster_ring_out(srv->cluster, id);
		co->cl_in = cluster_ring_in(srv->cluster, id);
		co->cl_efd = cluster_efd(srv->cluster);
	}
	co->global_rate = cfg->global_rate_limit
		? (cfg->global_rate_limit + srv->ncores - 1) / srv->ncores : 0;

	uint32_t n = srv->table_size;
	co->conns = calloc(n, sizeof *co->conns);
	co->open = malloc(sizeof(uint32_t) * n);
	co->dirty = malloc(sizeof(uint32_t) * n);
	co->nobuf = malloc(sizeof(uint32_t) * n * 2); /* a slot's stale entry + its new one */
	co->held = calloc(srv->ncores, sizeof *co->held);
	co->paused = malloc(sizeof(uint32_t) * n * 2); /* as nobuf: stale + new */
	co->bpend = calloc(srv->ncores, sizeof *co->bpend);
	co->xq_sent = calloc(srv->ncores, sizeof *co->xq_sent);
	co->bpinned = malloc(sizeof(uint32_t) * n);
	/* Pages of it are touched only as slots are used. */
	co->peers = cfg->debug ? calloc(n, sizeof *co->peers) : NULL;
	/* The broadcast log: broadcasters pause when the slowest receiver
	 * that keeps up is half a log behind and resume at a quarter; a
	 * stalled receiver is dropped three quarters behind (or at
	 * --max-output, if that is less). */
	if (blog_init(&co->log, cfg->broadcast_log) < 0) {
		co->listen_fd = -1;
		worker_free(co);
		return NULL;
	}
	co->bpause_at = co->log.cap / 2;
	co->bresume_at = co->log.cap / 4;
	co->bkick_lag = co->log.cap / 4 * 3;
	if (cfg->max_output < co->bkick_lag)
		co->bkick_lag = cfg->max_output;
	/* A connection's unsent output above out_high stops its reading:
	 * enough to keep a pipelining client's socket busy, small enough
	 * that thousands of clients that never read hold little. */
	co->out_high = cfg->max_output / 2 < OUT_HIGH_MAX ? cfg->max_output / 2 : OUT_HIGH_MAX;
	co->out_low = co->out_high / 4;

	pool_init(&co->blk_pool, sizeof(struct oblk) + OBLK_BYTES, 1024);
	pool_init(&co->ref_pool, sizeof(struct oblk), 65536);
	pool_init(&co->rbuf_pool[RBUF_SMALL], sizeof(struct rbuf) + RBUF_SMALL_CAP, 4096);
	pool_init(&co->rbuf_pool[RBUF_MID], sizeof(struct rbuf) + RBUF_MID_CAP, 1024);
	pool_init(&co->rbuf_pool[RBUF_LARGE], sizeof(struct rbuf) + FRAME_MAX_SIZE, 128);

	if (co->wake_fd < 0 || !co->conns || !co->open || !co->dirty || !co->nobuf ||
	    !co->held || !co->paused || !co->bpend || !co->bpinned || !co->xq_sent ||
	    (srv->tls && !co->tls_plain) || (cfg->debug && !co->peers)) {
		co->listen_fd = -1; /* the caller closes it */
		worker_free(co);
		return NULL;
	}
	return co;
}

/* The CPUs this process may run on, in order; workers are pinned round-robin. */
static int cpu_for(uint32_t i)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return -1;
	int n = CPU_COUNT(&set);
	if (n <= 0)
		return -1;
	int want = (int)(i % (uint32_t)n);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && want-- == 0)
			return cpu;
	return -1;
}

int server_start(struct server *srv, const struct config *cfg, char *err, size_t errlen)
{
	srv->cfg = cfg;
	srv->ncores = cfg->threads;
	srv->table_size = table_size_for(cfg);
	atomic_store(&srv->state, SERVER_STARTING);

	int *fds = calloc(srv->ncores, sizeof *fds);
	srv->cores = calloc(srv->ncores, sizeof *srv->cores);
	srv->threads = calloc(srv->ncores, sizeof *srv->threads);
	srv->queues = aligned_alloc(64, sizeof(struct spsc) * srv->ncores * srv->ncores);
	if (!fds || !srv->cores || !srv->threads || !srv->queues) {
		free(fds);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(srv->queues, 0, sizeof(struct spsc) * srv->ncores * srv->ncores);
	srv->xq_taken = aligned_alloc(64, sizeof(struct xq_taken) * srv->ncores * srv->ncores);
	if (!srv->xq_taken) {
		free(fds);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(srv->xq_taken, 0, sizeof(struct xq_taken) * srv->ncores * srv->ncores);
	/* n^2 queues: up to XQ_CAPACITY slots each, fewer on big machines so
	 * their slots stay within XQ_BUDGET bytes (a full queue is only
	 * back-pressure, never a loss). */
	uint64_t nq = (uint64_t)srv->ncores * srv->ncores;
	uint32_t cap = XQ_CAPACITY;
	while (cap > 16 && nq * cap * sizeof(void *) > XQ_BUDGET)
		cap /= 2;
	srv->xq_cap = cap;
	for (uint32_t i = 0; i < nq; i++) {
		if (spsc_init(&srv->queues[i], cap) < 0) {
			free(fds);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	int r = listener_open_all(cfg->host, cfg->port, fds, srv->ncores, err, errlen);
	if (r < 0) {
		free(fds);
		return r;
	}
	for (uint32_t i = 0; i < srv->ncores; i++) {
		srv->cores[i] = worker_new(srv, i, cfg->no_pin ? -1 : cpu_for(i), fds[i]);
		if (!srv->cores[i]) {
			for (uint32_t j = i; j < srv->ncores; j++)
				close(fds[j]);
			free(fds);
			snprintf(err, errlen, "out of memory setting up core %u", i);
			return -ENOMEM;
		}
	}
	free(fds);

	for (uint32_t i = 0; i < srv->ncores; i++) {
		r = pthread_create(&srv->threads[i], NULL, worker_thread, srv->cores[i]);
		if (r != 0) {
			snprintf(err, errlen, "start worker %u: %s", i, strerror(r));
			srv->nstarted = i;
			server_stop(srv);
			return -r;
		}
		srv->nstarted = i + 1;
	}
	/* Wait for every worker to finish its ring setup. */
	while (atomic_load(&srv->ready) + atomic_load(&srv->failed) < srv->ncores) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	if (atomic_load(&srv->failed)) {
		snprintf(err, errlen, "io_uring setup failed on %u of %u cores (see above)",
		         atomic_load(&srv->failed), srv->ncores);
		server_stop(srv);
		return -EIO;
	}
	atomic_store(&srv->state, SERVER_RUNNING);
	return 0;
}

void server_kick(struct server *srv)
{
	for (uint32_t i = 0; i < srv->nstarted; i++) {
		uint64_t one = 1;
		ssize_t w = write(srv->cores[i]->wake_fd, &one, sizeof one);
		(void)w; /* an eventfd write only fails when the counter is full */
	}
}

void server_stop(struct server *srv)
{
	atomic_store(&srv->state, SERVER_DRAINING);
	server_kick(srv);
	for (uint32_t i = 0; i < srv->nstarted; i++)
		pthread_join(srv->threads[i], NULL);
	srv->nstarted = 0;
	atomic_store(&srv->state, SERVER_STOPPED);
}

void server_free(struct server *srv)
{
	bcast_cleanup(srv);
	if (srv->cores) {
		for (uint32_t i = 0; i < srv->ncores; i++) {
			worker_free(srv->cores[i]);
		}
	}
	free(srv->cores);
	free(srv->threads);
	free(srv->xq_taken);
	srv->xq_taken = NULL;
	srv->cores = NULL;
	srv->threads = NULL;
}
