/*
 * Shards, rendering, the messages-per-second sampler and the process
 * reader, without any socket. Includes the cost of the data-path helpers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "metrics/metrics.h"
#include "proto/frame.h"
#include "proto/msg.h"

/* Render shards with live process values into a fresh buffer. */
static char *render(struct shard_set *s, uint64_t mps)
{
	struct metrics_process proc;
	cr_assert_eq(metrics_process_read(&proc), 0);
	struct metrics_extra extra = { .messages_per_second = mps, .process = &proc };
	size_t cap = metrics_render_bound(s->n);
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	int n = metrics_render(buf, cap, s->ptrs, s->n, &extra);
	cr_assert_gt(n, 0, "render: %d", n);
	cr_assert_eq(strlen(buf), (size_t)n);
	return buf;
}

Test(render, every_family_has_help_and_type)
{
	struct shard_set s;
	shards_make(&s, 2);
	char *text = render(&s, 0);
	for (size_t f = 0; f < METRIC_FAMILIES; f++) {
		char line[256];
		snprintf(line, sizeof(line), "# TYPE %s %s", metric_families[f].name,
		         metric_families[f].type);
		cr_expect_eq(count_lines(text, line), 1, "missing or repeated: %s", line);
		snprintf(line, sizeof(line), "# HELP %s ", metric_families[f].name);
		cr_expect_eq(count_prefix(text, line), 1, "missing or repeated: %s", line);
	}

	/* Each sample belongs to the family whose TYPE line came last. */
	char family_name[128] = "";
	char family_type[16] = "";
	unsigned samples = 0;
	for (char *line = text; *line;) {
		char *nl = strchr(line, '\n');
		cr_assert_not_null(nl, "last line lacks a newline");
		*nl = '\0';
		if (strncmp(line, "# TYPE ", 7) == 0) {
			cr_assert_eq(sscanf(line + 7, "%127s %15s", family_name,
			                    family_type), 2);
		} else if (line[0] != '#') {
			size_t len = strcspn(line, "{ ");
			char name[160];
			snprintf(name, sizeof(name), "%.*s", (int)len, line);
			bool ok = strcmp(name, family_name) == 0;
			if (strcmp(family_type, "histogram") == 0) {
				size_t fl = strlen(family_name);
				ok = strncmp(name, family_name, fl) == 0 &&
				     (strcmp(name + fl, "_bucket") == 0 ||
				      strcmp(name + fl, "_sum") == 0 ||
				      strcmp(name + fl, "_count") == 0);
			}
			cr_expect(ok, "sample %s outside its family %s", name, family_name);
			samples++;
		}
		line = nl + 1;
	}
	/* 3 + 5 + 5 + 2 + 14 + 1 + (22 + 2) + 1 + (22 + 2) + 4 + 2 cores
	 * + 6 process. */
	cr_expect_eq(samples, 91);
	free(text);
	shards_free(&s);
}

