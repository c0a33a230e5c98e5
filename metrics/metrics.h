/*
 * metrics.h - per-core metric shards, the Prometheus text renderer, the
 * messages-per-second sampler and the process_* reader.
 *
 * Threads:
 *   - A struct metrics_shard is written by exactly one thread, its owning
 *     worker core, through the inline helpers below (metrics_inc/add/sub/set,
 *     metrics_observe_latency). They are a relaxed load plus a relaxed store:
 *     plain movs on x86-64, no lock prefix, no fence. Two threads writing one
 *     shard would lose updates; one shard per core is the contract.
 *   - Any thread may read a shard concurrently (metrics_render, the
 *     exporter); it sees each field torn-free but fields need not agree with
 *     each other at one instant (a scrape may see a latency bucket bumped
 *     before the sum is). Counters never go backwards between two reads.
 *   - metrics_render, metrics_rate_*, metrics_process_read and
 *     metrics_proc_* touch only their arguments: any thread, no shared
 *     state.
 *
 * Memory: shards belong to the caller (embed one in each core's struct or
 * allocate with aligned_alloc(METRICS_CACHELINE, ...)); this module never
 * allocates or keeps a pointer past a call.
 *
 * Shard layout: every field is an _Atomic uint64_t; the struct starts on its
 * own cache line and its size is a multiple of it, so cores never share a
 * line. Only the owner's core writes it, which keeps the line in that core's
 * cache until a scrape reads it.
 */
#ifndef NET001_METRICS_H
#define NET001_METRICS_H

#include <stdalign.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/frame.h"
#include "proto/msg.h"

#define METRICS_CACHELINE 64

/* Indices into metrics_shard.frames_received (valid frames from clients). */
enum metrics_rx {
	METRICS_RX_PING,
	METRICS_RX_ECHO,
	METRICS_RX_BROADCAST,
	METRICS_RX_AUTH,
	METRICS_RX_DATA,
	METRICS_RX_COUNT,
};

/* Indices into metrics_shard.frames_sent. */
enum metrics_tx {
	METRICS_TX_PONG,
	METRICS_TX_ECHO_REPLY,
	METRICS_TX_BROADCAST,
	METRICS_TX_AUTH_REPLY,
	METRICS_TX_ERROR,
	METRICS_TX_COUNT,
};

/*
 * Latency histogram: finite bucket i holds requests that took at most
 * 1 us << i (1 us, 2 us, 4 us ... 1.048576 s); slot METRICS_LAT_INF holds the
 * rest (+Inf). Buckets are stored per slot, not cumulatively: the renderer
 * accumulates, and derives _count from them so +Inf always equals _count.
 */
#define METRICS_LAT_FINITE 21
#define METRICS_LAT_INF    METRICS_LAT_FINITE
#define METRICS_LAT_SLOTS  (METRICS_LAT_FINITE + 1)

struct metrics_shard {
	/* Gauge: connections this core holds open now (inc at accept, dec at
	 * close; the exporter sums cores). */
	alignas(METRICS_CACHELINE) _Atomic uint64_t connections_active;
	_Atomic uint64_t connections_accepted;
	/* Refused at accept with SERVER_FULL. */
	_Atomic uint64_t connections_rejected;
	/* Valid frames by type, index enum metrics_rx. Their sum drives
	 * net001_messages_per_second. */
	_Atomic uint64_t frames_received[METRICS_RX_COUNT];
	/* Frames handed to the kernel, index enum metrics_tx. */
	_Atomic uint64_t frames_sent[METRICS_TX_COUNT];
	_Atomic uint64_t bytes_received;
	_Atomic uint64_t bytes_sent;
	/* ERROR frames sent, indexed by the code itself (1..ERR_MAX); [0] is
	 * unused so the hot path needs no subtraction. */
	_Atomic uint64_t errors[ERR_MAX + 1];
	/* BROADCAST frames queued to receivers (one per receiving connection). */
	_Atomic uint64_t broadcast_deliveries;
	_Atomic uint64_t slow_consumer_closes;
	/* Cross-core broadcast pushes that found the SPSC queue full. */
	_Atomic uint64_t broadcast_queue_full;
	/* Multishot recv completions that ended with -ENOBUFS. */
	_Atomic uint64_t recv_enobufs;
	_Atomic uint64_t cq_overflows;  /* loop turns that found completions overflowed */
	/* Gauge: provided buffers currently free in this core's ring. */
	_Atomic uint64_t buffer_ring_free;
	/* Request latency (see METRICS_LAT_*): per-slot counts and the sum. */
	_Atomic uint64_t latency_buckets[METRICS_LAT_SLOTS];
	_Atomic uint64_t latency_sum_ns;
	/* Of broadcast_deliveries, those of broadcasts from other servers
	 * (--cluster). */
	_Atomic uint64_t cluster_deliveries;
	/* Broadcast fan-out latency, the same slots: from a broadcast entering
	 * a core's log to a send carrying it completing, one observation per
	 * send (the oldest broadcast in it). */
	_Atomic uint64_t fanout_buckets[METRICS_LAT_SLOTS];
	_Atomic uint64_t fanout_sum_ns;
};

