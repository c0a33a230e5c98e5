/*
 * The metrics endpoint of a real net001-server (PROTOCOL.md section 6 and
 * the README "Metrics" section): every family with its TYPE and HELP,
 * counters that move by exactly the traffic a test sends, the latency
 * histogram's invariants, messages per second, promtool on a live scrape,
 * /healthz through a shutdown, and the --metrics-port flag.
 *
 * Metric values are read over HTTP, so every check compares two scrapes
 * around the traffic. Counters are bumped by the worker cores at slightly
 * different points (a reply when queued, bytes when the kernel reports the
 * send), so the second scrape is polled until every expected delta is
 * reached, then taken once more a little later and compared exactly: a
 * counter that moves by more than the traffic fails too.
 *
 * Most servers run with --threads 2, so the sums across shards are
 * exercised.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exposition.h"
#include "proto/frame.h"
#include "auth_file.h"
#include "harness.h"
#include "http_client.h"
#include "ports.h"
#include "proto/msg.h"
#include "timing.h"

static struct srv S;
static struct tc_frame F;

static const char *const two_threads[] = { "--threads", "2", NULL };

static void start(const char *const *args)
{
	cr_assert_eq(srv_start(&S, args), 0, "server starts");
	cr_assert_neq(S.metrics_port, 0);
}

static void stop_clean(void)
{
	cr_assert_eq(srv_stop(&S, 15000), 0, "server exits 0 after SIGTERM");
}

/* For tests that end the server themselves: clean up after a failure. */
static void stop_if_running(void)
{
	if (S.pid > 0)
		srv_stop(&S, 15000);
}

/* ---- reading a scrape ---------------------------------------------------- */

/* GET /metrics; the body, malloc'd. */
static char *scrape(void)
{
	char *body = http_scrape(S.metrics_port);
	cr_assert_not_null(body, "GET /metrics");
	return body;
}

/* An integer-valued sample; fails the test if it is missing. */
static int64_t ival(const char *text, const char *series)
{
	double v;
	cr_assert(sample(text, series, &v), "series %s present", series);
	cr_assert_eq(v, (double)(int64_t)v, "%s is an integer (%f)", series, v);
	return (int64_t)v;
}

static double dval(const char *text, const char *series)
{
	double v;
	cr_assert(sample(text, series, &v), "series %s present", series);
	return v;
}

struct want {
	const char *series;
	int64_t delta;
};

/*
 * Poll scrapes until every series has moved from base by its delta (or 5 s
 * pass), wait a little more, then check one last scrape exactly. Returns
 * that last scrape (malloc'd) for further checks.
 */
static char *expect_deltas(const char *base, const struct want *w, size_t n)
{
	uint64_t deadline = mono_ms() + 5000;
	for (;;) {
		char *cur = scrape();
		bool all = true;
		for (size_t i = 0; i < n && all; i++) {
			int64_t d = ival(cur, w[i].series) - ival(base, w[i].series);
			all = w[i].delta >= 0 ? d >= w[i].delta : d <= w[i].delta;
		}
		free(cur);
		if (all || mono_ms() > deadline)
			break;
		sleep_ms(20);
	}
	sleep_ms(150);
	char *cur = scrape();
	for (size_t i = 0; i < n; i++) {
		int64_t d = ival(cur, w[i].series) - ival(base, w[i].series);
		cr_expect_eq(d, w[i].delta, "%s moved by %" PRId64 ", expected %" PRId64,
		             w[i].series, d, w[i].delta);
	}
	return cur;
}

#define NWANT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- protocol client bookkeeping ----------------------------------------- */

/* Bytes a test put on the wire in each direction, counted by the test. */
struct wire {
	int64_t up;     /* client to server */
	int64_t down;   /* server to client */
};

static void send_frame(struct wire *w, int fd, uint8_t type, const void *p, size_t n)
{
	cr_assert_eq(tc_send_frame(fd, type, p, n), 0, "send type %#x", type);
	w->up += FRAME_OVERHEAD + (int64_t)n;
}

/* Read one frame and expect its type (and for ERROR its code). */
static void recv_frame(struct wire *w, int fd, uint8_t type, uint16_t code)
{
	cr_assert_eq(tc_read_frame(fd, &F, 5000), 0, "a frame of type %#x arrives", type);
	cr_assert_eq(F.type, type, "type %#x, expected %#x", F.type, type);
	if (type == FRAME_ERROR)
		cr_assert_eq(frame_get_u16(F.payload), code, "error code %u, expected %u",
		             frame_get_u16(F.payload), code);
	w->down += FRAME_OVERHEAD + (int64_t)F.len;
}

static void ping(struct wire *w, int fd, uint64_t v)
{
	uint8_t p[8];
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
	send_frame(w, fd, FRAME_PING, p, 8);
	recv_frame(w, fd, FRAME_PONG, 0);
	cr_assert_eq(memcmp(F.payload, p, 8), 0, "PONG carries the PING's bytes");
}

/* ---- families ------------------------------------------------------------ */

static const char *const rx_types[] = { "ping", "echo", "broadcast", "auth", "data" };
static const char *const tx_types[] = { "pong", "echo_reply", "broadcast", "auth_reply",
                                        "error" };
static const char *const codes[] = {
	NULL, "bad_magic", "bad_version", "bad_crc", "unsupported_type", "bad_payload",
	"frame_too_large", "auth_required", "auth_failed", "rate_limited", "server_full",
	"idle_timeout", "slow_consumer", "shutting_down", "internal",
};

TestSuite(metrics, .timeout = 90);

Test(metrics, every_family_with_type_and_help, .fini = stop_clean)
{
	start(two_threads);
	struct http_resp r;
	cr_assert_eq(http_get(S.metrics_port, "/metrics", &r), 200);
	char ctype[128];
	cr_assert(http_resp_header(&r, "Content-Type", ctype, sizeof ctype));
	cr_expect_str_eq(ctype, "text/plain; version=0.0.4; charset=utf-8");
	const char *t = r.body;

	char line[256];
	for (size_t i = 0; i < METRIC_FAMILIES; i++) {
		const struct metric_family *f = &metric_families[i];
		snprintf(line, sizeof line, "# TYPE %s %s\n", f->name, f->type);
		cr_expect_eq(count_prefix(t, line), 1, "exactly one '%.*s'",
		             (int)strlen(line) - 1, line);
		cr_expect_not_null(strstr(t, line), "%s is a %s", f->name, f->type);
		snprintf(line, sizeof line, "# HELP %s ", f->name);
		cr_expect_eq(count_prefix(t, line), 1, "one HELP for %s", f->name);
		const char *h = strstr(t, line);
		cr_expect(h && h[strlen(line)] != '\n' && h[strlen(line)] != 0,
		          "%s has a non-empty HELP", f->name);
		/* Every family has at least one sample. */
		cr_expect_gt(count_prefix(t, f->name), 0, "%s has samples", f->name);
	}

	char s[128];
	for (size_t i = 0; i < 5; i++) {
		snprintf(s, sizeof s, "net001_frames_received_total{type=\"%s\"}", rx_types[i]);
		cr_expect_eq(ival(t, s), 0, "%s starts at 0", s);
		snprintf(s, sizeof s, "net001_frames_sent_total{type=\"%s\"}", tx_types[i]);
		cr_expect_eq(ival(t, s), 0, "%s starts at 0", s);
	}
	cr_expect_eq(count_prefix(t, "net001_frames_received_total{"), 5);
	cr_expect_eq(count_prefix(t, "net001_frames_sent_total{"), 5);
	for (unsigned c = 1; c <= ERR_MAX; c++) {
		snprintf(s, sizeof s, "net001_errors_total{code=\"%s\"}", codes[c]);
		cr_expect_eq(ival(t, s), 0, "%s present and 0", s);
		cr_expect_str_eq(codes[c], msg_error_label(c));
	}
	cr_expect_eq(count_prefix(t, "net001_errors_total{"), ERR_MAX, "all 14 codes");

	/* Scalars of an idle server. */
	static const char *const zero[] = {
		"net001_connections_active", "net001_connections_accepted_total",
		"net001_connections_rejected_total", "net001_bytes_received_total",
		"net001_bytes_sent_total", "net001_messages_per_second",
		"net001_broadcast_deliveries_total", "net001_slow_consumer_closes_total",
		"net001_broadcast_queue_full_total", "net001_recv_enobufs_total",
		"net001_request_latency_seconds_count",
	};
	for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
		cr_expect_eq(ival(t, zero[i]), 0, "%s is 0 on an idle server", zero[i]);
	cr_expect_eq(dval(t, "net001_request_latency_seconds_sum"), 0.0);

	/* The histogram: 21 finite buckets (1 us << i) and +Inf. */
	cr_expect_eq(count_prefix(t, "net001_request_latency_seconds_bucket{le=\""), 22);
	cr_expect_eq(ival(t, "net001_request_latency_seconds_bucket{le=\"0.000001\"}"), 0);
	cr_expect_eq(ival(t, "net001_request_latency_seconds_bucket{le=\"1.048576\"}"), 0);
	cr_expect_eq(ival(t, "net001_request_latency_seconds_bucket{le=\"+Inf\"}"), 0);

	/* buffer_ring_free: one per core, each with buffers free at rest. */
	cr_expect_eq(count_prefix(t, "net001_buffer_ring_free{"), 2, "two cores");
	cr_expect_gt(ival(t, "net001_buffer_ring_free{core=\"0\"}"), 0);
	cr_expect_gt(ival(t, "net001_buffer_ring_free{core=\"1\"}"), 0);

	/* The process family describes the server process itself. */
	double rss = dval(t, "process_resident_memory_bytes");
	cr_expect_gt(rss, 1024 * 1024.0, "rss %f", rss);
	long kb = srv_rss_kb(&S);
	cr_expect(rss > kb * 1024.0 / 4 && rss < kb * 1024.0 * 4,
	          "rss %f agrees with /proc (%ld kB)", rss, kb);
	cr_expect_geq(dval(t, "process_virtual_memory_bytes"), rss);
	double fds = dval(t, "process_open_fds");
	cr_expect(fds >= 3 && fds < 1000, "open fds %f", fds);
	cr_expect_geq(dval(t, "process_max_fds"), fds);
	cr_expect_geq(dval(t, "process_cpu_seconds_total"), 0.0);
	double start_s = dval(t, "process_start_time_seconds");
	double wall = (double)time(NULL);
	cr_expect(start_s > wall - 60 && start_s <= wall + 1,
	          "started %f s ago", wall - start_s);
	http_resp_free(&r);
}

