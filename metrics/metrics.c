/*
 * metrics.c - shard reading, the exposition renderer, the rate sampler and
 * the /proc reader. See metrics.h.
 *
 * Rendering writes straight into the caller's fixed buffer with bounded
 * appends (struct out): no allocation, and a too-small buffer is reported,
 * never overrun. Every value is formatted from integers except the two
 * process_* values that are fractions of a second.
 */
#include "metrics/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Largest shard count metrics_render accepts: keeps lengths inside int. */
#define MAX_SHARDS 65536u

static uint64_t load(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_shard_init(struct metrics_shard *s)
{
	/* Byte-wise zero is a valid all-zero _Atomic uint64_t on every target
	 * we build for; memset keeps this independent of the field list. */
	memset(s, 0, sizeof(*s));
}

uint64_t metrics_frames_received_total(struct metrics_shard *const *shards,
                                       unsigned n)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		for (unsigned t = 0; t < METRICS_RX_COUNT; t++)
			total += load(&shards[i]->frames_received[t]);
	return total;
}

/* ---- messages per second ------------------------------------------------- */

#define NS_PER_SEC UINT64_C(1000000000)

void metrics_rate_start(struct metrics_rate *r, uint64_t now_ns, uint64_t total)
{
	r->last_ns = now_ns;
	r->last_total = total;
	r->per_second = 0;
}

void metrics_rate_tick(struct metrics_rate *r, uint64_t now_ns, uint64_t total)
{
	if (now_ns <= r->last_ns)
		return;
	uint64_t elapsed = now_ns - r->last_ns;
	/* A shard reset (metrics_shard_init while running) is the only way the
	 * total can drop; count that second as empty rather than wrap. */
	uint64_t delta = total >= r->last_total ? total - r->last_total : 0;
	if (elapsed <= NS_PER_SEC + NS_PER_SEC / 2)
		r->per_second = delta;
	else
		r->per_second = (uint64_t)((double)delta * (double)NS_PER_SEC /
		                           (double)elapsed + 0.5);
	r->last_ns = now_ns;
	r->last_total = total;
}

/* ---- /proc --------------------------------------------------------------- */

ssize_t metrics_proc_read(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	while (len + 1 < cap) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int err = -errno;
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* Boot time in seconds since the epoch: the "btime" line of /proc/stat. */
static int read_btime(uint64_t *out)
{
	/* /proc/stat grows with the CPU count; btime follows the cpu lines, so
	 * read it in full (64 KiB covers a few hundred CPUs). */
	size_t cap = 65536;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	int err = 0;
	ssize_t len = metrics_proc_read("/proc/stat", buf, cap);
	if (len < 0) {
		err = (int)len;
		goto out;
	}
	const char *p = strstr(buf, "\nbtime ");
	if (!p || sscanf(p + 7, "%" SCNu64, out) != 1)
		err = -EPROTO;
out:
	free(buf);
	return err;
}

/* Entries of /proc/self/fd, not counting the one opendir holds. */
static int count_fds(uint64_t *out)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	uint64_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	*out = n ? n - 1 : 0;
	return 0;
}

int metrics_proc_stat(pid_t pid, struct metrics_proc_stat *st)
{
	char path[32], buf[1024];
	if (pid)
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	else
		snprintf(path, sizeof path, "/proc/self/stat");
	ssize_t len = metrics_proc_read(path, buf, sizeof(buf));
	if (len < 0)
		return (int)len;
	/* The command name (field 2) may hold spaces and parentheses: the
	 * fields we want follow its last ')'. */
	const char *q = strrchr(buf, ')');
	if (!q)
		return -EPROTO;
	unsigned long long utime, stime, start, vsize;
	long long rss;
	/* Fields 3..24: state ... utime(14) stime(15) ... starttime(22)
	 * vsize(23) rss(24). */
	int got = sscanf(q + 1,
		" %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
		" %*d %*d %*d %*d %*d %*d %llu %llu %lld",
		&utime, &stime, &start, &vsize, &rss);
	if (got != 5)
		return -EPROTO;
	st->utime = utime;
	st->stime = stime;
	st->start_ticks = start;
	st->vsize = vsize;
	st->rss_pages = rss;
	return 0;
}

