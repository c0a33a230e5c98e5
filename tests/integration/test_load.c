/*
 * Robustness under load and abuse: many connections, garbage floods,
 * clients vanishing mid-frame, different thread counts.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/frame.h"
#include "exposition.h"
#include "harness.h"
#include "http_client.h"
#include "proto/msg.h"

static struct srv S;

static void stop_clean(void)
{
	cr_assert_eq(srv_stop(&S, 15000), 0, "server exits 0 after SIGTERM");
}

TestSuite(load, .timeout = 120, .fini = stop_clean);

static void many_connections(const char *threads, int n)
{
	const char *const args[] = { "--threads", threads, "--rate-limit", "0",
	                             "--global-rate-limit", "0", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	int *fds = malloc(sizeof(int) * (size_t)n);
	for (int i = 0; i < n; i++) {
		fds[i] = tc_connect(S.port);
		cr_assert_geq(fds[i], 0, "connection %d", i);
	}
	/* Every connection asks at once, then every one is answered. */
	for (int i = 0; i < n; i++) {
		uint8_t ts[8] = { 0, 0, 0, 0, (uint8_t)(i >> 24), (uint8_t)(i >> 16),
		                  (uint8_t)(i >> 8), (uint8_t)i };
		cr_assert_eq(tc_send_frame(fds[i], FRAME_PING, ts, 8), 0);
	}
	struct tc_frame *f = malloc(sizeof *f);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(tc_read_frame(fds[i], f, 10000), 0, "answer on %d", i);
		cr_assert_eq(f->type, FRAME_PONG);
		cr_assert_eq(frame_get_u32(f->payload + 4), (uint32_t)i);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(f);
	free(fds);
}

Test(load, two_thousand_concurrent_connections)
{
	many_connections("2", 2000);
}

Test(load, one_thread)
{
	many_connections("1", 300);
}

Test(load, four_threads)
{
	many_connections("4", 300);
}

struct flood {
	uint16_t port;
	int ok;
};

static void *pinger(void *arg)
{
	struct flood *fl = arg;
	int fd = tc_connect(fl->port);
	for (int i = 0; i < 300; i++) {
		if (!tc_ping(fd, (uint64_t)i, 3000))
			break;
		fl->ok++;
	}
	close(fd);
	return NULL;
}

Test(load, garbage_flood_does_not_disturb_others)
{
	cr_assert_eq(srv_start(&S, NULL), 0);
	struct flood fl = { .port = S.port };
	pthread_t t;
	pthread_create(&t, NULL, pinger, &fl);

	/* Several garbage connections, 1 MB each, some starting with a
	 * valid-looking header. */
	uint8_t *junk = malloc(1 << 20);
	for (size_t i = 0; i < 1 << 20; i++)
		junk[i] = (uint8_t)(rand() & 0xff);
	for (int k = 0; k < 4; k++) {
		int g = tc_connect(S.port);
		if (k & 1)
			memcpy(junk, "\xde\xad\xbe\xef\x01\x03\x00\x10", 8);
		else
			junk[0] = 0x00;
		tc_send(g, junk, 1 << 20); /* may fail once the server closes */
		cr_assert(tc_wait_closed(g, 5000), "garbage connection %d closed", k);
		close(g);
	}
	pthread_join(t, NULL);
	cr_assert_eq(fl.ok, 300, "all 300 PINGs answered during the flood");
	free(junk);
}

Test(load, clients_vanishing_mid_frame)
{
	cr_assert_eq(srv_start(&S, NULL), 0);
	uint8_t buf[200];
	size_t n = frame_encode(buf, FRAME_ECHO, buf + 100, 80);
	for (int i = 0; i < 200; i++) {
		int fd = tc_connect(S.port);
		tc_send(fd, buf, 1 + (size_t)i % (n - 1)); /* never the whole frame */
		if (i % 2) {
			/* reset instead of FIN */
			struct linger lg = { 1, 0 };
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		close(fd);
	}
	int fd = tc_connect(S.port);
	cr_assert(tc_ping(fd, 1, 2000), "server healthy");
	close(fd);
}

Test(load, rss_stays_flat_across_connection_churn)
{
	cr_assert_eq(srv_start(&S, NULL), 0);
	uint8_t *p = calloc(1, 65535);
	long before = 0;
	/* The first rounds bring the receive buffer rings and the pools to
	 * their working size; after that nothing may grow. */
	for (int round = 0; round < 30; round++) {
		for (int i = 0; i < 50; i++) {
			int fd = tc_connect(S.port);
			tc_send_frame(fd, FRAME_ECHO, p, 65535);
			tc_send(fd, "\xde\xad\xbe\xef\x01\x03\xff\xff", 8); /* partial */
			close(fd);
		}
		usleep(100 * 1000);
		if (round == 15)
			before = srv_rss_kb(&S);
	}
	long after = srv_rss_kb(&S);
	cr_assert_lt(after - before, 8 * 1024, "RSS grew from %ld to %ld KiB", before, after);
	cr_assert_gt(before, 0);
	free(p);
}

/*
 * Hundreds of connections that each pipeline PINGs in one write while the
 * server is stopped (SIGSTOP), then it resumes: everything arrives at
 * once on one core. In the CI's small build (a 64-entry SQ, a 128-entry
 * CQ) completions outrun both queues. Nothing is lost: every PING gets its
 * PONG, in order.
 */
Test(load, burst_after_a_stop_loses_nothing)
{
	const char *const args[] = { "--threads", "1", "--rate-limit", "0",
	                             "--global-rate-limit", "0", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	enum { N = 500, K = 40 };
	static int fd[N];
	static uint8_t batch[K * 20];
	for (int i = 0; i < N; i++) {
		fd[i] = tc_connect(S.port);
		cr_assert_geq(fd[i], 0);
	}
	struct tc_frame *f = malloc(sizeof *f);
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(srv_freeze(&S, 5000), 0);
		for (int i = 0; i < N; i++) {
			for (int k = 0; k < K; k++) {
				uint8_t ts[8] = { 0, 0, 0, (uint8_t)round, 0, (uint8_t)(i >> 8),
				                  (uint8_t)i, (uint8_t)k };
				frame_encode(batch + 20 * k, FRAME_PING, ts, 8);
			}
			cr_assert_eq(tc_send(fd[i], batch, sizeof batch), 0);
		}
		kill(S.pid, SIGCONT);
		for (int i = 0; i < N; i++) {
			for (int k = 0; k < K; k++) {
				cr_assert_eq(tc_read_frame(fd[i], f, 10000), 0, "connection %d, PONG %d", i,
				             k);
				uint8_t ts[8] = { 0, 0, 0, (uint8_t)round, 0, (uint8_t)(i >> 8),
				                  (uint8_t)i, (uint8_t)k };
				cr_assert(f->type == FRAME_PONG && f->len == 8 &&
				          memcmp(f->payload, ts, 8) == 0,
				          "connection %d: PONG %d right and in order", i, k);
			}
		}
	}
	free(f);
	uint64_t overflows = 0;
	cr_assert(scrape_u64(S.metrics_port, "net001_cq_overflows_total", &overflows));
	fprintf(stderr, "burst after a stop: CQ of %s entries overflowed in %llu loop turns\n",
	        getenv("NET001_CQ_ENTRIES") ? getenv("NET001_CQ_ENTRIES") : "?",
	        (unsigned long long)overflows);
	for (int i = 0; i < N; i++)
		close(fd[i]);
}