/* ---- counters follow the traffic ----------------------------------------- */

Test(metrics, hundred_pings, .fini = stop_clean)
{
	start(two_threads);
	char *base = scrape();
	struct wire w = { 0 };

	/* Four connections (spread over both cores), 25 PINGs each, some
	 * one by one and some pipelined in a single write. */
	int fd[4];
	for (int i = 0; i < 4; i++)
		cr_assert_geq(fd[i] = tc_connect(S.port), 0);
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 10; k++)
			ping(&w, fd[i], (uint64_t)(i * 100 + k));
	uint8_t burst[15 * 20];
	size_t n = 0;
	for (int k = 0; k < 15; k++)
		n += frame_encode(burst + n, FRAME_PING, "pingpong", 8);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(tc_send(fd[i], burst, n), 0);
		w.up += (int64_t)n;
	}
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 15; k++)
			recv_frame(&w, fd[i], FRAME_PONG, 0);
	cr_assert_eq(w.up, 100 * 20);
	cr_assert_eq(w.down, 100 * 20);

	const struct want want[] = {
		{ "net001_frames_received_total{type=\"ping\"}", 100 },
		{ "net001_frames_sent_total{type=\"pong\"}", 100 },
		{ "net001_bytes_received_total", w.up },
		{ "net001_bytes_sent_total", w.down },
		{ "net001_connections_accepted_total", 4 },
		{ "net001_connections_active", 4 },
		{ "net001_request_latency_seconds_count", 100 },
		{ "net001_frames_received_total{type=\"echo\"}", 0 },
		{ "net001_frames_sent_total{type=\"echo_reply\"}", 0 },
		{ "net001_frames_sent_total{type=\"error\"}", 0 },
		{ "net001_connections_rejected_total", 0 },
	};
	char *mid = expect_deltas(base, want, NWANT(want));
	cr_expect_gt(dval(mid, "net001_request_latency_seconds_sum"),
	             dval(base, "net001_request_latency_seconds_sum"), "_sum grows");

	/* Leaving: active falls back, nothing else moves. */
	for (int i = 0; i < 4; i++)
		close(fd[i]);
	const struct want after[] = {
		{ "net001_connections_active", -4 },
		{ "net001_connections_accepted_total", 0 },
		{ "net001_bytes_received_total", 0 },
		{ "net001_bytes_sent_total", 0 },
		{ "net001_frames_sent_total{type=\"error\"}", 0 },
	};
	free(expect_deltas(mid, after, NWANT(after)));
	free(mid);
	free(base);
}

static void auth(struct wire *w, int fd, const char *user, const char *token, int ok)
{
	uint8_t p[400];
	int n = msg_auth_build(p, user, strlen(user), token, strlen(token));
	cr_assert_gt(n, 0);
	send_frame(w, fd, FRAME_AUTH, p, (size_t)n);
	recv_frame(w, fd, FRAME_AUTH_REPLY, 0);
	cr_assert_eq(F.payload[0], ok, "AUTH %s/%s", user, token);
}

Test(metrics, echo_broadcast_auth_data, .fini = stop_clean)
{
	struct auth_file af = { "" };
	const char *path = auth_file_write(&af, "metrics", AUTH_USERS("alice", AUTH_ALICE_HEX));
	cr_assert_not_null(path);
	const char *const args[] = { "--threads", "2", "--auth-file", path, NULL };
	start(args);
	char *base = scrape();
	struct wire w = { 0 };

	/* a sends; b, c, d receive; e never authenticates. */
	int fd[5];
	for (int i = 0; i < 5; i++)
		cr_assert_geq(fd[i] = tc_connect(S.port), 0);
	int a = fd[0], e = fd[4];
	for (int i = 0; i < 4; i++)
		auth(&w, fd[i], "alice", "s3cret", 1);
	auth(&w, e, "alice", "wrong", 0);
	auth(&w, e, "nobody", "s3cret", 0);

	/* ECHO of 0, 5, 3000 (answered in place when reassembled) and 65535
	 * bytes. */
	static const size_t esz[] = { 0, 5, 3000, 65535 };
	uint8_t *p = malloc(65535);
	for (size_t i = 0; i < 65535; i++)
		p[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < 4; i++) {
		send_frame(&w, a, FRAME_ECHO, p, esz[i]);
		recv_frame(&w, a, FRAME_ECHO_REPLY, 0);
		cr_assert_eq(F.len, esz[i]);
		cr_assert_eq(memcmp(F.payload, p, esz[i]), 0);
	}

	/* Three broadcasts reach b, c, d: nine deliveries. */
	static const size_t bsz[] = { 5, 1000, 20000 };
	for (size_t i = 0; i < 3; i++)
		send_frame(&w, a, FRAME_BROADCAST, p, bsz[i]);
	for (int r = 1; r <= 3; r++)
		for (size_t i = 0; i < 3; i++) {
			recv_frame(&w, fd[r], FRAME_BROADCAST, 0);
			cr_assert_eq(F.len, bsz[i]);
		}
	cr_assert(tc_quiet(a, 200), "no broadcast back to the sender");
	cr_assert(tc_quiet(e, 100), "nothing for the unauthenticated");

	/* DATA gets no reply; a PING after it shows it was consumed. */
	for (int i = 0; i < 6; i++)
		send_frame(&w, a, FRAME_DATA, p, (size_t)(i * 10));
	ping(&w, a, 42);

	/* e may not broadcast or send DATA: AUTH_REQUIRED, not counted as
	 * valid frames received. */
	send_frame(&w, e, FRAME_BROADCAST, "x", 1);
	recv_frame(&w, e, FRAME_ERROR, ERR_AUTH_REQUIRED);
	send_frame(&w, e, FRAME_DATA, "x", 1);
	recv_frame(&w, e, FRAME_ERROR, ERR_AUTH_REQUIRED);

	const struct want want[] = {
		{ "net001_frames_received_total{type=\"auth\"}", 6 },
		{ "net001_frames_sent_total{type=\"auth_reply\"}", 6 },
		{ "net001_frames_received_total{type=\"echo\"}", 4 },
		{ "net001_frames_sent_total{type=\"echo_reply\"}", 4 },
		{ "net001_frames_received_total{type=\"broadcast\"}", 3 },
		{ "net001_frames_sent_total{type=\"broadcast\"}", 9 },
		{ "net001_broadcast_deliveries_total", 9 },
		{ "net001_frames_received_total{type=\"data\"}", 6 },
		{ "net001_frames_received_total{type=\"ping\"}", 1 },
		{ "net001_frames_sent_total{type=\"pong\"}", 1 },
		{ "net001_frames_sent_total{type=\"error\"}", 2 },
		{ "net001_errors_total{code=\"auth_required\"}", 2 },
		{ "net001_bytes_received_total", w.up },
		{ "net001_bytes_sent_total", w.down },
		{ "net001_connections_accepted_total", 5 },
		{ "net001_connections_active", 5 },
		/* auth_reply 6, echo_reply 4, pong 1, auth_required 2 */
		{ "net001_request_latency_seconds_count", 13 },
	};
	free(expect_deltas(base, want, NWANT(want)));
	for (int i = 0; i < 5; i++)
		close(fd[i]);
	free(p);
	free(base);
	auth_file_remove(&af);
}

