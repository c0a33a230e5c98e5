/*
 * BROADCAST across cores: completeness, per-sender order, no echo to the
 * sender, slow readers dropped without hurting others, churn during a
 * storm.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/frame.h"
#include "harness.h"
#include "http_client.h"
#include "exposition.h"
#include "proto/msg.h"
#include "timing.h"

#define MAX_SENDERS 3

static struct srv S;

static void stop_clean(void)
{
	cr_assert_eq(srv_stop(&S, 15000), 0, "server exits 0 after SIGTERM");
}

/* Set by a test that wants every broadcast big (30 KB or so). */
static bool all_big;

/* Sender k's i-th broadcast: its size and its bytes. Only sender 0 ever
 * sends empty ones, so an empty broadcast is attributable. */
static size_t bsize(int k, int i)
{
	if (all_big)
		return 30000 + (size_t)(i % 1000);
	uint32_t h = (uint32_t)(k * 2654435761u) ^ (uint32_t)(i * 40503u);
	h ^= h >> 13;
	if (i == 7)
		return 65535;
	if (k == 0 && i % 97 == 3)
		return 0;
	if (i % 89 == 5)
		return 4 + h % 65532; /* now and then anything up to the maximum */
	return 4 + h % 700;
}

static void bfill(uint8_t *p, size_t n, int k, int i)
{
	if (n == 0)
		return;
	p[0] = (uint8_t)k;
	p[1] = (uint8_t)(i >> 16);
	p[2] = (uint8_t)(i >> 8);
	p[3] = (uint8_t)i;
	for (size_t j = 4; j < n; j++)
		p[j] = (uint8_t)(k * 31 + i * 7 + (int)j);
}

/* A receiving end: reassembles frames from a non-blocking socket. */
struct rx {
	int fd;
	int self;              /* sender index if this is a sender, else -1 */
	size_t have;
	uint8_t *buf;          /* FRAME_MAX_SIZE * 2 */
	int next[MAX_SENDERS]; /* next expected sequence per sender */
	int bad;               /* frames that failed verification */
	bool closed;
	uint16_t error;        /* ERROR code received, if any */
};

static void rx_check_frame(struct rx *r, const uint8_t *fr, int nsenders)
{
	uint8_t type = fr[5];
	uint16_t len = frame_get_u16(fr + 6);
	const uint8_t *p = fr + FRAME_HEADER_SIZE;

	if (type == FRAME_ERROR) {
		r->error = frame_get_u16(p);
		return;
	}
	if (type != FRAME_BROADCAST) {
		r->bad++;
		return;
	}
	int k, i;
	if (len == 0) {
		k = 0;
		i = r->next[0];
	} else {
		k = p[0];
		i = (p[1] << 16) | (p[2] << 8) | p[3];
	}
	if (k >= nsenders || k == r->self || i != r->next[k] || bsize(k, i) != len) {
		r->bad++;
		return;
	}
	static _Thread_local uint8_t want[65535];
	bfill(want, len, k, i);
	if (memcmp(want, p, len) != 0) {
		r->bad++;
		return;
	}
	r->next[k]++;
}

static void rx_read(struct rx *r, int nsenders)
{
	for (;;) {
		ssize_t n = recv(r->fd, r->buf + r->have, 2 * FRAME_MAX_SIZE - r->have, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			r->closed = true;
			return;
		}
		if (n < 0)
			return;
		r->have += (size_t)n;
		size_t off = 0;
		for (;;) {
			struct frame_view f;
			int c = frame_decode(NULL, r->buf + off, r->have - off, &f);
			if (c == FRAME_NEED_MORE)
				break;
			if (c < 0) {
				r->bad++;
				r->closed = true;
				return;
			}
			rx_check_frame(r, r->buf + off, nsenders);
			off += (size_t)c;
		}
		memmove(r->buf, r->buf + off, r->have - off);
		r->have -= off;
	}
}

struct sender {
	int fd;
	int k;
	int count;
	int pause_us;  /* between broadcasts: a pace live readers can follow */
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	uint8_t *p = malloc(65535);
	for (int i = 0; i < s->count; i++) {
		size_t n = bsize(s->k, i);
		bfill(p, n, s->k, i);
		if (tc_send_frame(s->fd, FRAME_BROADCAST, p, n) < 0)
			break;
		if (s->pause_us)
			usleep((useconds_t)s->pause_us);
	}
	free(p);
	return NULL;
}