/* A labelled or plain series and where its value lives in a shard. */
static const struct {
	const char *series;
	size_t offset;
} fields[] = {
#define F(series, field) { series, offsetof(struct metrics_shard, field) }
	F("net001_connections_active", connections_active),
	F("net001_connections_accepted_total", connections_accepted),
	F("net001_connections_rejected_total", connections_rejected),
	F("net001_frames_received_total{type=\"ping\"}", frames_received[METRICS_RX_PING]),
	F("net001_frames_received_total{type=\"echo\"}", frames_received[METRICS_RX_ECHO]),
	F("net001_frames_received_total{type=\"broadcast\"}", frames_received[METRICS_RX_BROADCAST]),
	F("net001_frames_received_total{type=\"auth\"}", frames_received[METRICS_RX_AUTH]),
	F("net001_frames_received_total{type=\"data\"}", frames_received[METRICS_RX_DATA]),
	F("net001_frames_sent_total{type=\"pong\"}", frames_sent[METRICS_TX_PONG]),
	F("net001_frames_sent_total{type=\"echo_reply\"}", frames_sent[METRICS_TX_ECHO_REPLY]),
	F("net001_frames_sent_total{type=\"broadcast\"}", frames_sent[METRICS_TX_BROADCAST]),
	F("net001_frames_sent_total{type=\"auth_reply\"}", frames_sent[METRICS_TX_AUTH_REPLY]),
	F("net001_frames_sent_total{type=\"error\"}", frames_sent[METRICS_TX_ERROR]),
	F("net001_bytes_received_total", bytes_received),
	F("net001_bytes_sent_total", bytes_sent),
	F("net001_broadcast_deliveries_total", broadcast_deliveries),
	F("net001_slow_consumer_closes_total", slow_consumer_closes),
	F("net001_broadcast_queue_full_total", broadcast_queue_full),
	F("net001_recv_enobufs_total", recv_enobufs),
#undef F
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static _Atomic uint64_t *field(struct metrics_shard *s, size_t offset)
{
	return (_Atomic uint64_t *)((char *)s + offset);
}

Test(render, counters_of_three_shards_are_summed)
{
	struct shard_set s;
	shards_make(&s, 3);
	metrics_set(&s.shards[0].frames_received[METRICS_RX_PING], 40);
	metrics_set(&s.shards[1].frames_received[METRICS_RX_PING], 50);
	metrics_set(&s.shards[2].frames_received[METRICS_RX_PING], 10);
	/* Every other field gets a value unique to (shard, field). */
	for (unsigned i = 0; i < 3; i++)
		for (size_t k = 0; k < NFIELDS; k++)
			if (k != 3)
				metrics_set(field(&s.shards[i], fields[k].offset),
				            (i + 1) * 1000000 + k * 7);
	for (unsigned c = 1; c <= ERR_MAX; c++)
		for (unsigned i = 0; i < 3; i++)
			metrics_set(&s.shards[i].errors[c], c * 10 + i);
	for (unsigned i = 0; i < 3; i++)
		metrics_set(&s.shards[i].buffer_ring_free, 1000 + i);

	char *text = render(&s, 0);
	uint64_t v;
	cr_assert(sample_u64(text, "net001_frames_received_total{type=\"ping\"}", &v));
	cr_expect_eq(v, 100);
	for (size_t k = 0; k < NFIELDS; k++) {
		if (k == 3)
			continue;
		uint64_t want = 0;
		for (unsigned i = 0; i < 3; i++)
			want += atomic_load(field(&s.shards[i], fields[k].offset));
		cr_assert(sample_u64(text, fields[k].series, &v), "%s absent",
		          fields[k].series);
		cr_expect_eq(v, want, "%s = %" PRIu64 ", want %" PRIu64,
		             fields[k].series, v, want);
	}
	for (unsigned c = 1; c <= ERR_MAX; c++) {
		char series[96];
		snprintf(series, sizeof(series), "net001_errors_total{code=\"%s\"}",
		         msg_error_label(c));
		cr_assert(sample_u64(text, series, &v), "%s absent", series);
		cr_expect_eq(v, c * 30 + 3, "%s", series);
	}
	/* Spot-check the label spelling against PROTOCOL.md. */
	cr_expect(sample_u64(text, "net001_errors_total{code=\"bad_magic\"}", &v));
	cr_expect(sample_u64(text, "net001_errors_total{code=\"internal\"}", &v));
	cr_expect_eq(v, 14 * 30 + 3);
	for (unsigned i = 0; i < 3; i++) {
		char series[64];
		snprintf(series, sizeof(series), "net001_buffer_ring_free{core=\"%u\"}", i);
		cr_assert(sample_u64(text, series, &v));
		cr_expect_eq(v, 1000 + i, "per core, not summed");
	}
	free(text);
	shards_free(&s);
}

Test(render, inc_add_sub_set)
{
	struct shard_set s;
	shards_make(&s, 1);
	struct metrics_shard *sh = &s.shards[0];
	for (int i = 0; i < 5; i++)
		metrics_inc(&sh->connections_active);
	metrics_dec(&sh->connections_active);
	metrics_add(&sh->bytes_sent, 1000);
	metrics_add(&sh->bytes_sent, 24);
	metrics_sub(&sh->connections_active, 2);
	metrics_set(&sh->buffer_ring_free, 77);
	metrics_set(&sh->buffer_ring_free, 76);
	char *text = render(&s, 1234);
	uint64_t v;
	cr_assert(sample_u64(text, "net001_connections_active", &v));
	cr_expect_eq(v, 2);
	cr_assert(sample_u64(text, "net001_bytes_sent_total", &v));
	cr_expect_eq(v, 1024);
	cr_assert(sample_u64(text, "net001_buffer_ring_free{core=\"0\"}", &v));
	cr_expect_eq(v, 76);
	cr_assert(sample_u64(text, "net001_messages_per_second", &v));
	cr_expect_eq(v, 1234);
	free(text);
	shards_free(&s);
}

Test(render, frame_type_helpers)
{
	struct shard_set s;
	shards_make(&s, 1);
	struct metrics_shard *sh = &s.shards[0];
	static const unsigned rx[] = { FRAME_PING, FRAME_ECHO, FRAME_BROADCAST,
	                               FRAME_AUTH, FRAME_DATA };
	for (unsigned k = 0; k < 5; k++)
		for (unsigned i = 0; i <= k; i++)
			metrics_frame_received(sh, rx[k]);
	/* Server-to-client and unknown types are not client frames. */
	metrics_frame_received(sh, FRAME_PONG);
	metrics_frame_received(sh, FRAME_ERROR);
	metrics_frame_received(sh, 0x42);
	metrics_frames_sent(sh, FRAME_PONG, 3);
	metrics_frames_sent(sh, FRAME_ECHO_REPLY, 4);
	metrics_frames_sent(sh, FRAME_BROADCAST, 5);
	metrics_frames_sent(sh, FRAME_AUTH_REPLY, 6);
	metrics_frames_sent(sh, FRAME_ERROR, 7);
	metrics_frames_sent(sh, FRAME_PING, 100);
	metrics_error_sent(sh, ERR_BAD_CRC);
	metrics_error_sent(sh, ERR_BAD_CRC);
	metrics_error_sent(sh, 0);
	metrics_error_sent(sh, ERR_MAX + 1);
	metrics_observe_latency_n(sh, 3000, 5);

	char *text = render(&s, 0);
	static const char *rxl[] = { "ping", "echo", "broadcast", "auth", "data" };
	static const char *txl[] = { "pong", "echo_reply", "broadcast", "auth_reply", "error" };
	uint64_t v;
	for (unsigned k = 0; k < 5; k++) {
		char series[96];
		snprintf(series, sizeof(series), "net001_frames_received_total{type=\"%s\"}",
		         rxl[k]);
		cr_assert(sample_u64(text, series, &v));
		cr_expect_eq(v, k + 1, "%s", series);
		snprintf(series, sizeof(series), "net001_frames_sent_total{type=\"%s\"}",
		         txl[k]);
		cr_assert(sample_u64(text, series, &v));
		cr_expect_eq(v, k + 3, "%s", series);
	}
	uint64_t errs = 0;
	for (unsigned c = 0; c <= ERR_MAX; c++)
		errs += atomic_load(&sh->errors[c]);
	cr_expect_eq(errs, 2);
	cr_expect(sample_u64(text, "net001_errors_total{code=\"bad_crc\"}", &v) && v == 2);
	cr_expect(sample_u64(text, "net001_request_latency_seconds_bucket{le=\"0.000002\"}", &v) && v == 0);
	cr_expect(sample_u64(text, "net001_request_latency_seconds_bucket{le=\"0.000004\"}", &v) && v == 5);
	cr_expect(sample_u64(text, "net001_request_latency_seconds_count", &v) && v == 5);
	cr_expect_eq(count_lines(text, "net001_request_latency_seconds_sum 0.000015"), 1);
	free(text);
	shards_free(&s);
}

Test(latency, slot_boundaries)
{
	cr_expect_eq(metrics_latency_slot(0), 0);
	cr_expect_eq(metrics_latency_slot(1), 0);
	cr_expect_eq(metrics_latency_slot(1000), 0);
	cr_expect_eq(metrics_latency_slot(1001), 1);
	cr_expect_eq(metrics_latency_slot(2000), 1);
	cr_expect_eq(metrics_latency_slot(2001), 2);
	cr_expect_eq(metrics_latency_slot(4000), 2);
	cr_expect_eq(metrics_latency_slot(4001), 3);
	for (unsigned i = 0; i < METRICS_LAT_FINITE; i++) {
		uint64_t b = metrics_latency_bound_ns(i);
		cr_expect_eq(metrics_latency_slot(b), i, "bound of %u", i);
		cr_expect_eq(metrics_latency_slot(b + 1), i + 1, "past bound of %u", i);
	}
	cr_expect_eq(metrics_latency_bound_ns(METRICS_LAT_FINITE - 1), 1048576000u);
	cr_expect_eq(metrics_latency_slot(UINT64_MAX), METRICS_LAT_INF);
}

Test(latency, histogram_cumulative_and_summed)
{
	struct shard_set s;
	shards_make(&s, 3);
	static const uint64_t obs[3][3] = {
		{ 500, 1000, 1001 },
		{ 3000000, 2000000000, 0 },
		{ 1048576000, 0, 0 },
	};
	static const unsigned nobs[3] = { 3, 2, 2 };
	uint64_t want_sum = 0, want_count = 0;
	uint64_t want_le[METRICS_LAT_FINITE] = {0};
	for (unsigned i = 0; i < 3; i++) {
		for (unsigned k = 0; k < nobs[i]; k++) {
			metrics_observe_latency(&s.shards[i], obs[i][k]);
			want_sum += obs[i][k];
			want_count++;
			for (unsigned b = 0; b < METRICS_LAT_FINITE; b++)
				if (obs[i][k] <= metrics_latency_bound_ns(b))
					want_le[b]++;
		}
	}
	char *text = render(&s, 0);
	uint64_t v, prev = 0;
	for (unsigned b = 0; b < METRICS_LAT_FINITE; b++) {
		char series[96];
		uint64_t ns = metrics_latency_bound_ns(b);
		/* Exact decimal seconds: 1000 << b ns. */
		char le[32];
		snprintf(le, sizeof(le), "%" PRIu64 ".%06" PRIu64, ns / 1000000000,
		         ns / 1000 % 1000000);
		size_t l = strlen(le);
		while (le[l - 1] == '0')
			le[--l] = '\0';
		if (le[l - 1] == '.')
			le[--l] = '\0';
		snprintf(series, sizeof(series),
		         "net001_request_latency_seconds_bucket{le=\"%s\"}", le);
		cr_assert(sample_u64(text, series, &v), "%s absent", series);
		cr_expect_eq(v, want_le[b], "%s = %" PRIu64, series, v);
		cr_expect_geq(v, prev, "buckets must be cumulative");
		prev = v;
	}
	cr_expect(sample_u64(text,
	          "net001_request_latency_seconds_bucket{le=\"0.000001\"}", &v));
	cr_expect_eq(v, 3, "500, 1000 and 0 ns");
	cr_expect(sample_u64(text,
	          "net001_request_latency_seconds_bucket{le=\"1.048576\"}", &v));
	cr_expect_eq(v, 6);
	cr_assert(sample_u64(text,
	          "net001_request_latency_seconds_bucket{le=\"+Inf\"}", &v));
	cr_expect_eq(v, want_count);
	cr_expect_eq(v, 7);
	cr_assert(sample_u64(text, "net001_request_latency_seconds_count", &v));
	cr_expect_eq(v, 7);
	/* 3051578501 ns, rendered exactly. */
	cr_expect_eq(want_sum, UINT64_C(3051578501));
	cr_expect_eq(count_lines(text, "net001_request_latency_seconds_sum 3.051578501"), 1);
	free(text);
	shards_free(&s);
}

Test(rate, last_full_second_with_a_driven_clock)
{
	const uint64_t sec = 1000000000;
	struct metrics_rate r;
	metrics_rate_start(&r, 5 * sec, 1000);
	cr_expect_eq(r.per_second, 0, "nothing before the first full second");
	metrics_rate_tick(&r, 6 * sec, 1500);
	cr_expect_eq(r.per_second, 500);
	metrics_rate_tick(&r, 7 * sec, 1500);
	cr_expect_eq(r.per_second, 0, "the last second, not an average since start");
	metrics_rate_tick(&r, 8 * sec + sec / 100, 4500);
	cr_expect_eq(r.per_second, 3000, "a tick 10 ms late still counts whole");
	/* A tick after a 4 s stall reports the stall's average per second. */
	metrics_rate_tick(&r, 12 * sec + sec / 100, 8500);
	cr_expect_eq(r.per_second, 1000);
	/* The clock standing still changes nothing. */
	metrics_rate_tick(&r, 12 * sec + sec / 100, 9999);
	cr_expect_eq(r.per_second, 1000);
	/* A reset total reads as an empty second, not a wrap. */
	metrics_rate_tick(&r, 13 * sec + sec / 100, 10);
	cr_expect_eq(r.per_second, 0);
	metrics_rate_tick(&r, 14 * sec + sec / 100, 30);
	cr_expect_eq(r.per_second, 20);
}

Test(rate, frames_received_total_sums_types_and_shards)
{
	struct shard_set s;
	shards_make(&s, 2);
	for (unsigned t = 0; t < METRICS_RX_COUNT; t++) {
		metrics_set(&s.shards[0].frames_received[t], t + 1);
		metrics_set(&s.shards[1].frames_received[t], 10 * (t + 1));
	}
	metrics_set(&s.shards[0].frames_sent[METRICS_TX_PONG], 1000);
	cr_expect_eq(metrics_frames_received_total(s.ptrs, 2), 15 + 150);
	shards_free(&s);
}

Test(process, reads_proc_self)
{
	struct metrics_process a, b;
	cr_assert_eq(metrics_process_read(&a), 0);
	cr_expect_gt(a.resident_bytes, 0);
	cr_expect_geq(a.virtual_bytes, a.resident_bytes);
	cr_expect_geq(a.cpu_seconds, 0.0);
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	cr_expect_eq(a.max_fds, (uint64_t)rl.rlim_cur);
	double now = (double)time(NULL);
	cr_expect_leq(a.start_time_seconds, now + 1);
	cr_expect_gt(a.start_time_seconds, now - 3600, "this process started recently");

	int fds[3];
	for (int i = 0; i < 3; i++)
		cr_assert_geq(fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC), 0);
	/* Burn 300 ms of CPU (not wall time: the machine is shared) so the
	 * tick-based counter moves. */
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	double c0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, c1;
	volatile uint64_t spin = 0;
	do {
		for (int i = 0; i < 100000; i++)
			spin++;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
		c1 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	} while (c1 - c0 < 0.3);
	cr_assert_eq(metrics_process_read(&b), 0);
	cr_expect_eq(b.open_fds, a.open_fds + 3);
	cr_expect_gt(b.cpu_seconds, a.cpu_seconds + 0.1);
	cr_expect_eq(b.start_time_seconds, a.start_time_seconds);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

Test(process, reads_stat_of_a_pid)
{
	struct metrics_proc_stat self, mine, parent;
	cr_assert_eq(metrics_proc_stat(0, &self), 0);
	cr_assert_eq(metrics_proc_stat(getpid(), &mine), 0);
	cr_expect_eq(mine.start_ticks, self.start_ticks, "pid 0 is this process");
	cr_expect_gt(mine.rss_pages, 0);
	cr_expect_gt(mine.vsize, 0);
	cr_assert_eq(metrics_proc_stat(getppid(), &parent), 0);
	cr_expect_leq(parent.start_ticks, mine.start_ticks, "the parent started first");
	/* Above any pid_max (at most 2^22): no such process. */
	cr_expect_eq(metrics_proc_stat(INT32_MAX, &parent), -ENOENT);

	char buf[8];
	cr_expect_eq(metrics_proc_read("/proc/self/stat", buf, sizeof buf), 7,
	             "cut to the buffer");
	cr_expect_eq(strlen(buf), 7);
	cr_expect_eq(metrics_proc_read("/proc/nonexistent", buf, sizeof buf), -ENOENT);
}

Test(render, bound_holds_for_widest_values)
{
	const unsigned n = 1024;
	struct shard_set s;
	shards_make(&s, n);
	memset(s.shards, 0xff, n * sizeof(struct metrics_shard));
	struct metrics_process proc = {
		.resident_bytes = UINT64_MAX,
		.virtual_bytes = UINT64_MAX,
		.cpu_seconds = (double)UINT64_MAX,
		.open_fds = UINT64_MAX,
		.max_fds = UINT64_MAX,
		.start_time_seconds = (double)UINT64_MAX,
	};
	char version[65], allocator[65];
	memset(version, '"', 64);   /* each escaped: 128 bytes */
	version[64] = '\0';
	memset(allocator, '\\', 64);
	allocator[64] = '\0';
	struct metrics_info info = {
		.version = version, .allocator = allocator, .tls_built = true,
		.tls_enabled = true, .auth_enabled = true,
		.max_connections = UINT64_MAX, .rate_limit = UINT64_MAX,
		.global_rate_limit = UINT64_MAX, .max_output_bytes = UINT64_MAX,
		.max_payload_bytes = UINT64_MAX, .idle_timeout_seconds = UINT64_MAX,
		.threads = UINT64_MAX, .buffer_ring_size = UINT64_MAX,
	};
	/* The cluster's families: every counter at its widest, a 32-byte
	 * node id and a 64-byte subject that are all escapes. */
	static struct metrics_cluster cl;
	memset(&cl, 0xff, sizeof cl);
	memset(cl.node_id, '"', 32);
	cl.node_id[32] = '\0';
	memset(cl.subject, '\\', 64);
	cl.subject[64] = '\0';
	struct metrics_extra extra = { .messages_per_second = UINT64_MAX,
	                               .process = &proc, .info = &info,
	                               .uptime_ms = UINT64_MAX, .cluster = &cl };
	size_t cap = metrics_render_bound(n);
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	int len = metrics_render(buf, cap, s.ptrs, n, &extra);
	cr_assert_gt(len, 0, "bound too small: %d", len);
	cr_expect_lt((size_t)len, cap);
	/* The same with a single shard. */
	len = metrics_render(buf, metrics_render_bound(1), s.ptrs, 1, &extra);
	cr_assert_gt(len, 0);
	cr_expect_eq(metrics_render(buf, 100, s.ptrs, 1, &extra), -ENOBUFS);
	free(buf);

	/* The JSON bound, likewise. */
	cap = metrics_render_json_bound(n);
	buf = malloc(cap);
	cr_assert_not_null(buf);
	len = metrics_render_json(buf, cap, s.ptrs, n, &extra);
	cr_assert_gt(len, 0, "JSON bound too small: %d", len);
	cr_expect_lt((size_t)len, cap);
	len = metrics_render_json(buf, metrics_render_json_bound(1), s.ptrs, 1, &extra);
	cr_assert_gt(len, 0);
	free(buf);
	shards_free(&s);
}

/* Limits as a server would report them, and a version that needs
 * escaping in a label value. */
static const struct metrics_info test_info = {
	.version = "1.2.3-\"rc\"\\x",
	.allocator = "mimalloc",
	.tls_built = true,
	.tls_enabled = false,
	.auth_enabled = true,
	.max_connections = 10000,
	.rate_limit = 1000,
	.global_rate_limit = 50000,
	.max_output_bytes = 8388608,
	.max_payload_bytes = 65535,
	.idle_timeout_seconds = 60,
	.threads = 4,
	.buffer_ring_size = 1024,
};

Test(render, build_info_and_config_gauges)
{
	struct shard_set s;
	shards_make(&s, 2);
	struct metrics_extra extra = { .info = &test_info };
	char *buf = malloc(metrics_render_bound(2));
	cr_assert_not_null(buf);
	int n = metrics_render(buf, metrics_render_bound(2), s.ptrs, 2, &extra);
	cr_assert_gt(n, 0);
	cr_expect_eq(count_lines(buf, "# TYPE net001_build_info gauge"), 1);
	cr_expect_eq(count_lines(buf, "net001_build_info{version=\"1.2.3-\\\"rc\\\"\\\\x\","
	                              "tls=\"yes\",allocator=\"mimalloc\"} 1"), 1,
	             "escaped labels:\n%s", strstr(buf, "net001_build_info{"));
	static const struct {
		const char *name;
		uint64_t v;
	} gauges[] = {
		{ "net001_config_max_connections", 10000 },
		{ "net001_config_rate_limit", 1000 },
		{ "net001_config_global_rate_limit", 50000 },
		{ "net001_config_max_output_bytes", 8388608 },
		{ "net001_config_max_payload_bytes", 65535 },
		{ "net001_config_idle_timeout_seconds", 60 },
		{ "net001_config_threads", 4 },
		{ "net001_config_buffer_ring_size", 1024 },
		{ "net001_config_tls", 0 },
		{ "net001_config_auth", 1 },
	};
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
		char line[128];
		snprintf(line, sizeof(line), "# TYPE %s gauge", gauges[i].name);
		cr_expect_eq(count_lines(buf, line), 1, "%s", line);
		snprintf(line, sizeof(line), "# HELP %s ", gauges[i].name);
		cr_expect_eq(count_prefix(buf, line), 1, "%s", line);
		uint64_t v;
		cr_expect(sample_u64(buf, gauges[i].name, &v) && v == gauges[i].v,
		          "%s", gauges[i].name);
	}
	/* Left out without info; NULL strings fall back. */
	struct metrics_info bare = { 0 };
	extra.info = &bare;
	n = metrics_render(buf, metrics_render_bound(2), s.ptrs, 2, &extra);
	cr_assert_gt(n, 0);
	cr_expect_eq(count_lines(buf, "net001_build_info{version=\"unknown\",tls=\"no\","
	                              "allocator=\"libc\"} 1"), 1);
	extra.info = NULL;
	n = metrics_render(buf, metrics_render_bound(2), s.ptrs, 2, &extra);
	cr_assert_gt(n, 0);
	cr_expect_null(strstr(buf, "net001_build_info"));
	cr_expect_null(strstr(buf, "net001_config_"));
	free(buf);
	shards_free(&s);
}