Test(metrics, broadcast_deliveries_count_receivers, .fini = stop_clean)
{
	start(two_threads);
	struct wire w = { 0 };
	enum { NRX = 7, NB = 12 };
	int fd[NRX + 1];
	char *s0 = scrape();
	for (int i = 0; i <= NRX; i++)
		cr_assert_geq(fd[i] = tc_connect(S.port), 0);
	/* Each receiver answers a PING first: it is open on its core. The
	 * base for the broadcasts is a scrape that has seen all of that
	 * (bytes are counted when the kernel reports a send, which may be
	 * after the client read it). */
	for (int i = 0; i <= NRX; i++)
		ping(&w, fd[i], (uint64_t)i);
	const struct want pings[] = {
		{ "net001_frames_sent_total{type=\"pong\"}", NRX + 1 },
		{ "net001_bytes_received_total", w.up },
		{ "net001_bytes_sent_total", w.down },
		{ "net001_connections_active", NRX + 1 },
	};
	char *base = expect_deltas(s0, pings, NWANT(pings));
	free(s0);
	w = (struct wire){ 0 };

	uint8_t p[600];
	memset(p, 0xab, sizeof p);
	for (int k = 0; k < NB; k++)
		send_frame(&w, fd[0], FRAME_BROADCAST, p, (size_t)(k * 50));
	for (int i = 1; i <= NRX; i++)
		for (int k = 0; k < NB; k++) {
			recv_frame(&w, fd[i], FRAME_BROADCAST, 0);
			cr_assert_eq(F.len, k * 50, "in order");
		}
	const struct want want[] = {
		{ "net001_frames_received_total{type=\"broadcast\"}", NB },
		{ "net001_broadcast_deliveries_total", NRX * NB },
		{ "net001_frames_sent_total{type=\"broadcast\"}", NRX * NB },
		{ "net001_bytes_received_total", w.up },
		{ "net001_bytes_sent_total", w.down },
		{ "net001_request_latency_seconds_count", 0 },
	};
	char *after = expect_deltas(base, want, NWANT(want));
	/* Fan-out latency: one observation per send that completed a
	 * broadcast, so at least one per receiver and at most one per
	 * delivery; cumulative buckets end at the count. */
	double n = dval(after, "net001_broadcast_fanout_seconds_count") -
	           dval(base, "net001_broadcast_fanout_seconds_count");
	cr_expect(n >= NRX && n <= NRX * NB, "fan-out observations %.0f: %s", n, after);
	cr_expect_eq(ival(after, "net001_broadcast_fanout_seconds_bucket{le=\"+Inf\"}"),
	             ival(after, "net001_broadcast_fanout_seconds_count"));
	cr_expect_gt(dval(after, "net001_broadcast_fanout_seconds_sum"),
	             dval(base, "net001_broadcast_fanout_seconds_sum"));
	free(after);
	for (int i = 0; i <= NRX; i++)
		close(fd[i]);
	free(base);
}

/* The sender of broadcast_fanout_shows_a_receiver_that_waits, on a
 * thread of its own: what it sends may not fit anywhere until the
 * receiver reads (a 256 KiB log in the small build, and the kernel's
 * buffers as they come), so the reader must not wait for it. */
struct fanout_tx {
	int fd, count;
	size_t len;
	int sent;
};

static void *fanout_send(void *arg)
{
	struct fanout_tx *t = arg;
	uint8_t p[1000];
	memset(p, 0x5a, sizeof p);
	while (t->sent < t->count && tc_send_frame(t->fd, FRAME_BROADCAST, p, t->len) == 0)
		t->sent++;
	return NULL;
}

/* A receiver that reads nothing for 400 ms while 6 MB of broadcasts are
 * sent to it: the kernel's send buffer for it takes at most 4 MiB
 * (tcp_wmem), the rest waits in the log, and the fan-out histogram shows
 * that wait (what waits in the kernel's buffer is not in it: a send
 * completes when the kernel has taken the bytes). */
Test(metrics, broadcast_fanout_shows_a_receiver_that_waits, .fini = stop_clean)
{
	const char *const args[] = { "--threads", "2", "--rate-limit", "0", "--global-rate-limit",
	                             "0", NULL };
	start(args);
	struct wire w = { 0 };
	int tx = tc_connect(S.port);
	int rx = tc_connect_small(S.port, 4096);
	cr_assert_geq(tx, 0);
	cr_assert_geq(rx, 0);
	ping(&w, tx, 1);
	ping(&w, rx, 2);
	char *base = scrape();
	enum { NB = 6000, LEN = 1000 };
	static struct fanout_tx t = { .count = NB, .len = LEN };
	t.fd = tx;
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, fanout_send, &t), 0);
	sleep_ms(400);
	for (int k = 0; k < NB; k++) {
		cr_assert_eq(tc_read_frame(rx, &F, 5000), 0, "broadcast %d of %d arrives", k, NB);
		cr_assert_eq(F.type, FRAME_BROADCAST, "broadcast %d: type %#x", k, F.type);
	}
	pthread_join(th, NULL);
	cr_assert_eq(t.sent, NB, "every broadcast written");
	/* The last send's completion may come after the last read. */
	char *after = NULL;
	for (int tries = 0; tries < 50; tries++) {
		free(after);
		after = scrape();
		if (dval(after, "net001_broadcast_deliveries_total") -
		    dval(base, "net001_broadcast_deliveries_total") >= NB)
			break;
		sleep_ms(20);
	}
	cr_assert_geq(dval(after, "net001_broadcast_deliveries_total") -
	              dval(base, "net001_broadcast_deliveries_total"), NB, "%s", after);
	/* Sends that completed after the stall carried broadcasts that had
	 * waited in the log since before it: some observations are past
	 * 262 ms (bucket 1 us << 18). */
	double slow = dval(after, "net001_broadcast_fanout_seconds_count") -
	              dval(after, "net001_broadcast_fanout_seconds_bucket{le=\"0.262144\"}") -
	              (dval(base, "net001_broadcast_fanout_seconds_count") -
	               dval(base, "net001_broadcast_fanout_seconds_bucket{le=\"0.262144\"}"));
	cr_expect_geq(slow, 1, "no fan-out observation past 262 ms: %s", after);
	cr_expect_geq(dval(after, "net001_broadcast_fanout_seconds_sum") -
	              dval(base, "net001_broadcast_fanout_seconds_sum"), 0.262, "%s", after);
	free(after);
	free(base);
	close(tx);
	close(rx);
}

Test(metrics, errors_by_code, .fini = stop_clean)
{
	const char *const args[] = { "--threads", "2", "--max-payload", "1000", NULL };
	start(args);
	char *base = scrape();
	struct wire w = { 0 };
	uint8_t buf[2048];

	int a = tc_connect(S.port);
	cr_assert_geq(a, 0);
	/* 7 bad CRCs, whatever the type: the connection continues. */
	static const uint8_t crc_types[] = { FRAME_PING, FRAME_ECHO, FRAME_BROADCAST,
	                                     FRAME_AUTH, FRAME_DATA, 0x42, FRAME_PONG };
	for (size_t i = 0; i < sizeof crc_types; i++) {
		size_t n = frame_encode(buf, crc_types[i], "12345678", 8);
		buf[n - 2] ^= 0x10;
		cr_assert_eq(tc_send(a, buf, n), 0);
		w.up += (int64_t)n;
		recv_frame(&w, a, FRAME_ERROR, ERR_BAD_CRC);
	}
	/* 3 unsupported types, 2 bad payloads. */
	static const uint8_t bad_types[] = { FRAME_PONG, FRAME_ERROR, 0x09 };
	for (size_t i = 0; i < sizeof bad_types; i++) {
		send_frame(&w, a, bad_types[i], "zz", 2);
		recv_frame(&w, a, FRAME_ERROR, ERR_UNSUPPORTED_TYPE);
	}
	send_frame(&w, a, FRAME_PING, "1234567", 7);
	recv_frame(&w, a, FRAME_ERROR, ERR_BAD_PAYLOAD);
	send_frame(&w, a, FRAME_AUTH, "\x00zz", 3);
	recv_frame(&w, a, FRAME_ERROR, ERR_BAD_PAYLOAD);
	ping(&w, a, 1);

	/* Closing errors, each on a connection of its own. */
	int b = tc_connect(S.port);
	cr_assert_eq(tc_send(b, "NOTMAGIC", 8), 0);
	w.up += 8;
	recv_frame(&w, b, FRAME_ERROR, ERR_BAD_MAGIC);
	cr_assert(tc_wait_closed(b, 3000));
	close(b);

	int c = tc_connect(S.port);
	size_t n = frame_encode(buf, FRAME_PING, "12345678", 8);
	buf[4] = 9;
	cr_assert_eq(tc_send(c, buf, n), 0);
	w.up += (int64_t)n;
	recv_frame(&w, c, FRAME_ERROR, ERR_BAD_VERSION);
	cr_assert(tc_wait_closed(c, 3000));
	close(c);

	int d = tc_connect(S.port);
	frame_put_header(buf, FRAME_ECHO, 1001);
	cr_assert_eq(tc_send(d, buf, 8), 0);
	w.up += 8;
	recv_frame(&w, d, FRAME_ERROR, ERR_FRAME_TOO_LARGE);
	cr_assert(tc_wait_closed(d, 3000));
	close(d);

	const struct want want[] = {
		{ "net001_errors_total{code=\"bad_crc\"}", 7 },
		{ "net001_errors_total{code=\"unsupported_type\"}", 3 },
		{ "net001_errors_total{code=\"bad_payload\"}", 2 },
		{ "net001_errors_total{code=\"bad_magic\"}", 1 },
		{ "net001_errors_total{code=\"bad_version\"}", 1 },
		{ "net001_errors_total{code=\"frame_too_large\"}", 1 },
		{ "net001_errors_total{code=\"auth_required\"}", 0 },
		{ "net001_errors_total{code=\"rate_limited\"}", 0 },
		{ "net001_errors_total{code=\"internal\"}", 0 },
		{ "net001_frames_sent_total{type=\"error\"}", 15 },
		/* Refused frames are not valid frames received. */
		{ "net001_frames_received_total{type=\"ping\"}", 1 },
		{ "net001_frames_received_total{type=\"echo\"}", 0 },
		{ "net001_frames_received_total{type=\"broadcast\"}", 0 },
		{ "net001_frames_received_total{type=\"auth\"}", 0 },
		{ "net001_frames_received_total{type=\"data\"}", 0 },
		{ "net001_frames_sent_total{type=\"pong\"}", 1 },
		{ "net001_bytes_received_total", w.up },
		{ "net001_bytes_sent_total", w.down },
		{ "net001_connections_accepted_total", 4 },
		{ "net001_connections_active", 1 },
	};
	free(expect_deltas(base, want, NWANT(want)));
	close(a);
	free(base);
}