int metrics_process_read(struct metrics_process *p)
{
	struct metrics_proc_stat st;
	int err = metrics_proc_stat(0, &st);
	if (err < 0)
		return err;

	long tick = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	if (tick <= 0 || page <= 0)
		return -EINVAL;

	uint64_t btime = 0;
	err = read_btime(&btime);
	if (err < 0)
		return err;
	uint64_t fds = 0;
	err = count_fds(&fds);
	if (err < 0)
		return err;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;

	p->resident_bytes = st.rss_pages > 0 ? (uint64_t)st.rss_pages * (uint64_t)page : 0;
	p->virtual_bytes = st.vsize;
	p->cpu_seconds = (double)(st.utime + st.stime) / (double)tick;
	p->open_fds = fds;
	p->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	p->start_time_seconds = (double)btime + (double)st.start_ticks / (double)tick;
	return 0;
}

/* ---- rendering ----------------------------------------------------------- */

struct out {
	char *p;
	size_t len;
	size_t cap;
	bool full;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	if (o->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type,
                   const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Nanoseconds as exact decimal seconds: 1500 -> "0.0000015". */
static void put_seconds(struct out *o, uint64_t ns)
{
	uint64_t frac = ns % NS_PER_SEC;
	if (frac == 0) {
		put(o, "%" PRIu64, ns / NS_PER_SEC);
		return;
	}
	char digits[10];
	snprintf(digits, sizeof(digits), "%09" PRIu64, frac);
	int last = 8;
	while (digits[last] == '0')
		last--;
	digits[last + 1] = '\0';
	put(o, "%" PRIu64 ".%s", ns / NS_PER_SEC, digits);
}

/* One field summed over the shards, given as a byte offset into struct
 * metrics_shard. */
static uint64_t sum_at(struct metrics_shard *const *shards, unsigned n,
                       size_t offset)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < n; i++) {
		const char *base = (const char *)shards[i];
		sum += load((const _Atomic uint64_t *)(base + offset));
	}
	return sum;
}

/* One counter or gauge without labels, summed over the shards. */
static void scalar(struct out *o, struct metrics_shard *const *shards,
                   unsigned n, const char *name, const char *type,
                   const char *help, size_t offset)
{
	family(o, name, type, help);
	put(o, "%s %" PRIu64 "\n", name, sum_at(shards, n, offset));
}

static const char *const rx_labels[METRICS_RX_COUNT] = {
	[METRICS_RX_PING]      = "ping",
	[METRICS_RX_ECHO]      = "echo",
	[METRICS_RX_BROADCAST] = "broadcast",
	[METRICS_RX_AUTH]      = "auth",
	[METRICS_RX_DATA]      = "data",
};

static const char *const tx_labels[METRICS_TX_COUNT] = {
	[METRICS_TX_PONG]       = "pong",
	[METRICS_TX_ECHO_REPLY] = "echo_reply",
	[METRICS_TX_BROADCAST]  = "broadcast",
	[METRICS_TX_AUTH_REPLY] = "auth_reply",
	[METRICS_TX_ERROR]      = "error",
};

/* A latency histogram summed over the shards: its slots and sum at the
 * offsets bucket_off and sum_off of struct metrics_shard. */