/* Set by a test that wants receivers to read in bursts, lag_ms apart:
 * their output piles up in the server in many blocks meanwhile, and many
 * of them become writable in the same loop iteration. */
static int lag_ms;

/* Poll every receiver until all expected broadcasts arrived or time is up. */
static void pump(struct rx *rx, int n, int nsenders, int count, int timeout_ms)
{
	struct pollfd *pfd = calloc((size_t)n, sizeof *pfd);
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int done = 0;
		for (int i = 0; i < n; i++) {
			int want = 0, got = 0;
			for (int k = 0; k < nsenders; k++) {
				if (k == rx[i].self)
					continue;
				want += count;
				got += rx[i].next[k];
			}
			done += got == want || rx[i].closed;
			pfd[i].fd = rx[i].closed ? -1 : rx[i].fd;
			pfd[i].events = POLLIN;
		}
		if (done == n || mono_ms() > end)
			break;
		if (lag_ms)
			sleep_ms(lag_ms);
		if (poll(pfd, (nfds_t)n, 100) <= 0)
			continue;
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				rx_read(&rx[i], nsenders);
	}
	free(pfd);
}

static void fan_out_n(const char *threads, int nclients, int rcvbuf)
{
	const int nsenders = MAX_SENDERS, count = 1000;
	const char *const args[] = { "--threads", threads, "--rate-limit", "0",
	                             "--global-rate-limit", "0", "--max-connections", "1000",
	                             NULL };
	cr_assert_eq(srv_start(&S, args), 0);

	struct rx *rx = calloc((size_t)nclients, sizeof *rx);
	for (int i = 0; i < nclients; i++) {
		rx[i].fd = rcvbuf && i >= nsenders ? tc_connect_small(S.port, rcvbuf)
		                                   : tc_connect(S.port);
		cr_assert_geq(rx[i].fd, 0);
		rx[i].self = i < nsenders ? i : -1;
		rx[i].buf = malloc(2 * FRAME_MAX_SIZE);
	}
	/* Everyone is being served (and so eligible) before the storm. */
	for (int i = 0; i < nclients; i++)
		cr_assert(tc_ping(rx[i].fd, (uint64_t)i, 5000));

	struct sender snd[MAX_SENDERS];
	pthread_t t[MAX_SENDERS];
	for (int k = 0; k < nsenders; k++) {
		snd[k] = (struct sender){ .fd = rx[k].fd, .k = k, .count = count };
		pthread_create(&t[k], NULL, send_all, &snd[k]);
	}
	pump(rx, nclients, nsenders, count, 90000);
	for (int k = 0; k < nsenders; k++)
		pthread_join(t[k], NULL);

	for (int i = 0; i < nclients; i++) {
		cr_assert_eq(rx[i].bad, 0, "client %d: %d bad or out-of-order frames", i, rx[i].bad);
		cr_assert_not(rx[i].closed, "client %d stays open (error %u)", i, rx[i].error);
		for (int k = 0; k < nsenders; k++) {
			int want = k == rx[i].self ? 0 : count;
			cr_assert_eq(rx[i].next[k], want, "client %d got %d of %d from sender %d", i,
			             rx[i].next[k], want, k);
		}
		close(rx[i].fd);
		free(rx[i].buf);
	}
	free(rx);
}

static void fan_out(const char *threads)
{
	fan_out_n(threads, 200, 0);
}

TestSuite(broadcast, .timeout = 180, .fini = stop_clean);

/*
 * 400 receivers on one core with small socket buffers, read in bursts:
 * their output waits in the server in several blocks, so each send is a
 * sendmsg with many iovecs, and hundreds start in one loop iteration (far
 * more than a small submission queue holds: the CI's small build has 64
 * entries). Every byte on every connection is checked.
 */
Test(broadcast, queued_output_on_hundreds_of_receivers_one_thread)
{
	lag_ms = 20;
	fan_out_n("1", 400, 4096);
}