Test(metrics, rate_limited_counted, .fini = stop_clean)
{
	const char *const args[] = { "--threads", "2", "--rate-limit", "10", NULL };
	start(args);
	char *base = scrape();
	int a = tc_connect(S.port);
	uint8_t buf[30 * 20];
	size_t n = 0;
	for (int i = 0; i < 30; i++)
		n += frame_encode(buf + n, FRAME_PING, "12345678", 8);
	cr_assert_eq(tc_send(a, buf, n), 0);
	int pongs = 0, limited = 0;
	for (int i = 0; i < 30; i++) {
		cr_assert_eq(tc_read_frame(a, &F, 3000), 0);
		pongs += F.type == FRAME_PONG;
		limited += F.type == FRAME_ERROR && frame_get_u16(F.payload) == ERR_RATE_LIMITED;
	}
	cr_assert_eq(pongs + limited, 30);
	cr_assert_gt(limited, 0);
	const struct want want[] = {
		{ "net001_frames_received_total{type=\"ping\"}", pongs },
		{ "net001_frames_sent_total{type=\"pong\"}", pongs },
		{ "net001_errors_total{code=\"rate_limited\"}", limited },
		{ "net001_frames_sent_total{type=\"error\"}", limited },
		{ "net001_request_latency_seconds_count", 30 },
		{ "net001_bytes_received_total", 30 * 20 },
	};
	free(expect_deltas(base, want, NWANT(want)));
	close(a);
	free(base);
}

Test(metrics, connections_accepted_active_rejected, .fini = stop_clean)
{
	const char *const args[] = { "--threads", "2", "--max-connections", "2", NULL };
	start(args);
	char *s0 = scrape();
	struct wire w = { 0 };
	cr_assert_eq(ival(s0, "net001_connections_active"), 0);

	int a = tc_connect(S.port), b = tc_connect(S.port);
	ping(&w, a, 1);
	ping(&w, b, 2);
	const struct want two[] = {
		{ "net001_connections_accepted_total", 2 },
		{ "net001_connections_active", 2 },
		{ "net001_connections_rejected_total", 0 },
	};
	char *s1 = expect_deltas(s0, two, NWANT(two));

	/* Full: the third and fourth are refused right after accept. */
	for (int i = 0; i < 2; i++) {
		int c = tc_connect(S.port);
		cr_assert_geq(c, 0);
		recv_frame(&w, c, FRAME_ERROR, ERR_SERVER_FULL);
		cr_assert(tc_wait_closed(c, 3000));
		close(c);
	}
	const struct want full[] = {
		{ "net001_connections_rejected_total", 2 },
		{ "net001_connections_accepted_total", 0 },
		{ "net001_connections_active", 0 },
		{ "net001_errors_total{code=\"server_full\"}", 2 },
		{ "net001_frames_sent_total{type=\"error\"}", 2 },
		{ "net001_request_latency_seconds_count", 0 },
	};
	char *s2 = expect_deltas(s1, full, NWANT(full));

	/* One leaves, another comes in. */
	close(a);
	const struct want left[] = { { "net001_connections_active", -1 } };
	char *s3 = expect_deltas(s2, left, NWANT(left));
	int d = tc_connect(S.port);
	ping(&w, d, 3);
	const struct want back[] = {
		{ "net001_connections_accepted_total", 1 },
		{ "net001_connections_active", 1 },
		{ "net001_connections_rejected_total", 0 },
	};
	char *s4 = expect_deltas(s3, back, NWANT(back));
	cr_expect_eq(ival(s4, "net001_connections_active"), 2);
	close(b);
	close(d);
	const struct want gone[] = { { "net001_connections_active", -2 } };
	char *s5 = expect_deltas(s4, gone, NWANT(gone));
	cr_expect_eq(ival(s5, "net001_connections_active"), 0);
	cr_expect_eq(ival(s5, "net001_connections_accepted_total"), 3);
	cr_expect_eq(ival(s5, "net001_connections_rejected_total"), 2);
	free(s0);
	free(s1);
	free(s2);
	free(s3);
	free(s4);
	free(s5);
}

Test(metrics, slow_consumer_close_counted, .fini = stop_clean)
{
	static const char *const args[] = { "--threads", "2", "--max-output", "200000",
	                                    "--rate-limit", "0", "--global-rate-limit", "0",
	                                    NULL };
	start(args);
	char *base = scrape();
	int a = tc_connect_small(S.port, 4096);
	int sender = tc_connect(S.port);
	cr_assert(a >= 0 && sender >= 0);
	cr_assert(tc_ping(a, 1, 2000) && tc_ping(sender, 2, 2000));
	/* a never reads; far more broadcasts than the socket buffers hold go
	 * out (replies would only hold a back; broadcasts cannot be). */
	uint8_t *p = calloc(1, 65535);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(tc_send_frame(sender, FRAME_BROADCAST, p, 65535), 0);
	cr_assert(tc_wait_closed(a, 15000), "the server dropped the reader");
	free(p);
	close(a);
	close(sender);

	const struct want want[] = {
		{ "net001_slow_consumer_closes_total", 1 },
		{ "net001_errors_total{code=\"slow_consumer\"}", 1 },
		{ "net001_connections_accepted_total", 2 },
		{ "net001_connections_active", 0 },
	};
	char *cur = expect_deltas(base, want, NWANT(want));
	cr_expect_eq(ival(cur, "net001_frames_received_total{type=\"broadcast\"}"), 1000);
	free(cur);
	free(base);
}

/* ---- the latency histogram ------------------------------------------------ */

struct hist {
	int n;
	double le[32];
	int64_t cum[32];
	int64_t inf, count;
	double sum;
};

/* Parse net001_request_latency_seconds in rendering order. */
static void hist_read(const char *t, struct hist *h)
{
	static const char pre[] = "net001_request_latency_seconds_bucket{le=\"";
	memset(h, 0, sizeof *h);
	h->inf = -1;
	for (const char *p = strstr(t, pre); p; p = strstr(p + 1, pre)) {
		const char *v = p + sizeof pre - 1;
		const char *q = strchr(v, '"');
		cr_assert_not_null(q);
		cr_assert_eq(strncmp(q, "\"} ", 3), 0);
		int64_t c = strtoll(q + 3, NULL, 10);
		if (strncmp(v, "+Inf\"", 5) == 0) {
			h->inf = c;
			continue;
		}
		cr_assert_eq(h->inf, -1, "+Inf comes last");
		cr_assert_lt(h->n, 32);
		h->le[h->n] = strtod(v, NULL);
		h->cum[h->n] = c;
		h->n++;
	}
	h->count = ival(t, "net001_request_latency_seconds_count");
	h->sum = dval(t, "net001_request_latency_seconds_sum");
}