static void histogram(struct out *o, struct metrics_shard *const *shards, unsigned n,
                      const char *name, const char *help, size_t bucket_off, size_t sum_off)
{
	uint64_t slots[METRICS_LAT_SLOTS] = {0};
	uint64_t sum_ns = 0;
	for (unsigned i = 0; i < n; i++) {
		const char *base = (const char *)shards[i];
		const _Atomic uint64_t *b0 = (const _Atomic uint64_t *)(base + bucket_off);
		for (unsigned b = 0; b < METRICS_LAT_SLOTS; b++)
			slots[b] += load(&b0[b]);
		sum_ns += load((const _Atomic uint64_t *)(base + sum_off));
	}
	family(o, name, "histogram", help);
	uint64_t cum = 0;
	for (unsigned b = 0; b < METRICS_LAT_FINITE; b++) {
		cum += slots[b];
		put(o, "%s_bucket{le=\"", name);
		put_seconds(o, metrics_latency_bound_ns(b));
		put(o, "\"} %" PRIu64 "\n", cum);
	}
	cum += slots[METRICS_LAT_INF];
	put(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	put(o, "%s_sum ", name);
	put_seconds(o, sum_ns);
	put(o, "\n%s_count %" PRIu64 "\n", name, cum);
}

static void process(struct out *o, const struct metrics_process *p)
{
	family(o, "process_cpu_seconds_total", "counter",
	       "Total user and system CPU time spent in seconds.");
	put(o, "process_cpu_seconds_total %.2f\n", p->cpu_seconds);
	family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
	put(o, "process_open_fds %" PRIu64 "\n", p->open_fds);
	family(o, "process_max_fds", "gauge",
	       "Maximum number of open file descriptors.");
	put(o, "process_max_fds %" PRIu64 "\n", p->max_fds);
	family(o, "process_virtual_memory_bytes", "gauge",
	       "Virtual memory size in bytes.");
	put(o, "process_virtual_memory_bytes %" PRIu64 "\n", p->virtual_bytes);
	family(o, "process_resident_memory_bytes", "gauge",
	       "Resident memory size in bytes.");
	put(o, "process_resident_memory_bytes %" PRIu64 "\n", p->resident_bytes);
	family(o, "process_start_time_seconds", "gauge",
	       "Start time of the process since unix epoch in seconds.");
	put(o, "process_start_time_seconds %.2f\n", p->start_time_seconds);
}

/* A label value with \\, \" and \n escaped (exposition format); at most
 * 64 bytes of it, which covers every value we pass. */
static void put_label(struct out *o, const char *v)
{
	for (size_t i = 0; v[i] && i < 64; i++) {
		char ch = v[i];
		if (ch == '\\' || ch == '"')
			put(o, "\\%c", ch);
		else if (ch == '\n')
			put(o, "\\n");
		else
			put(o, "%c", ch);
	}
}

static void config_gauge(struct out *o, const char *name, const char *help,
                         uint64_t v)
{
	family(o, name, "gauge", help);
	put(o, "%s %" PRIu64 "\n", name, v);
}

static void info(struct out *o, const struct metrics_info *in)
{
	family(o, "net001_build_info", "gauge",
	       "Always 1; the labels say how this server was built.");
	put(o, "net001_build_info{version=\"");
	put_label(o, in->version ? in->version : "unknown");
	put(o, "\",tls=\"%s\",allocator=\"", in->tls_built ? "yes" : "no");
	put_label(o, in->allocator ? in->allocator : "libc");
	put(o, "\"} 1\n");
	config_gauge(o, "net001_config_max_connections",
	             "Configured connection limit for the whole server (--max-connections).",
	             in->max_connections);
	config_gauge(o, "net001_config_rate_limit",
	             "Configured messages per second per connection; 0 is off (--rate-limit).",
	             in->rate_limit);
	config_gauge(o, "net001_config_global_rate_limit",
	             "Configured messages per second for the whole server; 0 is off "
	             "(--global-rate-limit).", in->global_rate_limit);
	config_gauge(o, "net001_config_max_output_bytes",
	             "Configured bound on a connection's unsent output (--max-output).",
	             in->max_output_bytes);
	config_gauge(o, "net001_config_max_payload_bytes",
	             "Configured largest payload accepted (--max-payload).",
	             in->max_payload_bytes);
	config_gauge(o, "net001_config_idle_timeout_seconds",
	             "Configured idle timeout; 0 is off (--idle-timeout).",
	             in->idle_timeout_seconds);
	config_gauge(o, "net001_config_threads", "Worker threads (--threads).",
	             in->threads);
	config_gauge(o, "net001_config_buffer_ring_size",
	             "Provided receive buffers per core (build option buf_count).",
	             in->buffer_ring_size);
	config_gauge(o, "net001_config_tls", "1 if the client port speaks TLS (--tls).",
	             in->tls_enabled);
	config_gauge(o, "net001_config_auth", "1 if clients must authenticate (--auth-file).",
	             in->auth_enabled);
}

static void cluster(struct out *o, struct metrics_shard *const *shards, unsigned n,
                    const struct metrics_cluster *cl)
{
	family(o, "net001_cluster_info", "gauge",
	       "Always 1; the labels name this server in the cluster (--node-id) and "
	       "the NATS subject (--cluster-subject).");
	put(o, "net001_cluster_info{node_id=\"");
	put_label(o, cl->node_id);
	put(o, "\",subject=\"");
	put_label(o, cl->subject);
	put(o, "\"} 1\n");
	config_gauge(o, "net001_cluster_up", "1 while the connection to NATS is up.",
	             load(&cl->up));
	family(o, "net001_cluster_published_total", "counter",
	       "Broadcasts accepted here and published to NATS (once each).");
	put(o, "net001_cluster_published_total %" PRIu64 "\n", load(&cl->published));
	family(o, "net001_cluster_received_total", "counter",
	       "Valid broadcasts received from other servers through NATS.");
	put(o, "net001_cluster_received_total %" PRIu64 "\n", load(&cl->received));
	scalar(o, shards, n, "net001_cluster_deliveries_total", "counter",
	       "Broadcasts from other servers delivered to this server's clients "
	       "(one per receiving connection).",
	       offsetof(struct metrics_shard, cluster_deliveries));
	family(o, "net001_cluster_dropped_total", "counter",
	       "Broadcasts dropped on their way through the cluster, by reason.");
	static const struct { const char *reason; size_t off; } d[] = {
		{ "backlog_full", offsetof(struct metrics_cluster, dropped_backlog) },
		{ "disconnected", offsetof(struct metrics_cluster, dropped_disconnected) },
		{ "too_large", offsetof(struct metrics_cluster, dropped_too_large) },
		{ "inbound_full", offsetof(struct metrics_cluster, dropped_inbound) },
		{ "slow_consumer", offsetof(struct metrics_cluster, slow) },
		{ "invalid", offsetof(struct metrics_cluster, invalid) },
		{ "duplicate", offsetof(struct metrics_cluster, duplicates) },
	};
	for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
		put(o, "net001_cluster_dropped_total{reason=\"%s\"} %" PRIu64 "\n", d[i].reason,
		    load((const _Atomic uint64_t *)((const char *)cl + d[i].off)));
	family(o, "net001_cluster_sequence_gaps_total", "counter",
	       "Broadcasts of other servers missed, from gaps in their sequence numbers.");
	put(o, "net001_cluster_sequence_gaps_total %" PRIu64 "\n", load(&cl->gaps));
	family(o, "net001_cluster_node_id_clashes_total", "counter",
	       "Servers found publishing under a node id that another server uses "
	       "(each counted once); give every server its own --node-id.");
	put(o, "net001_cluster_node_id_clashes_total %" PRIu64 "\n", load(&cl->clashes));
	family(o, "net001_cluster_reconnects_total", "counter",
	       "Reconnections to NATS after the connection was lost.");
	put(o, "net001_cluster_reconnects_total %" PRIu64 "\n", load(&cl->reconnects));
	family(o, "net001_cluster_deferred_bytes", "gauge",
	       "Bytes of other servers' broadcasts waiting for a worker whose queue "
	       "from the bridge is full (its receivers are behind).");
	put(o, "net001_cluster_deferred_bytes %" PRIu64 "\n", load(&cl->deferred_bytes));
}

size_t metrics_render_bound(unsigned n)
{
	/* The fixed families measure under 11 KiB with every value at its
	 * widest (build info and config gauges included); a core's
	 * buffer_ring_free line is under 80 bytes. The margins are checked by
	 * a test that renders maximal values. */
	/* The cluster families: under 3 KiB (two labels of at most 64
	 * bytes, escaped at most to 128). */
	return 16384 + 3072 + (size_t)n * 96;
}

#define OFF(field) offsetof(struct metrics_shard, field)
/* Element i of an array field (every field is an _Atomic uint64_t). */
#define OFF_AT(field, i) (OFF(field) + (size_t)(i) * sizeof(_Atomic uint64_t))

int metrics_render(char *buf, size_t cap, struct metrics_shard *const *shards,
                   unsigned n, const struct metrics_extra *extra)
{
	if (n > MAX_SHARDS || cap > INT32_MAX)
		return -EINVAL;
	struct out o = { .p = buf, .cap = cap };

	scalar(&o, shards, n, "net001_connections_active", "gauge",
	       "Open client connections.", OFF(connections_active));
	scalar(&o, shards, n, "net001_connections_accepted_total", "counter",
	       "Client connections accepted.", OFF(connections_accepted));
	scalar(&o, shards, n, "net001_connections_rejected_total", "counter",
	       "Client connections refused at accept with SERVER_FULL.",
	       OFF(connections_rejected));

	family(&o, "net001_frames_received_total", "counter",
	       "Valid frames received from clients, by type.");
	for (unsigned t = 0; t < METRICS_RX_COUNT; t++)
		put(&o, "net001_frames_received_total{type=\"%s\"} %" PRIu64 "\n",
		    rx_labels[t], sum_at(shards, n, OFF_AT(frames_received, t)));
	family(&o, "net001_frames_sent_total", "counter",
	       "Frames sent to clients, by type.");
	for (unsigned t = 0; t < METRICS_TX_COUNT; t++)
		put(&o, "net001_frames_sent_total{type=\"%s\"} %" PRIu64 "\n",
		    tx_labels[t], sum_at(shards, n, OFF_AT(frames_sent, t)));

	scalar(&o, shards, n, "net001_bytes_received_total", "counter",
	       "Bytes received from clients.", OFF(bytes_received));
	scalar(&o, shards, n, "net001_bytes_sent_total", "counter",
	       "Bytes sent to clients.", OFF(bytes_sent));

	family(&o, "net001_errors_total", "counter",
	       "ERROR frames sent, by error code.");
	for (unsigned c = 1; c <= ERR_MAX; c++)
		put(&o, "net001_errors_total{code=\"%s\"} %" PRIu64 "\n",
		    msg_error_label(c), sum_at(shards, n, OFF_AT(errors, c)));

	family(&o, "net001_messages_per_second", "gauge",
	       "Frames received during the last full second.");
	put(&o, "net001_messages_per_second %" PRIu64 "\n",
	    extra ? extra->messages_per_second : 0);

	histogram(&o, shards, n, "net001_request_latency_seconds",
	          "Time from the read that completed a request to its reply "
	          "being handed to the kernel.",
	          OFF(latency_buckets), OFF(latency_sum_ns));

	scalar(&o, shards, n, "net001_broadcast_deliveries_total", "counter",
	       "BROADCAST frames handed to the kernel for receiving connections.",
	       OFF(broadcast_deliveries));
	histogram(&o, shards, n, "net001_broadcast_fanout_seconds",
	          "Time from a broadcast entering a core's log to a send that "
	          "carried it completing; one observation per send, for the "
	          "oldest broadcast in it.",
	          OFF(fanout_buckets), OFF(fanout_sum_ns));
	scalar(&o, shards, n, "net001_slow_consumer_closes_total", "counter",
	       "Connections closed because their unsent output passed its bound.",
	       OFF(slow_consumer_closes));
	scalar(&o, shards, n, "net001_broadcast_queue_full_total", "counter",
	       "Cross-core broadcast pushes that found the queue full.",
	       OFF(broadcast_queue_full));
	scalar(&o, shards, n, "net001_recv_enobufs_total", "counter",
	       "Receives that ran out of provided buffers.", OFF(recv_enobufs));
	scalar(&o, shards, n, "net001_cq_overflows_total", "counter",
	       "Loop turns that found the completion queue overflowed (completions "
	       "held by the kernel until there was room).", OFF(cq_overflows));

	family(&o, "net001_buffer_ring_free", "gauge",
	       "Provided receive buffers currently free, per core.");
	for (unsigned i = 0; i < n; i++)
		put(&o, "net001_buffer_ring_free{core=\"%u\"} %" PRIu64 "\n", i,
		    load(&shards[i]->buffer_ring_free));

	if (extra && extra->cluster)
		cluster(&o, shards, n, extra->cluster);
	if (extra && extra->info)
		info(&o, extra->info);
	if (extra && extra->process)
		process(&o, extra->process);

	if (o.full)
		return -ENOBUFS;
	return (int)o.len;
}

/* ---- JSON for the dashboard ---------------------------------------------- */

size_t metrics_render_json_bound(unsigned n)
{
	/* Under 2.5 KiB with every value at its widest; 21 bytes a core. */
	return 4096 + (size_t)n * 24;
}

int metrics_render_json(char *buf, size_t cap, struct metrics_shard *const *shards,
                        unsigned n, const struct metrics_extra *extra)
{
	if (n > MAX_SHARDS || cap > INT32_MAX)
		return -EINVAL;
	struct out o = { .p = buf, .cap = cap };

	put(&o, "{\"uptime_ms\":%" PRIu64 ",\"messages_per_second\":%" PRIu64,
	    extra ? extra->uptime_ms : 0, extra ? extra->messages_per_second : 0);
	put(&o, ",\"connections\":{\"active\":%" PRIu64 ",\"accepted\":%" PRIu64
	    ",\"rejected\":%" PRIu64 "}",
	    sum_at(shards, n, OFF(connections_active)),
	    sum_at(shards, n, OFF(connections_accepted)),
	    sum_at(shards, n, OFF(connections_rejected)));
	put(&o, ",\"frames_received\":{");
	for (unsigned t = 0; t < METRICS_RX_COUNT; t++)
		put(&o, "%s\"%s\":%" PRIu64, t ? "," : "", rx_labels[t],
		    sum_at(shards, n, OFF_AT(frames_received, t)));
	put(&o, "},\"frames_sent\":{");
	for (unsigned t = 0; t < METRICS_TX_COUNT; t++)
		put(&o, "%s\"%s\":%" PRIu64, t ? "," : "", tx_labels[t],
		    sum_at(shards, n, OFF_AT(frames_sent, t)));
	put(&o, "},\"bytes\":{\"received\":%" PRIu64 ",\"sent\":%" PRIu64 "}",
	    sum_at(shards, n, OFF(bytes_received)), sum_at(shards, n, OFF(bytes_sent)));
	put(&o, ",\"errors\":{");
	for (unsigned c = 1; c <= ERR_MAX; c++)
		put(&o, "%s\"%s\":%" PRIu64, c > 1 ? "," : "", msg_error_label(c),
		    sum_at(shards, n, OFF_AT(errors, c)));
	put(&o, "},\"broadcast_deliveries\":%" PRIu64 ",\"slow_consumer_closes\":%" PRIu64
	    ",\"broadcast_queue_full\":%" PRIu64 ",\"recv_enobufs\":%" PRIu64,
	    sum_at(shards, n, OFF(broadcast_deliveries)),
	    sum_at(shards, n, OFF(slow_consumer_closes)),
	    sum_at(shards, n, OFF(broadcast_queue_full)),
	    sum_at(shards, n, OFF(recv_enobufs)));

	put(&o, ",\"latency\":{\"le_us\":[");
	for (unsigned b = 0; b < METRICS_LAT_FINITE; b++)
		put(&o, "%s%" PRIu64, b ? "," : "", metrics_latency_bound_ns(b) / 1000);
	put(&o, "],\"counts\":[");
	uint64_t sum_ns = 0;
	for (unsigned b = 0; b < METRICS_LAT_SLOTS; b++) {
		uint64_t c = 0;
		for (unsigned i = 0; i < n; i++)
			c += load(&shards[i]->latency_buckets[b]);
		put(&o, "%s%" PRIu64, b ? "," : "", c);
	}
	for (unsigned i = 0; i < n; i++)
		sum_ns += load(&shards[i]->latency_sum_ns);
	put(&o, "],\"sum_ns\":%" PRIu64 "}", sum_ns);

	put(&o, ",\"buffer_ring_free\":[");
	for (unsigned i = 0; i < n; i++)
		put(&o, "%s%" PRIu64, i ? "," : "", load(&shards[i]->buffer_ring_free));
	put(&o, "],\"buffer_ring_size\":%" PRIu64,
	    extra && extra->info ? extra->info->buffer_ring_size : 0);
	if (extra && extra->process)
		put(&o, ",\"process\":{\"resident_bytes\":%" PRIu64
		    ",\"cpu_seconds\":%.2f,\"open_fds\":%" PRIu64 "}",
		    extra->process->resident_bytes, extra->process->cpu_seconds,
		    extra->process->open_fds);
	put(&o, "}\n");

	if (o.full)
		return -ENOBUFS;
	return (int)o.len;
}