Test(broadcast, queued_output_on_hundreds_of_receivers_two_threads)
{
	lag_ms = 20;
	fan_out_n("2", 400, 4096);
}

Test(broadcast, three_senders_two_hundred_clients_two_threads)
{
	fan_out("2");
}

Test(broadcast, three_senders_two_hundred_clients_four_threads)
{
	fan_out("4");
}

Test(broadcast, stuck_reader_dropped_others_unharmed)
{
	const char *const args[] = { "--threads", "2", "--rate-limit", "0",
	                             "--global-rate-limit", "0", "--max-output", "1048576",
	                             "--debug", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	const int n = 20, count = 600;
	int stuck = tc_connect_small(S.port, 4096);
	cr_assert(tc_ping(stuck, 1, 2000));
	struct rx *rx = calloc(n, sizeof *rx);
	for (int i = 0; i < n; i++) {
		rx[i].fd = tc_connect(S.port);
		rx[i].self = i == 0 ? 0 : -1;
		rx[i].buf = malloc(2 * FRAME_MAX_SIZE);
		cr_assert(tc_ping(rx[i].fd, 1, 2000));
	}
	long rss0 = srv_rss_kb(&S);
	all_big = true;
	/* About 18 MB to every receiver over 3 s or so: the stuck one must be
	 * dropped at 1 MiB of backlog; the others keep up with that pace. */
	struct sender snd = { .fd = rx[0].fd, .k = 0, .count = count, .pause_us = 5000 };
	pthread_t t;
	pthread_create(&t, NULL, send_all, &snd);
	long rss_max = 0;
	uint64_t end = mono_ms() + 60000;
	struct rx st = { .fd = stuck, .self = -1, .buf = malloc(2 * FRAME_MAX_SIZE) };
	bool judged = false;
	while (mono_ms() < end) {
		pump(rx, n, 1, count, 200);
		/* Once the server has judged the stuck reader, it reads again
		 * (within the 5 s grace) to see what it was told. */
		judged = judged || srv_log_contains(&S, "slow consumer");
		if (judged && !st.closed) {
			struct pollfd p = { .fd = stuck, .events = POLLIN };
			while (!st.closed && poll(&p, 1, 0) > 0)
				rx_read(&st, 1);
		}
		long r = srv_rss_kb(&S);
		rss_max = r > rss_max ? r : rss_max;
		int done = 0;
		for (int i = 1; i < n; i++)
			done += rx[i].next[0] == count;
		if (done == n - 1)
			break;
	}
	pthread_join(t, NULL);
	for (int i = 1; i < n; i++) {
		cr_assert_eq(rx[i].bad, 0);
		cr_assert_eq(rx[i].next[0], count, "receiver %d got %d of %d", i, rx[i].next[0],
		             count);
	}
	/* The stuck reader: whatever it gets, then (TCP permitting) SLOW_CONSUMER,
	 * then the close. */
	cr_assert(judged, "logged as a slow consumer");
	end = mono_ms() + 15000;
	while (!st.closed && mono_ms() < end) {
		struct pollfd p = { .fd = stuck, .events = POLLIN };
		if (poll(&p, 1, 100) > 0)
			rx_read(&st, 1);
	}
	cr_assert(st.closed, "stuck reader closed");
	/* Its ERROR comes after what its socket already holds, which a 4 KiB
	 * window may not let through before the 5 s linger ends. */
	cr_assert(st.error == 0 || st.error == ERR_SLOW_CONSUMER, "stuck reader told %u",
	          st.error);
	uint64_t closes = 0;
	cr_assert(scrape_u64(S.metrics_port, "net001_slow_consumer_closes_total", &closes));
	cr_assert_eq(closes, 1, "one slow consumer (%llu)", (unsigned long long)closes);
	cr_assert_lt(rss_max - rss0, srv_rss_bound_kb(96 * 1024),
	             "RSS stayed bounded: %ld -> %ld KiB", rss0, rss_max);
	for (int i = 0; i < n; i++) {
		close(rx[i].fd);
		free(rx[i].buf);
	}
	close(stuck);
	free(st.buf);
	free(rx);
}

struct churn {
	uint16_t port;
	_Atomic int stop;
	int bad;
	_Atomic int cycles;
};

/* Connect, read a little, disconnect (sometimes with a reset), again. */
static void *churn_main(void *arg)
{
	struct churn *c = arg;
	struct rx r = { .self = -1, .buf = malloc(2 * FRAME_MAX_SIZE) };
	while (!atomic_load(&c->stop)) {
		r.fd = tc_connect(c->port);
		if (r.fd < 0)
			continue;
		r.have = 0;
		r.closed = false;
		/* Broadcasts that arrive must be whole, valid frames of sender 0
		 * in increasing order: nothing left over from a previous
		 * occupant of the server's slot. */
		r.next[0] = 0;
		uint64_t end = mono_ms() + 20;
		int last = -1;
		while (mono_ms() < end && !r.closed) {
			struct pollfd p = { .fd = r.fd, .events = POLLIN };
			if (poll(&p, 1, 5) <= 0)
				continue;
			ssize_t n = recv(r.fd, r.buf + r.have, 2 * FRAME_MAX_SIZE - r.have, MSG_DONTWAIT);
			if (n <= 0)
				break;
			r.have += (size_t)n;
			size_t off = 0;
			struct frame_view f;
			int k;
			while ((k = frame_decode(NULL, r.buf + off, r.have - off, &f)) > 0) {
				if (f.type != FRAME_BROADCAST) {
					c->bad++;
				} else if (f.len >= 4) {
					int i = (f.payload[1] << 16) | (f.payload[2] << 8) | f.payload[3];
					if (i <= last || bsize(0, i) != f.len)
						c->bad++;
					last = i;
				}
				off += (size_t)k;
			}
			if (k < 0)
				c->bad++;
			memmove(r.buf, r.buf + off, r.have - off);
			r.have -= off;
		}
		if (atomic_load(&c->cycles) % 3 == 0) {
			struct linger lg = { 1, 0 };
			setsockopt(r.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		close(r.fd);
		atomic_fetch_add(&c->cycles, 1);
	}
	free(r.buf);
	return NULL;
}

Test(broadcast, churn_during_storm)
{
	const char *const args[] = { "--threads", "2", "--rate-limit", "0",
	                             "--global-rate-limit", "0", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	int sender = tc_connect(S.port);
	struct churn c[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		c[i] = (struct churn){ .port = S.port };
		pthread_create(&t[i], NULL, churn_main, &c[i]);
	}
	/* The storm lasts until every churner has come and gone a few times
	 * (at least 3,000 broadcasts; on a busy host the churners may not
	 * even have started when that many are written), 20 s at most. */
	enum { MIN_COUNT = 3000, MIN_CYCLES = 6 };
	uint8_t *p = malloc(65535);
	uint64_t end = mono_ms() + 20000;
	int sent = 0;
	for (bool done = false; !done && mono_ms() < end; sent++) {
		size_t n = bsize(0, sent);
		bfill(p, n, 0, sent);
		cr_assert_geq(tc_send_frame(sender, FRAME_BROADCAST, p, n), 0, "broadcast %d", sent);
		done = sent >= MIN_COUNT;
		for (int i = 0; i < 4; i++)
			done = done && atomic_load(&c[i].cycles) >= MIN_CYCLES;
	}
	free(p);
	for (int i = 0; i < 4; i++) {
		atomic_store(&c[i].stop, 1);
		pthread_join(t[i], NULL);
		cr_assert_eq(c[i].bad, 0, "churner %d saw %d bad frames", i, c[i].bad);
		cr_assert_geq(atomic_load(&c[i].cycles), MIN_CYCLES,
		              "churner %d came and went %d times during %d broadcasts", i,
		              atomic_load(&c[i].cycles), sent);
	}
	cr_assert(tc_ping(sender, 1, 5000), "sender served, and got no broadcast of its own");
	close(sender);
}

Test(broadcast, three_senders_two_hundred_clients_one_thread)
{
	fan_out("1");
}


/* ---- a worker's log: the cursors' clock, and no receivers --------------------------- */

/* Reads `want` broadcasts of `size` bytes, the i-th filled with (uint8_t)i,
 * on its own thread; any other frame (a SLOW_CONSUMER ERROR, say) or a
 * silence of 10 s ends it. */
struct burst_rx {
	int fd;
	int want;
	uint16_t size;
	int got;
	uint8_t bad_type;       /* the frame that ended it early, if any */
	uint64_t last_ms;
};

static void *burst_read(void *arg)
{
	struct burst_rx *r = arg;
	static struct tc_frame f;
	while (r->got < r->want) {
		if (tc_read_frame(r->fd, &f, 10000) != 0)
			break;
		if (f.type != FRAME_BROADCAST || f.len != r->size ||
		    f.payload[0] != (uint8_t)r->got || f.payload[r->size - 1] != (uint8_t)r->got) {
			r->bad_type = f.type;
			break;
		}
		r->got++;
		r->last_ms = mono_ms();
	}
	return NULL;
}

/* Send count broadcasts of size bytes on fd, the i-th filled with
 * (uint8_t)(first + i). */
static void burst_send(int fd, int first, int count, uint16_t size)
{
	static uint8_t b[65535];
	for (int i = 0; i < count; i++) {
		memset(b, (uint8_t)(first + i), size);
		cr_assert_eq(tc_send_frame(fd, FRAME_BROADCAST, b, size), 0, "broadcast %d", i);
	}
}

/*
 * Two workers, a 256 KiB log each, the sender and its one receiver on core
 * 0 and nobody on core 1: core 1's log fills with frames nobody waits for.
 * 8 MiB of broadcasts reach the receiver at once; before, core 1 took one
 * log's worth per tick (a second), and held the sender back meanwhile:
 * 512 x 16 KiB took 21 s.
 */
Test(broadcast, a_worker_with_no_receivers_keeps_up)
{
	const char *const args[] = { "--threads", "2", "--rate-limit", "0", "--global-rate-limit",
	                             "0", "--broadcast-log", "256k", "--debug", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	int pub = tc_connect_on_core(&S, 0, 0);
	static struct burst_rx r = { .want = 512, .size = 16384 };
	r.fd = tc_connect_on_core(&S, 0, 0);
	cr_assert(pub >= 0 && r.fd >= 0, "both on core 0");
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, burst_read, &r), 0);
	uint64_t t0 = mono_ms();
	burst_send(pub, 0, r.want, r.size);
	pthread_join(t, NULL);
	cr_assert_eq(r.got, r.want, "every broadcast, in order (ended early on type %u)",
	             r.bad_type);
	uint64_t took = r.last_ms - t0;
	cr_assert_lt(took, 3000u * (unsigned)srv_slowdown(), "8 MiB in %llu ms",
	             (unsigned long long)took);
	close(pub);
	close(r.fd);
}

/*
 * A receiver that read everything and then had nothing to read for longer
 * than the stall limit (5 s) is not stalled when the next burst comes: the
 * limit counts from when the frame it waits for came. Before, a burst of
 * more than half a log after 5 s of quiet dropped it as a SLOW_CONSUMER at
 * once.
 */
Test(broadcast, a_receiver_idle_for_seconds_is_not_stalled_by_the_next_burst)
{
	const char *const args[] = { "--threads", "1", "--rate-limit", "0", "--global-rate-limit",
	                             "0", "--broadcast-log", "256k", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	int pub = tc_connect(S.port);
	static struct burst_rx r = { .want = 65, .size = 16384 };
	r.fd = tc_connect(S.port);
	cr_assert(tc_ping(pub, 1, 5000) && tc_ping(r.fd, 2, 5000));
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, burst_read, &r), 0);
	burst_send(pub, 0, 1, r.size);
	for (uint64_t end = mono_ms() + 5000; r.got < 1 && mono_ms() < end;)
		sleep_ms(10);
	cr_assert_eq(r.got, 1, "the first broadcast");
	sleep_ms(5500);
	/* 1 MiB: four logs' worth. */
	burst_send(pub, 1, r.want - 1, r.size);
	pthread_join(t, NULL);
	cr_assert_eq(r.bad_type, 0, "no ERROR (SLOW_CONSUMER), got a frame of type %u after %d",
	             r.bad_type, r.got);
	cr_assert_eq(r.got, r.want, "every broadcast, in order");
	close(pub);
	close(r.fd);
}