static void hist_check(const struct hist *h)
{
	cr_assert_eq(h->n, 21, "21 finite buckets");
	for (int i = 0; i < h->n; i++) {
		double want = 1e-6 * (double)(1u << i);
		cr_expect(h->le[i] > want * 0.999999 && h->le[i] < want * 1.000001,
		          "bucket %d le=%g, expected %g", i, h->le[i], want);
		if (i > 0)
			cr_expect_geq(h->cum[i], h->cum[i - 1], "cumulative at le=%g", h->le[i]);
	}
	cr_expect_geq(h->inf, h->cum[h->n - 1], "+Inf >= last finite bucket");
	cr_expect_eq(h->inf, h->count, "+Inf == _count");
	cr_expect_geq(h->sum, 0.0);
}

Test(metrics, latency_histogram, .fini = stop_clean)
{
	start(two_threads);
	char *t0 = scrape();
	struct hist h0, h1;
	hist_read(t0, &h0);
	hist_check(&h0);
	struct wire w = { 0 };

	int fd[3];
	for (int i = 0; i < 3; i++)
		cr_assert_geq(fd[i] = tc_connect(S.port), 0);
	int replies = 0;
	uint8_t buf[4096];
	for (int k = 0; k < 20; k++)
		for (int i = 0; i < 3; i++) {
			ping(&w, fd[i], (uint64_t)k);
			replies++;
		}
	for (int k = 0; k < 10; k++) {
		send_frame(&w, fd[k % 3], FRAME_ECHO, buf, (size_t)(k * 300));
		recv_frame(&w, fd[k % 3], FRAME_ECHO_REPLY, 0);
		replies++;
	}
	/* AUTH without an auth file: answered (failure), no close. */
	for (int k = 0; k < 3; k++) {
		auth(&w, fd[1], "alice", "s3cret", 0);
		replies++;
	}
	/* Non-closing errors are replies too. */
	for (int k = 0; k < 4; k++) {
		send_frame(&w, fd[2], 0x30, "", 0);
		recv_frame(&w, fd[2], FRAME_ERROR, ERR_UNSUPPORTED_TYPE);
		replies++;
	}
	send_frame(&w, fd[0], FRAME_PING, "", 0);
	recv_frame(&w, fd[0], FRAME_ERROR, ERR_BAD_PAYLOAD);
	replies++;
	for (int k = 0; k < 5; k++) {
		size_t n = frame_encode(buf, FRAME_ECHO, "abc", 3);
		buf[n - 1] ^= 1;
		cr_assert_eq(tc_send(fd[1], buf, n), 0);
		recv_frame(&w, fd[1], FRAME_ERROR, ERR_BAD_CRC);
		replies++;
	}
	/* DATA and BROADCAST are not answered: no latency sample. */
	for (int k = 0; k < 8; k++)
		send_frame(&w, fd[0], FRAME_DATA, "d", 1);
	send_frame(&w, fd[0], FRAME_BROADCAST, "b", 1);
	recv_frame(&w, fd[1], FRAME_BROADCAST, 0);
	recv_frame(&w, fd[2], FRAME_BROADCAST, 0);
	ping(&w, fd[0], 99);
	replies++;
	cr_assert_eq(replies, 60 + 10 + 3 + 4 + 1 + 5 + 1);

	const struct want want[] = {
		{ "net001_request_latency_seconds_count", replies },
		{ "net001_request_latency_seconds_bucket{le=\"+Inf\"}", replies },
	};
	char *t1 = expect_deltas(t0, want, NWANT(want));
	hist_read(t1, &h1);
	hist_check(&h1);
	cr_expect_eq(h1.count - h0.count, replies);
	cr_expect_gt(h1.sum, h0.sum, "_sum grows");
	/* Each bucket only grows, and the mean is a plausible latency. */
	for (int i = 0; i < h1.n; i++)
		cr_expect_geq(h1.cum[i], h0.cum[i]);
	double mean = (h1.sum - h0.sum) / (double)replies;
	cr_expect(mean > 0 && mean < 1.0, "mean latency %g s", mean);
	/* Over loopback nearly every reply leaves within a second. */
	cr_expect_geq(h1.cum[20] - h0.cum[20], replies * 9 / 10);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	free(t0);
	free(t1);
}

/* ---- messages per second --------------------------------------------------- */

/* messages_per_second seen by scrapes every 50 ms for ms milliseconds:
 * each distinct run of values in order (consecutive repeats folded). */
static int mps_watch(int64_t *vals, int cap, int ms)
{
	int n = 0;
	uint64_t end = mono_ms() + (uint64_t)ms;
	while (mono_ms() < end) {
		char *t = scrape();
		int64_t v = ival(t, "net001_messages_per_second");
		free(t);
		if (n == 0 || vals[n - 1] != v) {
			if (n < cap)
				vals[n++] = v;
		}
		sleep_ms(50);
	}
	return n;
}

Test(metrics, messages_per_second_is_last_full_second, .fini = stop_clean)
{
	start(two_threads);
	enum { N = 137 };
	int a = tc_connect(S.port), b = tc_connect(S.port);
	cr_assert(a >= 0 && b >= 0);
	/* Quiet first: the gauge settles at 0. */
	int64_t v[64];
	int n = mps_watch(v, 64, 1200);
	cr_assert_eq(v[n - 1], 0, "0 while nothing is sent");

	/* N frames in one go, split over two connections (both cores), in
	 * a few milliseconds. The sampler reads the total at whole seconds,
	 * so the burst is counted in one second unless a sample happens to
	 * fall inside those milliseconds; then it is split over two seconds
	 * and the attempt is repeated. */
	uint8_t *buf = malloc(N * 20);
	bool seen = false;
	for (int attempt = 0; attempt < 3 && !seen; attempt++) {
		size_t len = 0;
		for (int i = 0; i < N; i++)
			len += frame_encode(buf + len, i % 3 ? FRAME_PING : FRAME_DATA, "12345678", 8);
		/* 80 frames on a, the rest on b. */
		size_t cut = 80 * 20;
		cr_assert_eq(tc_send(a, buf, cut), 0);
		cr_assert_eq(tc_send(b, buf + cut, len - cut), 0);
		int pongs_a = 0, pongs_b = 0;
		for (int i = 0; i < 80; i++)
			pongs_a += i % 3 != 0;
		for (int i = 80; i < N; i++)
			pongs_b += i % 3 != 0;
		for (int i = 0; i < pongs_a; i++)
			cr_assert_eq(tc_read_frame(a, &F, 3000), 0);
		for (int i = 0; i < pongs_b; i++)
			cr_assert_eq(tc_read_frame(b, &F, 3000), 0);

		n = mps_watch(v, 64, 2300);
		char seq[512] = "";
		for (int i = 0; i < n; i++)
			snprintf(seq + strlen(seq), sizeof seq - strlen(seq), " %" PRId64, v[i]);
		for (int i = 0; i < n; i++)
			seen |= v[i] == N;
		bool split = false;
		for (int i = 0; i + 1 < n; i++)
			split |= v[i] > 0 && v[i + 1] > 0 && v[i] + v[i + 1] == N;
		cr_assert(seen || split, "scrapes saw%s; expected %d in one second", seq, N);
		/* Never more than was sent, and back to 0 once the second after
		 * the burst has passed. */
		for (int i = 0; i < n; i++)
			cr_assert_leq(v[i], N, "saw%s", seq);
		cr_assert_eq(v[n - 1], 0, "back to 0 afterwards; saw%s", seq);
	}
	cr_assert(seen, "the burst fell into one second in one of 3 attempts");
	free(buf);
	close(a);
	close(b);
}

/* ---- promtool ---------------------------------------------------------------- */