/*
 * The cluster bridge's numbers (net/cluster.c, --cluster). Each group is
 * written by one thread only, on a cache line of its own; the strings are
 * set before the exporter starts and read-only afterwards.
 */
struct metrics_cluster {
	/* The bridge thread (publishing side). */
	alignas(METRICS_CACHELINE) _Atomic uint64_t published;
	_Atomic uint64_t dropped_backlog;      /* the workers' queues to the bridge were full */
	_Atomic uint64_t dropped_disconnected; /* NATS away and its reconnect buffer full */
	_Atomic uint64_t dropped_too_large;    /* over the NATS server's max_payload */
	_Atomic uint64_t slow;                 /* dropped by the NATS client (slow consumer) */
	/* The NATS client's connection events (and the start). */
	alignas(METRICS_CACHELINE) _Atomic uint64_t up;
	_Atomic uint64_t reconnects;
	/* The subscription's delivery thread (receiving side). */
	alignas(METRICS_CACHELINE) _Atomic uint64_t received;
	_Atomic uint64_t gaps;                 /* broadcasts missed by sequence number */
	_Atomic uint64_t dropped_inbound;      /* a worker's queue from the bridge was full */
	_Atomic uint64_t invalid;              /* messages that are not a valid broadcast */
	_Atomic uint64_t duplicates;           /* a sequence number already seen: not delivered */
	_Atomic uint64_t clashes;              /* incarnations found sharing a node id */
	_Atomic uint64_t deferred_bytes;       /* frames waiting behind a full worker's queue */
	/* Read-only. */
	alignas(METRICS_CACHELINE) char node_id[40];
	char subject[256];
};

/* ---- data path: owner core only ------------------------------------------ */

/* Add n. One relaxed load and one relaxed store: no read-modify-write. */
static inline void metrics_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static inline void metrics_inc(_Atomic uint64_t *c)
{
	metrics_add(c, 1);
}

/* For gauges only (connections_active); never below what was added. */
static inline void metrics_sub(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
	                      memory_order_relaxed);
}

static inline void metrics_dec(_Atomic uint64_t *c)
{
	metrics_sub(c, 1);
}

