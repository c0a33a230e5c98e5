/*
 * Hostile peers (one client must never exhaust memory, stall a core or
 * cut off another client): closing connections racing new ones for the
 * same descriptor slot, clients that never read their replies, and the
 * same under TLS.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "proto/frame.h"
#include "harness.h"
#include "proto/msg.h"
#include "timing.h"
#include "tls_client.h"

static struct srv S;

static void cleanup(void)
{
	srv_cleanup(&S);
}

TestSuite(hostile, .timeout = 120, .fini = cleanup);

/* ---- slot reuse ------------------------------------------------------- */

struct race {
	uint16_t port;
	uint64_t until_ms;
	_Atomic uint64_t honest, cut_off, garbage;
};

/* Connect, send garbage (BAD_MAGIC: the server answers and closes with
 * ERROR, FIN, linger), then leave at once; every other time with a reset
 * rather than a FIN, so the slot is freed on both paths. */
static void *garbage_client(void *arg)
{
	struct race *r = arg;
	for (unsigned i = 0; mono_ms() < r->until_ms; i++) {
		int fd = tc_connect(r->port);
		if (fd < 0)
			continue;
		if (i & 1) {
			struct linger lg = { 1, 0 };
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		tc_send(fd, "GARBAGE!GARBAGE!", 16);
		if (i % 3 == 0) {
			/* sometimes wait for the ERROR, so the server's close
			 * path runs with its output flushed */
			struct tc_frame *f = malloc(sizeof *f);
			if (f) {
				tc_read_frame(fd, f, 200);
				free(f);
			}
		}
		close(fd);
		atomic_fetch_add(&r->garbage, 1);
	}
	return NULL;
}

/* Connect, PING, expect the PONG: never an EOF or reset first. */
static void *honest_client(void *arg)
{
	struct race *r = arg;
	struct tc_frame *f = malloc(sizeof *f);
	for (uint64_t v = 1; f && mono_ms() < r->until_ms; v++) {
		int fd = tc_connect(r->port);
		if (fd < 0)
			continue;
		uint8_t ts[8];
		for (int i = 0; i < 8; i++)
			ts[i] = (uint8_t)(v >> (56 - 8 * i));
		bool ok = tc_send_frame(fd, FRAME_PING, ts, 8) == 0 &&
		          tc_read_frame(fd, f, 5000) == 0 && f->type == FRAME_PONG &&
		          f->len == 8 && memcmp(f->payload, ts, 8) == 0;
		if (ok)
			atomic_fetch_add(&r->honest, 1);
		else
			atomic_fetch_add(&r->cut_off, 1);
		close(fd);
	}
	free(f);
	return NULL;
}

static void slot_race(const char *threads)
{
	const char *args[] = { "--threads", threads, "--rate-limit", "0",
	                       "--global-rate-limit", "0", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	struct race r = { .port = S.port, .until_ms = mono_ms() + 10000 };
	pthread_t t[4];
	pthread_create(&t[0], NULL, garbage_client, &r);
	pthread_create(&t[1], NULL, garbage_client, &r);
	pthread_create(&t[2], NULL, honest_client, &r);
	pthread_create(&t[3], NULL, honest_client, &r);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	uint64_t honest = atomic_load(&r.honest), cut = atomic_load(&r.cut_off);
	fprintf(stderr, "slot race (--threads %s): %llu honest round trips, %llu cut off, "
	            "%llu garbage connections\n", threads, (unsigned long long)honest,
	            (unsigned long long)cut, (unsigned long long)atomic_load(&r.garbage));
	cr_expect_eq(cut, 0, "%llu of %llu honest clients were cut off by another "
	             "connection's close", (unsigned long long)cut,
	             (unsigned long long)(honest + cut));
	cr_expect_gt(honest, 1000, "the honest clients got through (%llu)",
	             (unsigned long long)honest);
	cr_expect_gt(atomic_load(&r.garbage), 1000);
	cr_expect_eq(srv_stop(&S, 10000), 0);
}

Test(hostile, closing_connections_never_cut_off_new_ones, .timeout = 60)
{
	slot_race("1");
}

/* ---- clients that never read their replies ------------------------------ */

/* One hostile request kind: how to make request i, and what answers it. */
enum kind { K_PING, K_ECHO, K_AUTH, K_BAD_CRC, K_UNSUPPORTED, K_RATE_LIMITED };

static const char *const kind_name[] = { "PING", "ECHO", "AUTH", "bad CRC",
                                         "unsupported type", "rate-limited PING" };

/* Request i of this kind into buf; returns its size. */
static size_t make_request(enum kind k, uint32_t i, uint8_t *buf)
{
	uint8_t seq[8] = { 0, 0, 0, 0, (uint8_t)(i >> 24), (uint8_t)(i >> 16),
	                   (uint8_t)(i >> 8), (uint8_t)i };
	uint8_t echo[200];
	size_t n;
	switch (k) {
	case K_ECHO:
		memset(echo, (int)(i & 0xFF), sizeof echo);
		memcpy(echo, seq, 8);
		return frame_encode(buf, FRAME_ECHO, echo, sizeof echo);
	case K_AUTH:
		return frame_encode(buf, FRAME_AUTH, "\x05" "alicewrong-token", 16);
	case K_BAD_CRC:
		n = frame_encode(buf, FRAME_PING, seq, 8);
		buf[n - 1] ^= 0x01;
		return n;
	case K_UNSUPPORTED:
		return frame_encode(buf, 0x42, seq, 8);
	case K_PING:
	case K_RATE_LIMITED:
		break;
	}
	return frame_encode(buf, FRAME_PING, seq, 8);
}

/* Whether f is a right answer to request i of kind k. */
static bool right_reply(enum kind k, uint32_t i, const struct tc_frame *f)
{
	uint8_t seq[8] = { 0, 0, 0, 0, (uint8_t)(i >> 24), (uint8_t)(i >> 16),
	                   (uint8_t)(i >> 8), (uint8_t)i };
	bool error = f->type == FRAME_ERROR && f->len >= 2;
	unsigned code = error ? (unsigned)(f->payload[0] << 8 | f->payload[1]) : 0;
	switch (k) {
	case K_PING:
		return f->type == FRAME_PONG && f->len == 8 && memcmp(f->payload, seq, 8) == 0;
	case K_ECHO:
		return f->type == FRAME_ECHO_REPLY && f->len == 200 &&
		       memcmp(f->payload, seq, 8) == 0 && f->payload[199] == (uint8_t)i;
	case K_AUTH:
		return f->type == FRAME_AUTH_REPLY && f->len == 17 && f->payload[0] == 0;
	case K_BAD_CRC:
		return code == ERR_BAD_CRC;
	case K_UNSUPPORTED:
		return code == ERR_UNSUPPORTED_TYPE;
	case K_RATE_LIMITED:
		return code == ERR_RATE_LIMITED ||
		       (f->type == FRAME_PONG && memcmp(f->payload, seq, 8) == 0);
	}
	return false;
}

/* Another client of the same core, plain or TLS, measuring round trips. */
struct pinger {
	uint16_t port;
	_Atomic bool stop;
	_Atomic bool ready;     /* connected (or failed to) */
	uint64_t max_ms, n;
	bool failed;
};

/* PING every 10 ms with ping(ctx, n) until told to stop or a PING fails;
 * note the slowest round trip. */
static void pinger_loop(struct pinger *p, bool (*ping)(void *ctx, uint64_t n), void *ctx)
{
	while (!p->failed && !atomic_load(&p->stop)) {
		uint64_t t0 = mono_ms();
		if (!ping(ctx, p->n)) {
			p->failed = true;
			break;
		}
		uint64_t dt = mono_ms() - t0;
		p->max_ms = dt > p->max_ms ? dt : p->max_ms;
		p->n++;
		sleep_ms(10);
	}
}

static bool plain_ping(void *ctx, uint64_t n)
{
	return tc_ping(*(int *)ctx, n + 1, 5000);
}

static void *pinger_run(void *arg)
{
	struct pinger *p = arg;
	int fd = tc_connect(p->port);
	p->failed = fd < 0;
	atomic_store(&p->ready, true);
	pinger_loop(p, plain_ping, &fd);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/*
 * Write requests of kind k (all of one size) as fast as the socket takes
 * them, never reading, until the server stops taking them (no room to
 * write for 1 s) or cap bytes were written. Returns the number of whole
 * requests written (a last one may be cut short: it stays unfinished);
 * *held tells whether the server held the writer back.
 */
static uint32_t flood(int fd, enum kind k, size_t cap, bool *held)
{
	static uint8_t buf[1 << 16];
	uint32_t i = 0;
	size_t total = 0, n = 0, off = 0, size = 0;
	uint64_t stuck_since = 0;

	*held = false;
	while (total < cap) {
		if (off == n) {
			n = off = 0;
			while (n + 300 < sizeof buf) {
				size = make_request(k, i++, buf + n);
				n += size;
			}
		}
		ssize_t w = send(fd, buf + off, n - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			total += (size_t)w;
			stuck_since = 0;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		if (!stuck_since) {
			stuck_since = mono_ms();
		} else if (mono_ms() - stuck_since >= 1000) {
			*held = true;
			break;
		}
		sleep_ms(2);
	}
	return (uint32_t)(total / size);
}

/*
 * A client that never reads floods the server with requests of one kind
 * (--threads 1, so the other client shares its core): the server must
 * stop reading from it rather than queue replies without bound, keep
 * answering the other client promptly, stay within a memory bound, and
 * still owe the flooder every reply, in order, once it reads.
 */
static void non_reader(enum kind k)
{
	/* --no-pin: the other client's latency is the server's, not the
	 * scheduler's (a pinned worker waits for its CPU while the other is
	 * idle when the test's own threads run there). */
	const char *args_open[] = { "--threads", "1", "--rate-limit", "0",
	                            "--global-rate-limit", "0", "--no-pin", NULL };
	const char *args_rl[] = { "--threads", "1", "--rate-limit", "200",
	                          "--global-rate-limit", "0", "--no-pin", NULL };
	cr_assert_eq(srv_start(&S, k == K_RATE_LIMITED ? args_rl : args_open), 0);

	struct pinger p = { .port = S.port };
	pthread_t pt;
	pthread_create(&pt, NULL, pinger_run, &p);
	sleep_ms(100);
	long rss0 = srv_rss_kb(&S);

	int fd = tc_connect_small(S.port, 4096);
	cr_assert_geq(fd, 0);
	bool held;
	uint32_t sent = flood(fd, k, (size_t)1 << 30, &held);
	long rss1 = srv_rss_kb(&S);
	sleep_ms(300);
	atomic_store(&p.stop, true);
	pthread_join(pt, NULL);

	fprintf(stderr, "non-reader, %s: %u requests written before the server held it "
	        "back; RSS %ld -> %ld KiB; other client: %llu PINGs, slowest %llu ms\n",
	        kind_name[k], sent, rss0, rss1, (unsigned long long)p.n,
	        (unsigned long long)p.max_ms);
	cr_expect(held, "%s: the server kept reading from a client that does not read "
	          "(%u requests written)", kind_name[k], sent);
	cr_expect_lt(rss1 - rss0, srv_rss_bound_kb(64 * 1024),
	             "%s: server RSS grew from %ld to %ld KiB", kind_name[k], rss0, rss1);
	cr_expect(!p.failed, "%s: the other client's PING failed", kind_name[k]);
	cr_expect_gt(p.n, 10);
	cr_expect_lt(p.max_ms, 200u * (unsigned)srv_slowdown(),
	             "%s: the other client waited %llu ms for a PONG",
	             kind_name[k], (unsigned long long)p.max_ms);

	/* Held back, not closed: every request is answered once it reads. */
	struct tc_frame *f = malloc(sizeof *f);
	uint32_t got = 0, wrong = 0;
	while (got < sent) {
		int r = tc_read_frame(fd, f, 5000);
		if (r != 0) {
			fprintf(stderr, "%s: reading reply %u: %s\n", kind_name[k], got,
			        strerror(-r));
			break;
		}
		if (!right_reply(k, got, f) && wrong++ < 3)
			fprintf(stderr, "reply %u: type %u len %u\n", got, f->type, f->len);
		got++;
	}
	free(f);
	cr_expect_eq(got, sent, "%s: %u of %u replies arrived", kind_name[k], got, sent);
	cr_expect_eq(wrong, 0, "%s: %u replies were wrong or out of order", kind_name[k],
	             wrong);
	close(fd);
	cr_expect_eq(srv_stop(&S, 10000), 0);
}

Test(hostile, non_reader_of_pongs_is_held_back) { non_reader(K_PING); }
Test(hostile, non_reader_of_echo_replies_is_held_back) { non_reader(K_ECHO); }
Test(hostile, non_reader_of_auth_replies_is_held_back) { non_reader(K_AUTH); }
Test(hostile, non_reader_of_bad_crc_errors_is_held_back) { non_reader(K_BAD_CRC); }
Test(hostile, non_reader_of_unsupported_type_errors_is_held_back) { non_reader(K_UNSUPPORTED); }
Test(hostile, non_reader_of_rate_limited_errors_is_held_back) { non_reader(K_RATE_LIMITED); }

/* ---- memory goes back after a burst ------------------------------------ */

struct burst {
	uint16_t port;
	uint32_t sent;
	bool held;
};

static void *burst_client(void *arg)
{
	struct burst *b = arg;
	int fd = tc_connect_small(b->port, 4096);
	if (fd < 0)
		return NULL;
	b->sent = flood(fd, K_ECHO, (size_t)256 << 20, &b->held);
	close(fd);
	return NULL;
}

Test(hostile, memory_returns_after_a_burst, .timeout = 90)
{
	if (getenv("NET001_SANITIZED"))
		cr_skip_test("a %s build keeps freed memory in the sanitizer's quarantine; "
		             "the release build runs this test", getenv("NET001_SANITIZED"));
	const char *args[] = { "--threads", "2", "--rate-limit", "0",
	                       "--global-rate-limit", "0", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	int probe = tc_connect(S.port);
	cr_assert(tc_ping(probe, 1, 2000));
	/* The receive buffer rings are fixed memory (buf_count x buf_size
	 * per core) that traffic touches once: cycle through them first
	 * (one buffer per receive), so the baseline holds them. */
	static uint8_t fill[16000];
	struct tc_frame *f = malloc(sizeof *f);
	for (int c = 0; c < 8; c++) {
		int fd = tc_connect(S.port);
		for (int i = 0; i < 1200; i++) {
			cr_assert_eq(tc_send_frame(fd, FRAME_ECHO, fill, sizeof fill), 0);
			cr_assert_eq(tc_read_frame(fd, f, 2000), 0);
		}
		close(fd);
	}
	free(f);
	sleep_ms(1500);
	long rss0 = srv_rss_kb(&S);
	long peak = rss0;
	for (int round = 0; round < 3; round++) {
		enum { N = 32 };
		struct burst b[N];
		pthread_t t[N];
		for (int i = 0; i < N; i++) {
			b[i] = (struct burst){ .port = S.port };
			pthread_create(&t[i], NULL, burst_client, &b[i]);
		}
		for (int i = 0; i < N; i++) {
			pthread_join(t[i], NULL);
			cr_expect(b[i].held, "burst client %d was held back", i);
		}
		long r = srv_rss_kb(&S);
		peak = r > peak ? r : peak;
	}
	/* Everyone left; give the cores a few ticks to hand memory back. */
	long after = 0;
	for (int i = 0; i < 50; i++) {
		sleep_ms(100);
		after = srv_rss_kb(&S);
		if (after - rss0 < 16 * 1024)
			break;
	}
	fprintf(stderr, "burst: RSS %ld KiB before, %ld at the peak, %ld after\n", rss0, peak,
	        after);
	cr_expect(tc_ping(probe, 2, 2000), "the server still answers");
	cr_expect_lt(after - rss0, 16 * 1024,
	             "RSS fell back near where it started: %ld -> peak %ld -> %ld KiB", rss0,
	             peak, after);
	close(probe);
	cr_expect_eq(srv_stop(&S, 10000), 0);
}

/* ---- the same under TLS ---------------------------------------------------- */

static char cert_path[64], key_path[64];

struct tls_ping {
	struct tlsc t;
	struct tc_frame *f;
};

static bool tls_ping(void *ctx, uint64_t n)
{
	struct tls_ping *c = ctx;
	uint8_t ts[8] = { 0, 0, 0, 0, 0, 0, (uint8_t)(n >> 8), (uint8_t)n };
	return tlsc_send_frame(&c->t, FRAME_PING, ts, 8) == 0 && tlsc_read_frame(&c->t, c->f) &&
	       c->f->type == FRAME_PONG && memcmp(c->f->payload, ts, 8) == 0;
}

static void *tls_pinger_run(void *arg)
{
	struct pinger *p = arg;
	struct tls_ping c = { .f = malloc(sizeof *c.f) };
	p->failed = tlsc_connect(&c.t, p->port, 5000) < 0 || !c.f;
	atomic_store(&p->ready, true);
	pinger_loop(p, tls_ping, &c);
	free(c.f);
	tlsc_close(&c.t);
	return NULL;
}

/*
 * A TLS client pipelines PINGs and never reads, on the core of another
 * TLS client: the other client's PONGs keep coming within 100 ms, the
 * server's memory stays bounded, and SIGTERM still ends the server
 * within its grace period although the first client never reads.
 */
Test(hostile, tls_non_reader_does_not_stall_its_core, .timeout = 90)
{
	cr_assert_eq(tlsc_make_cert("hostile", cert_path, key_path), 0);
	const char *args[] = { "--threads", "1", "--tls", "--cert", cert_path, "--key",
	                       key_path, "--rate-limit", "0", "--global-rate-limit", "0",
	                       "--no-pin", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	struct pinger p = { .port = S.port };
	pthread_t pt;
	pthread_create(&pt, NULL, tls_pinger_run, &p);
	while (!atomic_load(&p.ready))
		sleep_ms(5);
	long rss0 = srv_rss_kb(&S);

	struct tlsc h;
	cr_assert_eq(tlsc_connect(&h, S.port, 5000), 0);
	struct timeval tv = { 1, 0 }; /* a write that waits 1 s: held back */
	setsockopt(h.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	size_t n = 3200 * 20;
	uint8_t *batch = malloc(n);
	for (size_t i = 0; i < n / 20; i++)
		frame_encode(batch + 20 * i, FRAME_PING, "01234567", 8);
	uint64_t t0 = mono_ms(), written = 0;
	bool held = false;
	while (mono_ms() - t0 < 30000) {
		if (tlsc_send(&h, batch, n) < 0) {
			held = true;
			break;
		}
		written += n;
	}
	free(batch);
	sleep_ms(500);
	long rss1 = srv_rss_kb(&S);
	atomic_store(&p.stop, true);
	pthread_join(pt, NULL);
	fprintf(stderr, "TLS non-reader: %llu bytes of PINGs written before it was held back; "
	        "RSS %ld -> %ld KiB; other client: %llu PINGs, slowest %llu ms\n",
	        (unsigned long long)written, rss0, rss1, (unsigned long long)p.n,
	        (unsigned long long)p.max_ms);
	cr_expect(held, "the server kept reading from a TLS client that does not read");
	cr_expect_lt(rss1 - rss0, srv_rss_bound_kb(64 * 1024), "server RSS grew from %ld to %ld KiB",
	             rss0, rss1);
	cr_expect(!p.failed, "the other TLS client's PING failed");
	cr_expect_gt(p.n, 10);
	cr_expect_lt(p.max_ms, 100u * (unsigned)srv_slowdown(),
	             "the other TLS client waited %llu ms for a PONG",
	             (unsigned long long)p.max_ms);

	/* The non-reader is still there, not reading: SIGTERM gives it the
	 * grace period (SHUTTING_DOWN, 5 s linger), then the server exits. */
	uint64_t s0 = mono_ms();
	int st = srv_stop(&S, 15000);
	uint64_t took = mono_ms() - s0;
	cr_expect_eq(st, 0, "exit status %d", st);
	cr_expect_lt(took, 8000, "the server took %llu ms to exit after SIGTERM",
	             (unsigned long long)took);
	tlsc_close(&h);
	unlink(cert_path);
	unlink(key_path);
}

/* A TLS handshake that stalls (a client that connects and says nothing,
 * or stops half way) is dropped after 10 s, not after the idle timeout. */
Test(hostile, stalled_tls_handshake_is_dropped, .timeout = 60)
{
	cr_assert_eq(tlsc_make_cert("stall", cert_path, key_path), 0);
	const char *args[] = { "--threads", "1", "--tls", "--cert", cert_path, "--key",
	                       key_path, "--idle-timeout", "60", NULL };
	cr_assert_eq(srv_start(&S, args), 0);
	int silent = tc_connect(S.port);
	int half = tc_connect(S.port);
	/* the first bytes of a ClientHello record, then nothing */
	cr_assert_eq(tc_send(half, "\x16\x03\x01\x02\x00\x01", 6), 0);
	uint64_t t0 = mono_ms();
	cr_assert(tc_wait_closed(silent, 20000), "a silent TLS client is dropped");
	uint64_t t1 = mono_ms() - t0;
	cr_assert(tc_wait_closed(half, 5000), "a half handshake is dropped");
	fprintf(stderr, "stalled TLS handshake dropped after %llu ms\n", (unsigned long long)t1);
	cr_expect_geq(t1, 8000, "not before the deadline (%llu ms)", (unsigned long long)t1);
	cr_expect_leq(t1, 13000, "within the deadline (%llu ms)", (unsigned long long)t1);
	struct tlsc t;
	cr_assert_eq(tlsc_connect(&t, S.port, 5000), 0, "new handshakes still work");
	cr_assert_eq(tlsc_send_frame(&t, FRAME_PING, "12345678", 8), 0);
	struct tc_frame *f = malloc(sizeof *f);
	cr_assert(tlsc_read_frame(&t, f) && f->type == FRAME_PONG);
	free(f);
	tlsc_close(&t);
	close(silent);
	close(half);
	cr_expect_eq(srv_stop(&S, 10000), 0);
	unlink(cert_path);
	unlink(key_path);
}