Test(metrics, promtool_accepts_live_scrape, .fini = stop_clean)
{
	char tool[512];
	if (!promtool_path(tool, sizeof tool))
		cr_skip_test("promtool not installed (Debian package prometheus, scripts/deps)");
	const char *const args[] = { "--threads", "2", "--max-connections", "4", NULL };
	start(args);
	struct wire w = { 0 };

	/* Mixed traffic so every family has non-zero values. */
	int fd[4];
	for (int i = 0; i < 4; i++)
		cr_assert_geq(fd[i] = tc_connect(S.port), 0);
	for (int i = 0; i < 4; i++)
		ping(&w, fd[i], (uint64_t)i);
	send_frame(&w, fd[0], FRAME_ECHO, "hello", 5);
	recv_frame(&w, fd[0], FRAME_ECHO_REPLY, 0);
	send_frame(&w, fd[0], FRAME_BROADCAST, "news", 4);
	for (int i = 1; i < 4; i++)
		recv_frame(&w, fd[i], FRAME_BROADCAST, 0);
	auth(&w, fd[1], "u", "t", 0);
	send_frame(&w, fd[2], FRAME_DATA, "d", 1);
	send_frame(&w, fd[2], 0x77, "", 0);
	recv_frame(&w, fd[2], FRAME_ERROR, ERR_UNSUPPORTED_TYPE);
	int full = tc_connect(S.port);
	recv_frame(&w, full, FRAME_ERROR, ERR_SERVER_FULL);
	close(full);
	close(fd[3]);
	sleep_ms(1200); /* messages_per_second has a full second behind it */

	struct http_resp r;
	cr_assert_eq(http_get(S.metrics_port, "/metrics", &r), 200);
	cr_assert_gt(ival(r.body, "net001_frames_received_total{type=\"ping\"}"), 0);
	char report[4096];
	int st = promtool_check(tool, r.body, r.body_len, report, sizeof report);
	cr_expect_eq(st, 0, "promtool status %d:\n%s", st, report);
	cr_expect_str_empty(report, "promtool reported:\n%s", report);
	http_resp_free(&r);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

/* ---- /healthz and the HTTP surface ----------------------------------------- */

/* Pings on its own connection every few milliseconds until told to stop. */
struct pinger {
	uint16_t port;
	atomic_bool stop;
	atomic_int ok;
	atomic_int failed;
	pthread_t thread;
};

static void *pinger_main(void *arg)
{
	struct pinger *pg = arg;
	int fd = tc_connect(pg->port);
	if (fd < 0) {
		atomic_fetch_add(&pg->failed, 1);
		return NULL;
	}
	for (uint64_t i = 0; !atomic_load(&pg->stop); i++) {
		if (tc_ping(fd, i, 2000))
			atomic_fetch_add(&pg->ok, 1);
		else
			atomic_fetch_add(&pg->failed, 1);
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
	close(fd);
	return NULL;
}

static void pinger_start(struct pinger *pg, uint16_t port)
{
	pg->port = port;
	atomic_init(&pg->stop, false);
	atomic_init(&pg->ok, 0);
	atomic_init(&pg->failed, 0);
	cr_assert_eq(pthread_create(&pg->thread, NULL, pinger_main, pg), 0);
}

static void pinger_stop(struct pinger *pg)
{
	atomic_store(&pg->stop, true);
	pthread_join(pg->thread, NULL);
}

Test(metrics, http_surface_leaves_protocol_port_alone, .fini = stop_clean)
{
	start(two_threads);
	struct pinger pg;
	pinger_start(&pg, S.port);
	struct http_resp r;
	char v[128];

	/* A client that sends half a request and stalls does not hold up
	 * anyone else. */
	struct http_conn stall;
	cr_assert_eq(http_conn_open(&stall, S.metrics_port), 0);
	cr_assert_eq(http_conn_send(&stall, "GET /metr", 9), 0);

	for (int round = 0; round < 20; round++) {
		cr_assert_eq(http_get(S.metrics_port, "/healthz", &r), 200);
		cr_assert_str_eq(r.body, "ok");
		http_resp_free(&r);
		cr_assert_eq(http_get(S.metrics_port, "/healthz?probe=1", &r), 200);
		http_resp_free(&r);
		cr_assert_eq(http_get(S.metrics_port, "/metrics?x=y", &r), 200);
		cr_assert_not_null(strstr(r.body, "# TYPE net001_connections_active gauge"));
		http_resp_free(&r);

		cr_assert_eq(http_get(S.metrics_port, "/", &r), 200, "the dashboard");
		cr_assert_not_null(strstr(r.body, "<!doctype html>"));
		http_resp_free(&r);
		cr_assert_eq(http_get(S.metrics_port, "/stats.json", &r), 200);
		cr_assert_not_null(strstr(r.body, "\"frames_received\":{\"ping\":"));
		http_resp_free(&r);
		cr_assert_eq(http_get(S.metrics_port, "/index.html", &r), 404);
		http_resp_free(&r);
		cr_assert_eq(http_get(S.metrics_port, "/metricsx", &r), 404);
		http_resp_free(&r);
		cr_assert_eq(http_get(S.metrics_port, "/healthz/", &r), 404);
		http_resp_free(&r);

		static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH" };
		cr_assert_eq(http_method(S.metrics_port, methods[round % 4], "/metrics", &r),
		             405, "%s /metrics", methods[round % 4]);
		cr_assert(http_resp_header(&r, "Allow", v, sizeof v));
		cr_assert_str_eq(v, "GET");
		http_resp_free(&r);
		cr_assert_eq(http_method(S.metrics_port, "POST", "/healthz", &r), 405);
		http_resp_free(&r);

		static const char *const bad[] = {
			"GARBAGE\r\n\r\n",
			"GET /metrics HTTP/1.1\r\n\r\n",           /* HTTP/1.1 without Host */
			"GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", /* not origin-form */
			"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n",
			"GET /metrics HTTP/1.1\nHost: x\n\n",      /* bare LF */
			"\xde\xad\xbe\xef\x01\x01\x00\x08",        /* a NET-001 frame */
		};
		const char *b = bad[round % 6];
		bool closed;
		cr_assert_eq(http_request(S.metrics_port, b, strlen(b), &r, &closed), 400,
		             "malformed #%d", round % 6);
		cr_assert(closed, "400 closes the connection");
		http_resp_free(&r);
	}

	/* Keep-alive and pipelining on one connection. */
	struct http_conn k;
	cr_assert_eq(http_conn_open(&k, S.metrics_port), 0);
	static const char two[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	                          "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	cr_assert_eq(http_conn_send(&k, two, sizeof two - 1), 0);
	struct http_resp rr[2];
	cr_assert(http_read_response(&k, &rr[0]) == 0 && http_read_response(&k, &rr[1]) == 0,
	          "two pipelined responses");
	cr_assert_eq(rr[0].status, 200);
	cr_assert_str_eq(rr[0].body, "ok");
	cr_assert_eq(rr[1].status, 200);
	cr_assert_not_null(strstr(rr[1].body, "net001_frames_received_total{type=\"ping\"}"));
	http_resp_free(&rr[0]);
	http_resp_free(&rr[1]);
	/* Still open for a third. */
	cr_assert_eq(http_conn_send(&k, two, 34), 0);
	cr_assert_eq(http_read_response(&k, &r), 0);
	cr_assert_str_eq(r.body, "ok");
	http_resp_free(&r);
	http_conn_close(&k);

	/* The stalled client is still open (not yet timed out) or cleanly
	 * answered 408: either way, no response was owed before. */
	http_conn_close(&stall);
	sleep_ms(100);
	pinger_stop(&pg);
	cr_expect_eq(atomic_load(&pg.failed), 0, "every PING answered");
	cr_expect_gt(atomic_load(&pg.ok), 20, "the pinger kept going (%d)",
	             atomic_load(&pg.ok));

	/* The pings show up in the counters; HTTP traffic does not. */
	char *t = scrape();
	int64_t pings = ival(t, "net001_frames_received_total{type=\"ping\"}");
	cr_expect_eq(pings, atomic_load(&pg.ok));
	cr_expect_eq(ival(t, "net001_connections_accepted_total"), 1);
	cr_expect_eq(ival(t, "net001_bytes_received_total"), pings * 20);
	cr_expect_eq(ival(t, "net001_errors_total{code=\"bad_magic\"}"), 0);
	free(t);
}

Test(metrics, healthz_503_while_draining, .fini = stop_if_running)
{
	const char *const args[] = { "--threads", "2", "--rate-limit", "0",
	                             "--global-rate-limit", "0", NULL };
	start(args);
	struct http_resp r;
	cr_assert_eq(http_get(S.metrics_port, "/healthz", &r), 200);
	cr_assert_str_eq(r.body, "ok");
	http_resp_free(&r);

	/* A client that never reads, with megabytes of echoes queued: the
	 * drain waits up to 5 s for it. */
	int slow = tc_connect_small(S.port, 4096);
	cr_assert_geq(slow, 0);
	uint8_t *p = calloc(1, 30000);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(tc_send_frame(slow, FRAME_ECHO, p, 30000), 0);
	free(p);
	int other = tc_connect(S.port);
	cr_assert(tc_ping(other, 1, 2000));
	sleep_ms(300);

	uint64_t t0 = mono_ms();
	cr_assert_eq(kill(S.pid, SIGTERM), 0);
	cr_assert(tc_expect_error(other, ERR_SHUTTING_DOWN, 3000), "SHUTTING_DOWN sent");
	cr_assert(tc_wait_closed(other, 3000));
	close(other);

	/* While draining: /healthz 503, /metrics still served. */
	int n503 = 0, n200_after = 0, metrics_ok = 0;
	while (mono_ms() - t0 < 3500) {
		int st = http_get(S.metrics_port, "/healthz", &r);
		if (st == 503) {
			n503++;
			cr_expect_str_eq(r.body, "shutting down");
		} else if (n503 && st == 200) {
			n200_after++;
		}
		http_resp_free(&r);
		if (http_get(S.metrics_port, "/metrics", &r) == 200 &&
		    strstr(r.body, "net001_errors_total{code=\"shutting_down\"}"))
			metrics_ok++;
		http_resp_free(&r);
		sleep_ms(100);
	}
	cr_expect_gt(n503, 10, "503 throughout the drain (%d)", n503);
	cr_expect_eq(n200_after, 0, "never 200 again once draining");
	cr_expect_gt(metrics_ok, 0, "metrics still served while draining");
	cr_expect(srv_log_contains(&S, "shutting down"));
	/* No new protocol clients while draining. */
	int late = tc_connect(S.port);
	if (late >= 0) {
		cr_expect(tc_wait_closed(late, 3000), "a late client is not served");
		close(late);
	}

	cr_assert_eq(srv_wait(&S, 12000), 0, "exit 0 after the grace period");
	uint64_t drained = mono_ms() - t0;
	cr_expect_geq(drained, 4000, "the non-reader held the drain (%" PRIu64 " ms)", drained);
	cr_expect_not(port_listening(S.metrics_port), "the metrics port closes at exit");
	close(slow);
}

/* ---- build info and configured limits --------------------------------------- */

/* Families beyond the ones every net001 exposes (exposition.h), for alert
 * rules: the build and the limits the server runs with. */
static const char *const config_gauges[] = {
	"net001_config_max_connections", "net001_config_rate_limit",
	"net001_config_global_rate_limit", "net001_config_max_output_bytes",
	"net001_config_max_payload_bytes", "net001_config_idle_timeout_seconds",
	"net001_config_threads", "net001_config_buffer_ring_size", "net001_config_tls",
	"net001_config_auth",
};

/* The version net001-server --version prints ("net001-server 0.1.0"). */
static void server_version(char *out, size_t cap)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "%s --version", srv_binary());
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	char line[128] = "";
	cr_assert_not_null(fgets(line, sizeof line, p));
	pclose(p);
	line[strcspn(line, "\n")] = 0;
	const char *sp = strrchr(line, ' ');
	cr_assert_not_null(sp, "version line %s", line);
	snprintf(out, cap, "%s", sp + 1);
}

Test(metrics, build_info_and_config_gauges_follow_the_flags, .fini = stop_clean)
{
	const char *const args[] = { "--threads", "3", "--max-connections", "123",
	                             "--rate-limit", "77", "--global-rate-limit", "9999",
	                             "--max-output", "200000", "--max-payload", "1000",
	                             "--idle-timeout", "42", NULL };
	start(args);
	char *t = scrape();
	char line[256], version[64];
	for (size_t i = 0; i < sizeof config_gauges / sizeof config_gauges[0]; i++) {
		snprintf(line, sizeof line, "# TYPE %s gauge\n", config_gauges[i]);
		cr_expect_eq(count_prefix(t, line), 1, "%s is one gauge", config_gauges[i]);
		snprintf(line, sizeof line, "# HELP %s ", config_gauges[i]);
		cr_expect_eq(count_prefix(t, line), 1, "%s has HELP", config_gauges[i]);
	}
	cr_expect_eq(ival(t, "net001_config_max_connections"), 123);
	cr_expect_eq(ival(t, "net001_config_rate_limit"), 77);
	cr_expect_eq(ival(t, "net001_config_global_rate_limit"), 9999);
	cr_expect_eq(ival(t, "net001_config_max_output_bytes"), 200000);
	cr_expect_eq(ival(t, "net001_config_max_payload_bytes"), 1000);
	cr_expect_eq(ival(t, "net001_config_idle_timeout_seconds"), 42);
	cr_expect_eq(ival(t, "net001_config_threads"), 3);
	cr_expect_eq(count_prefix(t, "net001_buffer_ring_free{"), 3, "three cores");
	cr_expect_eq(ival(t, "net001_config_buffer_ring_size"),
	             ival(t, "net001_buffer_ring_free{core=\"0\"}"),
	             "an idle core has its whole ring free");
	cr_expect_eq(ival(t, "net001_config_tls"), 0);
	cr_expect_eq(ival(t, "net001_config_auth"), 0);

	cr_expect_eq(count_prefix(t, "# TYPE net001_build_info gauge\n"), 1);
	cr_expect_eq(count_prefix(t, "net001_build_info{"), 1);
	server_version(version, sizeof version);
	snprintf(line, sizeof line, "net001_build_info{version=\"%s\",tls=\"", version);
	cr_expect_eq(count_prefix(t, line), 1, "build_info carries version %s", version);
	const char *b = strstr(t, "net001_build_info{");
	cr_assert_not_null(b);
	cr_expect(strstr(b, ",tls=\"yes\",") || strstr(b, ",tls=\"no\","), "tls label");
	cr_expect(strstr(b, ",allocator=\"mimalloc\"} 1\n") ||
	          strstr(b, ",allocator=\"libc\"} 1\n"), "allocator label");
	free(t);
	stop_clean();

	/* Defaults, and auth on. */
	struct auth_file af;
	const char *path = auth_file_write(&af, "config", AUTH_USERS("alice", AUTH_ALICE_HEX));
	cr_assert_not_null(path);
	const char *const auth_args[] = { "--threads", "1", "--auth-file", path, NULL };
	start(auth_args);
	t = scrape();
	cr_expect_eq(ival(t, "net001_config_auth"), 1);
	cr_expect_eq(ival(t, "net001_config_threads"), 1);
	cr_expect_eq(ival(t, "net001_config_rate_limit"), 1000, "default --rate-limit");
	cr_expect_eq(ival(t, "net001_config_global_rate_limit"), 50000);
	cr_expect_eq(ival(t, "net001_config_max_payload_bytes"), 65535);
	cr_expect_eq(ival(t, "net001_config_idle_timeout_seconds"), 60);
	cr_expect_eq(ival(t, "net001_config_max_output_bytes"), 8 << 20);
	free(t);
	auth_file_remove(&af);
}

/* ---- messages per second from the very first frame ---------------------------- */

Test(metrics, messages_per_second_sees_frames_sent_at_startup, .fini = stop_if_running)
{
	/* Start the server by hand and connect the instant its port opens,
	 * before it logs "listening on" (the exporter starts after the
	 * workers accept): 50 PINGs in that gap must show in the gauge. */
	uint16_t port = 0;
	unsigned seed = (unsigned)getpid() ^ (unsigned)mono_ms();
	for (int i = 0; i < 50 && !port; i++) {
		uint16_t p = (uint16_t)(11000 + rand_r(&seed) % 19000);
		if (!port_listening(p) && !port_listening((uint16_t)(p + 1000)))
			port = p;
	}
	cr_assert_neq(port, 0);
	snprintf(S.log_path, sizeof S.log_path, "/tmp/net001-test-%d-%u.log", (int)getpid(),
	         port);
	int logfd = open(S.log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(logfd, 0);
	char ps[8];
	snprintf(ps, sizeof ps, "%u", port);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(logfd, STDERR_FILENO);
		execl(srv_binary(), srv_binary(), "--host", "127.0.0.1", "--port", ps,
		      "--threads", "2", (char *)NULL);
		_exit(127);
	}
	close(logfd);
	S.pid = pid;
	S.port = port;
	S.metrics_port = (uint16_t)(port + 1000);

	/* Spin on connect until the port opens. */
	int fd = -1;
	uint64_t end = mono_ms() + 10000;
	while (fd < 0 && mono_ms() < end) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fd, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
			close(fd);
			fd = -1;
		}
	}
	cr_assert_geq(fd, 0, "the protocol port opened");
	uint8_t burst[50 * 20];
	size_t n = 0;
	for (int i = 0; i < 50; i++)
		n += frame_encode(burst + n, FRAME_PING, "early!!!", 8);
	cr_assert_eq(tc_send(fd, burst, n), 0);
	bool early = !srv_log_contains(&S, "listening on");
	for (int i = 0; i < 50; i++) {
		cr_assert_eq(tc_read_frame(fd, &F, 5000), 0);
		cr_assert_eq(F.type, FRAME_PONG);
	}
	end = mono_ms() + 10000;
	while (!srv_log_contains(&S, "listening on") && mono_ms() < end)
		sleep_ms(5);
	cr_assert(srv_log_contains(&S, "listening on"));
	fprintf(stderr, "messages_per_second_sees_frames_sent_at_startup: PINGs sent %s the "
	        "server said it listens\n", early ? "before" : "after");

	int64_t v[64];
	int k = mps_watch(v, 64, 2500);
	char seq[512] = "";
	int64_t best = 0;
	for (int i = 0; i < k; i++) {
		snprintf(seq + strlen(seq), sizeof seq - strlen(seq), " %" PRId64, v[i]);
		if (v[i] > best)
			best = v[i];
		if (i + 1 < k && v[i] > 0 && v[i + 1] > 0 && v[i] + v[i + 1] > best)
			best = v[i] + v[i + 1];
	}
	cr_expect_eq(best, 50, "the gauge showed the 50 early PINGs; scrapes saw%s", seq);
	char *t = scrape();
	cr_expect_eq(ival(t, "net001_frames_received_total{type=\"ping\"}"), 50);
	free(t);
	close(fd);
	cr_assert_eq(srv_stop(&S, 15000), 0);
}