Test(json, same_numbers_as_the_exposition)
{
	struct shard_set s;
	shards_make(&s, 3);
	for (unsigned i = 0; i < 3; i++) {
		metrics_set(&s.shards[i].connections_active, 10 + i);
		metrics_set(&s.shards[i].frames_received[METRICS_RX_ECHO], 100 * (i + 1));
		metrics_set(&s.shards[i].errors[ERR_BAD_CRC], i);
		metrics_set(&s.shards[i].broadcast_deliveries, 7);
		metrics_set(&s.shards[i].slow_consumer_closes, 1);
		metrics_set(&s.shards[i].buffer_ring_free, 1000 + i);
		metrics_observe_latency(&s.shards[i], 1500);       /* 2 us bucket */
		metrics_observe_latency(&s.shards[i], 3000000000u); /* +Inf */
	}
	struct metrics_process proc;
	cr_assert_eq(metrics_process_read(&proc), 0);
	struct metrics_extra extra = { .messages_per_second = 42, .process = &proc,
	                               .info = &test_info, .uptime_ms = 12345 };
	size_t cap = metrics_render_json_bound(3);
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	int n = metrics_render_json(buf, cap, s.ptrs, 3, &extra);
	cr_assert_gt(n, 0);
	cr_expect_eq(strlen(buf), (size_t)n);
	char err[1024];
	cr_expect(json_valid(buf, err, sizeof(err)), "not JSON (%s):\n%s", err, buf);
	static const char *const want[] = {
		"{\"uptime_ms\":12345,\"messages_per_second\":42,",
		"\"connections\":{\"active\":33,\"accepted\":0,\"rejected\":0}",
		"\"frames_received\":{\"ping\":0,\"echo\":600,\"broadcast\":0,\"auth\":0,\"data\":0}",
		"\"bad_crc\":3,",
		"\"bad_magic\":0,",
		"\"internal\":0}",
		"\"broadcast_deliveries\":21,\"slow_consumer_closes\":3,",
		"\"le_us\":[1,2,4,8,",
		",1048576],\"counts\":[0,3,0,",
		",0,3],\"sum_ns\":9000004500}",
		"\"buffer_ring_free\":[1000,1001,1002],\"buffer_ring_size\":1024",
		"\"process\":{\"resident_bytes\":",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_not_null(strstr(buf, want[i]), "missing %s in\n%s", want[i], buf);
	/* No shards, no extra: still JSON. */
	n = metrics_render_json(buf, cap, NULL, 0, NULL);
	cr_assert_gt(n, 0);
	cr_expect(json_valid(buf, err, sizeof(err)), "not JSON (%s):\n%s", err, buf);
	cr_expect_not_null(strstr(buf, "\"buffer_ring_free\":[],\"buffer_ring_size\":0}"));
	cr_expect_eq(metrics_render_json(buf, 50, s.ptrs, 3, &extra), -ENOBUFS);
	free(buf);
	shards_free(&s);
}

Test(render, no_shards_no_process)
{
	char buf[16384];
	int len = metrics_render(buf, sizeof(buf), NULL, 0, NULL);
	cr_assert_gt(len, 0);
	uint64_t v;
	cr_expect(sample_u64(buf, "net001_connections_active", &v));
	cr_expect_eq(v, 0);
	cr_expect_null(strstr(buf, "process_"));
	cr_expect_eq(count_lines(buf, "# TYPE net001_buffer_ring_free gauge"), 1);
}

/*
 * The data-path helpers' cost (printed, not asserted: the machine is shared
 * and noisy). The counts they leave are asserted.
 */
Test(bench, data_path_cost)
{
	struct shard_set s;
	shards_make(&s, 1);
	struct metrics_shard *sh = &s.shards[0];
	const uint64_t iters = 20000000;

	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < iters; i++)
		metrics_inc(&sh->frames_received[METRICS_RX_PING]);
	uint64_t t1 = now_ns();
	for (uint64_t i = 0; i < iters; i++)
		metrics_add(&sh->bytes_received, i & 63);
	uint64_t t2 = now_ns();
	/* Latencies spread over every bucket: 0 .. ~2 s. */
	for (uint64_t i = 0; i < iters; i++)
		metrics_observe_latency(sh, (i * 2654435761u) & ((1u << 31) - 1));
	uint64_t t3 = now_ns();

	fprintf(stderr,
	        "metrics_inc: %.2f ns/op, metrics_add: %.2f ns/op, "
	        "metrics_observe_latency: %.2f ns/op (%" PRIu64 " ops each)\n",
	        (double)(t1 - t0) / (double)iters, (double)(t2 - t1) / (double)iters,
	        (double)(t3 - t2) / (double)iters, iters);

	cr_expect_eq(atomic_load(&sh->frames_received[METRICS_RX_PING]), iters);
	uint64_t count = 0;
	for (unsigned b = 0; b < METRICS_LAT_SLOTS; b++)
		count += atomic_load(&sh->latency_buckets[b]);
	cr_expect_eq(count, iters);
	cr_expect_gt(atomic_load(&sh->latency_buckets[METRICS_LAT_INF]), 0);
	cr_expect_gt(atomic_load(&sh->latency_buckets[0]), 0);
	shards_free(&s);
}