static inline void metrics_set(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

/*
 * Histogram slot for a latency of ns nanoseconds: the smallest i with
 * ns <= 1000 << i, capped at METRICS_LAT_INF. With q = (ns - 1) / 1000 that
 * is the bit width of q (0 for q == 0); the division by a constant is a
 * multiply, the width one lzcnt/bsr.
 */
static inline unsigned metrics_latency_slot(uint64_t ns)
{
	uint64_t q = ns ? (ns - 1) / 1000 : 0;
	unsigned i = q ? 64u - (unsigned)__builtin_clzll(q) : 0u;
	return i < METRICS_LAT_INF ? i : METRICS_LAT_INF;
}

/* Record one request's latency. Owner core only. */
static inline void metrics_observe_latency(struct metrics_shard *s, uint64_t ns)
{
	metrics_inc(&s->latency_buckets[metrics_latency_slot(ns)]);
	metrics_add(&s->latency_sum_ns, ns);
}

/* Record count requests that all took ns (replies that left in one send).
 * Owner core only. */
static inline void metrics_observe_latency_n(struct metrics_shard *s,
                                             uint64_t ns, uint64_t count)
{
	metrics_add(&s->latency_buckets[metrics_latency_slot(ns)], count);
	metrics_add(&s->latency_sum_ns, ns * count);
}

/* Record one broadcast send's fan-out latency. Owner core only. */
static inline void metrics_observe_fanout(struct metrics_shard *s, uint64_t ns)
{
	metrics_inc(&s->fanout_buckets[metrics_latency_slot(ns)]);
	metrics_add(&s->fanout_sum_ns, ns);
}

/* Slot of a frame type (FRAME_* of frame.h) in frames_received, or -1 for a
 * type that is not a valid client request. Folds away for a constant. */
static inline int metrics_rx_slot(unsigned type)
{
	switch (type) {
	case FRAME_PING:      return METRICS_RX_PING;
	case FRAME_ECHO:      return METRICS_RX_ECHO;
	case FRAME_BROADCAST: return METRICS_RX_BROADCAST;
	case FRAME_AUTH:      return METRICS_RX_AUTH;
	case FRAME_DATA:      return METRICS_RX_DATA;
	default:              return -1;
	}
}

/* Slot of a frame type in frames_sent, or -1 for one the server never
 * sends. */
static inline int metrics_tx_slot(unsigned type)
{
	switch (type) {
	case FRAME_PONG:       return METRICS_TX_PONG;
	case FRAME_ECHO_REPLY: return METRICS_TX_ECHO_REPLY;
	case FRAME_BROADCAST:  return METRICS_TX_BROADCAST;
	case FRAME_AUTH_REPLY: return METRICS_TX_AUTH_REPLY;
	case FRAME_ERROR:      return METRICS_TX_ERROR;
	default:               return -1;
	}
}

/* Count one valid frame of this type received; other types are ignored. */
static inline void metrics_frame_received(struct metrics_shard *s, unsigned type)
{
	int i = metrics_rx_slot(type);
	if (i >= 0)
		metrics_inc(&s->frames_received[i]);
}

/* Count n frames of this type sent; other types are ignored. */
static inline void metrics_frames_sent(struct metrics_shard *s, unsigned type,
                                       uint64_t n)
{
	int i = metrics_tx_slot(type);
	if (i >= 0)
		metrics_add(&s->frames_sent[i], n);
}

/* Count one ERROR frame sent with this code (1..ERR_MAX; others ignored).
 * Does not count the frame in frames_sent{type="error"}. */
static inline void metrics_error_sent(struct metrics_shard *s, unsigned code)
{
	if (code >= 1 && code <= ERR_MAX)
		metrics_inc(&s->errors[code]);
}

/* Upper bound of finite slot i (< METRICS_LAT_FINITE), in nanoseconds. */
static inline uint64_t metrics_latency_bound_ns(unsigned i)
{
	return UINT64_C(1000) << i;
}

/* Zero a shard before its core starts (or reuse one). Not concurrent with
 * writers. */
void metrics_shard_init(struct metrics_shard *s);

/* ---- reading: any thread ------------------------------------------------- */

/* Sum of frames_received over every type and shard (relaxed loads). */
uint64_t metrics_frames_received_total(struct metrics_shard *const *shards,
                                       unsigned n);

/*
 * net001_messages_per_second: frames received during the last full second.
 * The exporter calls metrics_rate_start once, then metrics_rate_tick at each
 * second boundary with the running total; per_second is then the total's
 * increase over that second. A tick that comes late (more than 1.5 s after
 * the previous one, e.g. the exporter was descheduled) reports the increase
 * scaled to one second. 0 until the first tick.
 */
struct metrics_rate {
	uint64_t last_ns;
	uint64_t last_total;
	uint64_t per_second;
};

void metrics_rate_start(struct metrics_rate *r, uint64_t now_ns, uint64_t total);
void metrics_rate_tick(struct metrics_rate *r, uint64_t now_ns, uint64_t total);

/* The standard process_* family, read from /proc/self and getrlimit. */
struct metrics_process {
	uint64_t resident_bytes;
	uint64_t virtual_bytes;
	double cpu_seconds;         /* user + system */
	uint64_t open_fds;
	uint64_t max_fds;           /* soft RLIMIT_NOFILE */
	double start_time_seconds;  /* since the Unix epoch */
};

/* Fill *p. Returns 0, or -errno when /proc cannot be read. */
int metrics_process_read(struct metrics_process *p);

/* What metrics_process_read and net001-bench --server-pid take from
 * /proc/PID/stat. Times in clock ticks (sysconf(_SC_CLK_TCK)). */
struct metrics_proc_stat {
	uint64_t utime;
	uint64_t stime;
	uint64_t start_ticks;       /* start time, since boot */
	uint64_t vsize;             /* bytes */
	int64_t rss_pages;
};

/*
 * Read /proc/PID/stat (pid 0: the calling process) into *st. Returns 0,
 * -errno when it cannot be read, or -EPROTO when it does not parse.
 */
int metrics_proc_stat(pid_t pid, struct metrics_proc_stat *st);

/*
 * Read a small /proc file into buf, NUL-terminated (at most cap - 1
 * bytes, the rest is cut). Returns its length or -errno.
 */
ssize_t metrics_proc_read(const char *path, char *buf, size_t cap);

/*
 * How the server was built and the limits it runs with: net001_build_info
 * and the net001_config_* gauges, for dashboards and alert rules (e.g.
 * connections_active against config_max_connections). 0 in a limit that
 * can be off (rate limits, idle timeout) means off.
 */
struct metrics_info {
	const char *version;           /* build_info{version}; NULL: "unknown" */
	const char *allocator;         /* build_info{allocator}: "mimalloc" or "libc"; NULL: "libc" */
	bool tls_built;                /* build_info{tls="yes"|"no"}: TLS compiled in */
	bool tls_enabled;              /* net001_config_tls: --tls given */
	bool auth_enabled;             /* net001_config_auth: --auth-file given */
	uint64_t max_connections;
	uint64_t rate_limit;           /* per connection, msgs/s */
	uint64_t global_rate_limit;    /* msgs/s */
	uint64_t max_output_bytes;
	uint64_t max_payload_bytes;
	uint64_t idle_timeout_seconds;
	uint64_t threads;
	uint64_t buffer_ring_size;     /* provided buffers per core */
};

/* What one scrape renders besides the shards. */
struct metrics_extra {
	uint64_t messages_per_second;
	/* NULL leaves the process_* family out (e.g. /proc unreadable). */
	const struct metrics_process *process;
	/* NULL leaves net001_build_info and net001_config_* out. */
	const struct metrics_info *info;
	/* Milliseconds since the exporter started; only metrics_render_json
	 * reports it (the dashboard's time base). */
	uint64_t uptime_ms;
	/* NULL leaves the net001_cluster_* families out (no --cluster). */
	const struct metrics_cluster *cluster;
};

/*
 * Bytes metrics_render may need for n shards (every value at UINT64_MAX);
 * size the exporter's buffer with it once, it never has to grow.
 */
size_t metrics_render_bound(unsigned n);

/*
 * Render the exposition (text format 0.0.4, HELP and TYPE for every family)
 * of n shards into buf[0, cap). Shard i is labelled core="i". Returns the
 * length written (no NUL is counted; one is written if room remains), or
 * -ENOBUFS if cap is too small.
 */
int metrics_render(char *buf, size_t cap, struct metrics_shard *const *shards,
                   unsigned n, const struct metrics_extra *extra);

/*
 * The same numbers as one JSON object, for the dashboard (GET /stats.json):
 *
 *   {"uptime_ms":U, "messages_per_second":M,
 *    "connections":{"active":A,"accepted":N,"rejected":N},
 *    "frames_received":{"ping":N,...}, "frames_sent":{"pong":N,...},
 *    "bytes":{"received":N,"sent":N}, "errors":{"bad_magic":N,...},
 *    "broadcast_deliveries":N, "slow_consumer_closes":N,
 *    "broadcast_queue_full":N, "recv_enobufs":N,
 *    "latency":{"le_us":[1,2,...,1048576],"counts":[...],"sum_ns":N},
 *    "buffer_ring_free":[core0,...], "buffer_ring_size":S,
 *    "process":{"resident_bytes":N,"cpu_seconds":X,"open_fds":N}}
 *
 * Counters are totals since start (the page takes differences);
 * latency.counts are per bucket, not cumulative, with one more entry than
 * le_us (the +Inf bucket). "buffer_ring_size" is 0 and "process" absent
 * when extra lacks them. Same return values as metrics_render; bound the
 * buffer with metrics_render_json_bound.
 */
int metrics_render_json(char *buf, size_t cap, struct metrics_shard *const *shards,
                        unsigned n, const struct metrics_extra *extra);
size_t metrics_render_json_bound(unsigned n);

#endif