/* ---- /healthz under a crowd of slow clients ------------------------------------- */

/* n clients on the metrics port that each send a request one byte every
 * 50 ms and never finish it, reconnecting at once when the server closes
 * them. */
struct crowd {
	uint16_t port;
	int n;
	atomic_bool stop;
	atomic_int connects;
	atomic_int closed;
	pthread_t thread;
};

static int crowd_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *crowd_main(void *arg)
{
	struct crowd *c = arg;
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: "
	                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	enum { MAXN = 256 };
	int fd[MAXN];
	size_t sent[MAXN];
	for (int i = 0; i < c->n; i++) {
		fd[i] = crowd_connect(c->port);
		sent[i] = 0;
		atomic_fetch_add(&c->connects, 1);
	}
	uint64_t next = mono_ms();
	while (!atomic_load(&c->stop)) {
		struct pollfd p[MAXN];
		for (int i = 0; i < c->n; i++)
			p[i] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
		poll(p, (nfds_t)c->n, 10);
		bool tick = mono_ms() >= next;
		if (tick)
			next = mono_ms() + 50;
		for (int i = 0; i < c->n; i++) {
			bool gone = fd[i] < 0;
			if (!gone && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				char buf[512];
				ssize_t r = recv(fd[i], buf, sizeof buf, MSG_DONTWAIT);
				gone = r == 0 || (r < 0 && errno != EAGAIN);
			}
			if (!gone && tick && sent[i] < sizeof req - 1) {
				ssize_t w = send(fd[i], req + sent[i], 1, MSG_NOSIGNAL | MSG_DONTWAIT);
				if (w == 1)
					sent[i]++;
				else if (w < 0 && errno != EAGAIN && errno != ENOTCONN)
					gone = true;
			}
			if (gone) {
				if (fd[i] >= 0)
					close(fd[i]);
				atomic_fetch_add(&c->closed, 1);
				fd[i] = crowd_connect(c->port);
				sent[i] = 0;
				atomic_fetch_add(&c->connects, 1);
			}
		}
	}
	for (int i = 0; i < c->n; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	return NULL;
}

/* GET path on a connection that waits pause_ms between connecting and
 * writing its request; the status, or -1. */
static int get_after_pause(uint16_t port, const char *path, int pause_ms,
                           struct http_resp *r)
{
	struct http_conn c;
	memset(r, 0, sizeof *r);
	if (http_conn_open(&c, port) < 0)
		return -1;
	sleep_ms(pause_ms);
	char req[128];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: probe\r\n\r\n", path);
	int st = -1;
	if (http_conn_send(&c, req, (size_t)n) == 0 && http_read_response(&c, r) == 0)
		st = r->status;
	http_conn_close(&c);
	return st;
}

Test(metrics, healthz_answers_while_slow_clients_crowd_the_port, .fini = stop_clean)
{
	/* 200 slow clients against a cap of 64 metrics clients: every probe
	 * of /healthz still gets 200, each within 1 s. */
	enum { CROWD = 200, PROBES = 40, BOUND_MS = 1000 };
	start(two_threads);
	struct crowd c = { .port = S.metrics_port, .n = CROWD };
	atomic_init(&c.stop, false);
	atomic_init(&c.connects, 0);
	atomic_init(&c.closed, 0);
	cr_assert_eq(pthread_create(&c.thread, NULL, crowd_main, &c), 0);
	sleep_ms(500);

	int ok = 0;
	uint64_t worst = 0;
	for (int i = 0; i < PROBES; i++) {
		struct http_resp r;
		uint64_t t0 = mono_ms();
		/* Every other probe is a slow one: it connects, is kept off
		 * the CPU for 10 ms (as a busy host does), then writes. */
		int st = i % 2 ? http_get(S.metrics_port, "/healthz", &r)
		               : get_after_pause(S.metrics_port, "/healthz", 10, &r);
		uint64_t ms = mono_ms() - t0;
		if (ms > worst)
			worst = ms;
		cr_expect_eq(st, 200, "probe %d: status %d after %" PRIu64 " ms", i, st, ms);
		cr_expect_leq(ms, BOUND_MS, "probe %d took %" PRIu64 " ms", i, ms);
		ok += st == 200 && ms <= BOUND_MS;
		if (st == 200)
			cr_expect_str_eq(r.body, "ok");
		http_resp_free(&r);
		sleep_ms(50);
	}
	atomic_store(&c.stop, true);
	pthread_join(c.thread, NULL);
	fprintf(stderr, "healthz under %d slow clients: %d/%d probes ok, slowest %" PRIu64
	        " ms; the crowd connected %d times, was closed %d times\n", CROWD, ok, PROBES,
	        worst, atomic_load(&c.connects), atomic_load(&c.closed));
	cr_expect_eq(ok, PROBES);
	/* The crowd did fill the table: the server had to close some of it. */
	cr_expect_gt(atomic_load(&c.closed), CROWD - 64, "the crowd was over the cap");
	/* And the server is fine afterwards. */
	struct http_resp r;
	cr_expect_eq(http_get(S.metrics_port, "/metrics", &r), 200);
	http_resp_free(&r);
}

/* ---- the --metrics-port flag ------------------------------------------------- */

Test(metrics, metrics_port_zero_is_off, .fini = stop_clean)
{
	const char *const args[] = { "--threads", "2", "--metrics-port", "0", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	int fd = tc_connect(S.port);
	cr_assert(tc_ping(fd, 1, 2000), "the server runs");
	close(fd);
	cr_expect_not(port_listening((uint16_t)(S.port + 1000)), "nothing on port + 1000");
	cr_expect(srv_log_contains(&S, "metrics off"));
}

/* Whether a TCP connect to addr:port is accepted (refused: false). */
static bool reachable(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, addr, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * --metrics-host: the protocol on every address (--host 0.0.0.0), the
 * exporter on loopback's 127.0.0.1 only: 127.0.0.2 reaches the protocol
 * port and is refused on the metrics port. A bad address exits 2.
 */
Test(metrics, metrics_host_apart_from_host, .fini = stop_clean)
{
	const char *const args[] = { "--threads", "2", "--host", "0.0.0.0", "--metrics-host",
	                             "127.0.0.1", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	cr_assert(reachable("127.0.0.2", S.port), "the protocol on every address");
	cr_assert_not(reachable("127.0.0.2", S.metrics_port), "the exporter not on 127.0.0.2");
	struct http_resp r;
	cr_assert_eq(http_get(S.metrics_port, "/healthz", &r), 200, "on 127.0.0.1");
	http_resp_free(&r);
	cr_assert(srv_log_contains(&S, "metrics on 127.0.0.1 port"));

	char err[512];
	const char *const bad[] = { "--metrics-host", "metrics.example", NULL };
	cr_assert_eq(srv_run_exit(bad, NULL, err, sizeof err, 5000), 2);
	cr_assert(strstr(err, "--metrics-host"), "%s", err);
}

/* Listen on a free loopback port so it is taken; also report a free port
 * p with p + 1000 == the taken one. */
static int take_port(uint16_t *taken, uint16_t *below)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		uint16_t port;
		int fd = port_bind_random(AF_INET, 4, &port);
		if (fd < 0)
			return -1;
		if (port >= PORT_RANDOM_MIN + 1000 && !port_listening((uint16_t)(port - 1000))) {
			*taken = port;
			*below = (uint16_t)(port - 1000);
			return fd;
		}
		close(fd);
	}
	return -1;
}

Test(metrics, metrics_port_taken_exits_1)
{
	uint16_t taken = 0, port = 0;
	int blocker = take_port(&taken, &port);
	cr_assert_geq(blocker, 0, "a port to occupy");
	char ps[8], ms[8], err[2048];
	snprintf(ps, sizeof ps, "%u", port);
	snprintf(ms, sizeof ms, "%u", taken);

	/* Explicitly. */
	const char *const explicit_args[] = { "--host", "127.0.0.1", "--port", ps,
	                                      "--metrics-port", ms, "--threads", "2", NULL };
	int st = srv_run_exit(explicit_args, NULL, err, sizeof err, 10000);
	cr_expect_eq(st, 1, "exit 1 (got %d): %s", st, err);
	cr_expect_not_null(strstr(err, "metrics"), "names the metrics port: %s", err);
	cr_expect_not_null(strstr(err, ms), "names the port number: %s", err);
	cr_expect_not_null(strstr(err, "Address already in use"), "says why: %s", err);
	cr_expect_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);

	/* By default (port + 1000). */
	const char *const default_args[] = { "--host", "127.0.0.1", "--port", ps,
	                                     "--threads", "1", NULL };
	st = srv_run_exit(default_args, NULL, err, sizeof err, 10000);
	cr_expect_eq(st, 1, "exit 1 (got %d): %s", st, err);
	cr_expect_not_null(strstr(err, "Address already in use"), "says why: %s", err);
	cr_expect_not(port_listening(port), "nothing left listening on the protocol port");
	close(blocker);
}
