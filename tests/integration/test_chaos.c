/*
 * A crowd of misbehaving peers at once, plain (with the server stopped
 * for a second half way), TLS, and with an auth file that is rewritten and
 * reloaded (SIGHUP) every 20 ms: random bytes, frames with one byte
 * flipped, frames cut short, resets, clients that never read, publishers
 * that never wait, AUTH guessers, half-closes, slow readers, garbage to
 * the metrics port. Beside them three
 * well-behaved clients (an ECHO client, a publisher and a receiver of its
 * broadcasts) must see nothing of it: every ECHO answered exactly, every
 * one of their broadcasts delivered once and in order, no ERROR, no
 * close. Afterwards the server has let go of every hostile connection,
 * its memory stayed under a stated bound and it exits cleanly (a
 * sanitizer build also checks for leaks there).
 *
 * And a cluster of two servers on a real nats-server (builds with
 * libnats): the crowd on both, and on the broker too (garbage, near-valid
 * messages and valid ones from made-up nodes published on the cluster
 * subject), the second server stopped for a second half way. The canary
 * publisher is on the first server, with a receiver there (every
 * broadcast once, in order) and one on the second, where across servers
 * the promise is at most once: in order, none twice, and every one
 * missing counted by one of the servers' loss counters.
 *
 * The crowd is random; the seed is printed, and NET001_CHAOS_SEED runs
 * the same choices again (the timing differs).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth_file.h"
#include "exposition.h"
#include "harness.h"
#include "nats.h"
#include "net/cluster_wire.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "timing.h"
#include "tls_client.h"

#define NODES 2 /* servers in the cluster run; the others use S[0] */
static struct srv S[NODES];
static struct nats N;
static char cert_path[64], key_path[64];
static struct auth_file auth;

static void cleanup(void)
{
	for (int i = 0; i < NODES; i++)
		srv_cleanup(&S[i]);
	nats_cleanup(&N);
	auth_file_remove(&auth);
	if (cert_path[0]) {
		unlink(cert_path);
		unlink(key_path);
	}
}

TestSuite(chaos, .timeout = 180, .fini = cleanup);

#define CHAOS_MS 6000
#define ATTACKERS 6
#define MAX_OUTPUT "1m"
/* Marks the well-behaved publisher's payloads; attackers never send it. */
static const uint8_t CANARY[8] = { 'C', 'A', 'N', 'A', 'R', 'Y', 0, 1 };

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint32_t below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(xorshift(s) % n);
}

/* ---- one connection, plain or TLS ---------------------------------------- */

struct peer {
	bool tls;
	int fd;
	struct tlsc t;
	uint8_t *in;            /* peer_frame's buffer (the canaries only) */
	size_t in_off, in_len;
};

#define IN_CAP (256 * 1024)

static bool peer_open(struct peer *p, uint16_t port, bool tls, int timeout_ms)
{
	*p = (struct peer){ .tls = tls };
	if (tls) {
		if (tlsc_connect(&p->t, port, timeout_ms) < 0) {
			tlsc_close(&p->t);
			return false;
		}
		p->fd = p->t.fd;
		return true;
	}
	p->fd = tc_connect(port);
	if (p->fd < 0)
		return false;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return true;
}

/* Leave with a reset instead of a FIN (and, under TLS, no close_notify). */
static void peer_close(struct peer *p, bool reset)
{
	if (reset) {
		struct linger lg = { 1, 0 };
		setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		if (p->tls)
			SSL_set_quiet_shutdown(p->t.ssl, 1);
	}
	if (p->tls)
		tlsc_close(&p->t);
	else
		close(p->fd);
	free(p->in);
}

/*
 * The next whole frame within timeout_ms, read in big pieces (a canary
 * also gets every broadcast of the crowd: a read per frame would make it
 * the slowest party). 1 with *f filled, 0 at the timeout (a partial frame
 * stays buffered), -1 when the connection ended or sent a bad frame.
 */
static int peer_frame(struct peer *p, struct tc_frame *f, int timeout_ms)
{
	if (!p->in && !(p->in = malloc(IN_CAP)))
		return -1;
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		struct frame_view v;
		int d = frame_decode(NULL, p->in + p->in_off, p->in_len - p->in_off, &v);
		if (d > 0) {
			f->type = v.type;
			f->len = v.len;
			memcpy(f->payload, v.payload, v.len);
			p->in_off += (size_t)d;
			return 1;
		}
		if (d < 0)
			return -1;
		if (p->in_off) {
			memmove(p->in, p->in + p->in_off, p->in_len - p->in_off);
			p->in_len -= p->in_off;
			p->in_off = 0;
		}
		int64_t left = (int64_t)deadline - (int64_t)mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		if ((!p->tls || SSL_pending(p->t.ssl) == 0) && poll(&pfd, 1, (int)left) == 0)
			return 0;
		int r;
		if (p->tls) {
			r = SSL_read(p->t.ssl, p->in + p->in_len, (int)(IN_CAP - p->in_len));
			if (r <= 0 && SSL_get_error(p->t.ssl, r) == SSL_ERROR_WANT_READ)
				continue;
		} else {
			r = (int)recv(p->fd, p->in + p->in_len, IN_CAP - p->in_len, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
		}
		if (r <= 0)
			return -1;
		p->in_len += (size_t)r;
	}
}

/* Write everything, waiting at most ~timeout_ms for room; false if the
 * server held the writer back that long or the connection broke. */
static bool peer_send(struct peer *p, const void *b, size_t n, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (p->tls)
		return tlsc_send(&p->t, b, n) == 0;
	const uint8_t *q = b;
	while (n) {
		ssize_t w = send(p->fd, q, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		q += w;
		n -= (size_t)w;
	}
	return true;
}

/* Read and discard what comes within timeout_ms, up to cap bytes. */
static void peer_drain(struct peer *p, int timeout_ms, size_t cap)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	static _Thread_local uint8_t sink[16384];
	size_t got = 0;
	uint64_t until = mono_ms() + (uint64_t)timeout_ms;
	while (got < cap && mono_ms() < until) {
		int r = p->tls ? SSL_read(p->t.ssl, sink, sizeof sink)
		               : (int)recv(p->fd, sink, sizeof sink, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
}

/* ---- the crowd ------------------------------------------------------------------ */

enum attack {
	A_RANDOM_BYTES,   /* noise, sometimes behind a valid magic */
	A_FLIPPED_FRAMES, /* frames of any type byte, one byte in four flipped */
	A_CUT_SHORT,      /* a header promising more than ever comes */
	A_RESET,          /* connect, reset */
	A_NON_READER,     /* 16 KiB ECHOs, never reading the replies */
	A_PUBLISHER,      /* broadcasts as fast as TCP takes, never reading */
	A_AUTH_GUESSER,   /* AUTHs well and badly formed */
	A_HALF_CLOSE,     /* a PING, then shutdown(SHUT_WR) */
	A_METRICS_JUNK,   /* bytes to the metrics port */
	A_TLS_JUNK,       /* TLS port: a record header and noise, no handshake */
	A_SLOW_READER,    /* a small window, read a little now and then */
	A_NATS_JUNK,      /* cluster: garbage and foreign nodes' messages on the subject */
	A_COUNT
};

static const char *const attack_name[A_COUNT] = {
	"random bytes", "flipped frames", "cut short", "reset", "non-reader",
	"publisher", "auth guesser", "half close", "metrics junk", "tls junk", "slow reader",
	"nats junk",
};

struct crowd {
	uint16_t port[NODES], metrics_port[NODES];
	unsigned nodes;     /* servers to pick from: 1, or NODES in the cluster run */
	uint16_t nats_port; /* cluster: the broker */
	bool tls, auth;
	uint64_t seed;
	_Atomic bool stop;
	_Atomic uint64_t runs[A_COUNT];
	_Atomic uint64_t refused; /* connects that failed (the server never refuses) */
};

/* A payload of n random bytes that cannot pass for a canary's. */
static void noise(uint64_t *s, uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)xorshift(s);
	if (n && b[0] == CANARY[0])
		b[0] ^= 0x80;
}

/* A good AUTH frame (alice, AUTH_ALICE_TOKEN) at b; returns its size. */
static size_t good_auth(uint8_t *b)
{
	uint8_t payload[128];
	int n = msg_auth_build(payload, "alice", 5, AUTH_ALICE_TOKEN,
	                       strlen(AUTH_ALICE_TOKEN));
	return frame_encode(b, FRAME_AUTH, payload, (uint16_t)n);
}

/* Frames of random types and sizes into b; returns the bytes used. */
static size_t frames(uint64_t *s, uint8_t *b, size_t cap, bool flip)
{
	static const uint8_t types[] = { FRAME_PING, FRAME_ECHO, FRAME_BROADCAST,
	                                 FRAME_AUTH, FRAME_DATA, FRAME_PONG, 0x00, 0x42,
	                                 FRAME_ERROR };
	size_t n = 0;
	uint8_t payload[2048];
	while (n + FRAME_OVERHEAD + sizeof payload <= cap && below(s, 16) != 0) {
		uint8_t type = below(s, 8) ? types[below(s, sizeof types)] : (uint8_t)xorshift(s);
		uint16_t len = type == FRAME_PING && below(s, 2) ? 8 : (uint16_t)below(s, sizeof payload);
		noise(s, payload, len);
		size_t k = frame_encode(b + n, type, payload, len);
		if (flip && below(s, 4) == 0)
			b[n + below(s, (uint32_t)k)] ^= (uint8_t)(1u << below(s, 8));
		n += k;
	}
	return n;
}

/*
 * A connection to the broker publishing on the cluster subject: random
 * bytes (sometimes behind the header's magic), messages from a made-up
 * node with one bit flipped, and valid ones from it (never claiming to
 * be one of the servers: whoever may publish on the subject is trusted
 * with that, see README "Cluster"), which the servers deliver as
 * broadcasts from elsewhere.
 */
static void nats_junk(struct crowd *c, uint64_t *s)
{
	static _Thread_local uint8_t m[1 << 16];
	int fd = nats_raw(c->nats_port);
	if (fd < 0) {
		atomic_fetch_add(&c->refused, 1);
		return;
	}
	char id[CLUSTER_ID_MAX];
	uint8_t idlen = (uint8_t)snprintf(id, sizeof id, "intruder-%u", below(s, 1000));
	uint64_t incarnation = xorshift(s), seq = 0;
	for (uint32_t i = 0, n = 1 + below(s, 40); i < n; i++) {
		size_t len;
		uint32_t what = below(s, 3);
		if (what == 0) {
			len = below(s, 3000);
			noise(s, m, len);
			if (len >= 4 && below(s, 2))
				memcpy(m, CLUSTER_MAGIC, 4);
		} else {
			uint8_t payload[512];
			uint16_t pl = (uint16_t)below(s, sizeof payload);
			noise(s, payload, pl);
			/* a spoiled one does not use up its number: the servers
			 * would count the hole it leaves as a lost broadcast */
			cluster_put_header(m, CLUSTER_KIND_FRAME, id, idlen, incarnation, seq + 1);
			seq += what == 2;
			len = CLUSTER_HDR + frame_encode(m + CLUSTER_HDR, FRAME_BROADCAST, payload, pl);
			/* One bit flipped, not in the incarnation or the sequence
			 * number (bytes 8..23): nothing checks those but their
			 * order, and a publisher on the subject is trusted with them. */
			uint32_t at = below(s, (uint32_t)len - 16);
			if (what == 1)
				m[at < 8 ? at : at + 16] ^= (uint8_t)(1u << below(s, 8));
		}
		if (nats_raw_pub(fd, "net001.broadcast", m, len) != 0)
			break;
	}
	if (below(s, 2)) {
		struct linger lg = { 1, 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	close(fd);
	atomic_fetch_add(&c->runs[A_NATS_JUNK], 1);
}

/* One hostile connection of kind a. */
static void attack(struct crowd *c, uint64_t *s, enum attack a)
{
	static _Thread_local uint8_t buf[1 << 17];
	if (a == A_NATS_JUNK) {
		nats_junk(c, s);
		return;
	}
	struct peer p;
	bool reset = below(s, 2);
	bool tls = c->tls && a != A_RESET && a != A_TLS_JUNK && a != A_RANDOM_BYTES;
	unsigned node = c->nodes > 1 ? below(s, c->nodes) : 0;
	uint16_t port = a == A_METRICS_JUNK ? c->metrics_port[node] : c->port[node];
	if (a == A_METRICS_JUNK)
		tls = false;
	if (!peer_open(&p, port, tls, 5000)) {
		atomic_fetch_add(&c->refused, 1);
		return;
	}
	switch (a) {
	case A_RANDOM_BYTES: {
		size_t n = 1 + below(s, 4096);
		noise(s, buf, n);
		if (below(s, 2))
			frame_put_u32(buf, FRAME_MAGIC);
		peer_send(&p, buf, n, 500);
		if (below(s, 2))
			peer_drain(&p, 50, 1 << 16);
		break;
	}
	case A_FLIPPED_FRAMES: {
		size_t n = frames(s, buf, sizeof buf, true);
		/* in random pieces, so frames straddle reads */
		for (size_t off = 0; off < n;) {
			size_t k = 1 + below(s, 3000);
			k = k > n - off ? n - off : k;
			if (!peer_send(&p, buf + off, k, 500))
				break;
			off += k;
		}
		if (below(s, 2))
			peer_drain(&p, 30, 1 << 20);
		break;
	}
	case A_CUT_SHORT: {
		uint16_t len = (uint16_t)(1000 + below(s, 64535));
		frame_put_header(buf, below(s, 2) ? FRAME_ECHO : FRAME_BROADCAST, len);
		size_t have = below(s, len);
		noise(s, buf + FRAME_HEADER_SIZE, have);
		peer_send(&p, buf, FRAME_HEADER_SIZE + have, 500);
		sleep_ms((int)below(s, 20));
		break;
	}
	case A_RESET:
		reset = true;
		break;
	case A_NON_READER: {
		size_t n = 0;
		uint8_t *payload = buf + 100000;
		noise(s, payload, 16384);
		while (n + 16384 + FRAME_OVERHEAD <= 100000)
			n += frame_encode(buf + n, FRAME_ECHO, payload, 16384);
		for (int i = 0; i < 40 && peer_send(&p, buf, n, 200); i++)
			;
		break;
	}
	case A_PUBLISHER: {
		/* with --auth-file, a publisher that may publish */
		size_t n = c->auth ? good_auth(buf) : 0;
		uint8_t payload[64];
		while (n + sizeof payload + FRAME_OVERHEAD <= sizeof buf) {
			noise(s, payload, sizeof payload);
			n += frame_encode(buf + n, FRAME_BROADCAST, payload, sizeof payload);
		}
		for (int i = 0; i < 4 && peer_send(&p, buf, n, 200); i++)
			;
		break;
	}
	case A_AUTH_GUESSER: {
		size_t n = 0;
		for (int i = 0; i < 4; i++) {
			uint8_t payload[400];
			size_t ul = below(s, 70), tl = below(s, 260);
			size_t len = 2 + ul + tl <= sizeof payload ? 2 + ul + tl : sizeof payload;
			payload[0] = (uint8_t)ul;
			payload[1] = (uint8_t)tl;
			noise(s, payload + 2, len - 2);
			if (below(s, 3) == 0)
				len = below(s, (uint32_t)len);
			n += frame_encode(buf + n, FRAME_AUTH, payload, (uint16_t)len);
			if (c->auth && below(s, 4) == 0)
				n += good_auth(buf + n);
		}
		peer_send(&p, buf, n, 500);
		peer_drain(&p, 30, 1 << 16);
		break;
	}
	case A_HALF_CLOSE: {
		uint8_t ping[8];
		noise(s, ping, 8);
		size_t n = frame_encode(buf, FRAME_PING, ping, 8);
		peer_send(&p, buf, n, 500);
		if (!p.tls)
			shutdown(p.fd, SHUT_WR);
		peer_drain(&p, 100, 1 << 16);
		break;
	}
	case A_METRICS_JUNK: {
		static const char *const heads[] = {
			"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
			"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
			"GET /", "\x16\x03\x01\x00\x10", "POST /metrics HTTP/1.0\r\n\r\n",
		};
		size_t n;
		if (below(s, 2)) {
			const char *h = heads[below(s, 5)];
			n = strlen(h);
			memcpy(buf, h, n);
		} else {
			n = 1 + below(s, 9000);
			noise(s, buf, n);
		}
		peer_send(&p, buf, n, 500);
		if (below(s, 2))
			peer_drain(&p, 50, 1 << 20);
		break;
	}
	case A_TLS_JUNK: {
		/* a handshake record header, then noise of random length */
		size_t n = 5 + below(s, 2000);
		noise(s, buf, n);
		memcpy(buf, "\x16\x03\x01", 3);
		peer_send(&p, buf, n, 500);
		if (below(s, 2))
			peer_drain(&p, 50, 1 << 16);
		break;
	}
	case A_SLOW_READER: {
		if (!p.tls) {
			int small = 4096;
			setsockopt(p.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
		}
		for (int i = 0; i < 8; i++) {
			peer_drain(&p, 5, 512);
			sleep_ms(10);
		}
		break;
	}
	case A_NATS_JUNK: /* above */
	case A_COUNT:
		break;
	}
	peer_close(&p, reset);
	atomic_fetch_add(&c->runs[a], 1);
}

struct attacker {
	struct crowd *c;
	unsigned index;
};

static void *attacker_run(void *arg)
{
	struct attacker *at = arg;
	uint64_t s = at->c->seed * 0x9E3779B97F4A7C15ull + at->index + 1;
	while (!atomic_load(&at->c->stop)) {
		enum attack a = (enum attack)below(&s, A_COUNT);
		if (a == A_TLS_JUNK && !at->c->tls)
			a = A_RANDOM_BYTES;
		if (a == A_NATS_JUNK && !at->c->nats_port)
			a = A_FLIPPED_FRAMES;
		attack(at->c, &s, a);
	}
	return NULL;
}

/* ---- the well-behaved ---------------------------------------------------- */

/* A receiver of the canary publisher's broadcasts. */
struct receiver {
	struct canaries *k;
	uint16_t port;
	bool across;       /* on another server: at most once, losses counted */
	uint64_t received; /* the last sequence number in order */
	uint64_t first;    /* the first one that arrived */
	uint64_t missed;   /* across: numbers skipped after the first, and those
	                    * that never came */
	uint64_t others;   /* broadcasts that were not the canary's */
	char fail[160];
};

struct canaries {
	uint16_t echo_port, pub_port;
	bool tls, auth;
	_Atomic bool stop_echo, stop_pub;
	_Atomic int ready, receivers_done;
	/* echo client */
	uint64_t echoes, echo_max_ms;
	char echo_fail[160];
	/* publisher and receivers */
	_Atomic uint64_t published;
	char pub_fail[160];
	int nrx;
	struct receiver rx[NODES];
};

/* Read frames until one that is not another connection's broadcast. */
static bool next_own(struct peer *p, struct tc_frame *f, uint64_t *others)
{
	for (;;) {
		if (peer_frame(p, f, 10000) != 1)
			return false;
		if (f->type != FRAME_BROADCAST)
			return true;
		++*others;
	}
}

/* With --auth-file: AUTH as alice and expect success. */
static bool canary_auth(const struct canaries *k, struct peer *p, struct tc_frame *f)
{
	uint8_t frame[256];
	uint64_t others = 0;
	if (!k->auth)
		return true;
	size_t n = good_auth(frame);
	return peer_send(p, frame, n, 10000) && next_own(p, f, &others) &&
	       f->type == FRAME_AUTH_REPLY && f->len == MSG_AUTH_REPLY_LEN && f->payload[0] == 1;
}

static void *echo_run(void *arg)
{
	struct canaries *k = arg;
	struct tc_frame *f = malloc(sizeof *f);
	struct peer p;
	uint64_t s = 12345;
	uint64_t others = 0;
	if (!f || !peer_open(&p, k->echo_port, k->tls, 10000)) {
		snprintf(k->echo_fail, sizeof k->echo_fail, "could not connect");
		atomic_fetch_add(&k->ready, 1);
		free(f);
		return NULL;
	}
	if (!canary_auth(k, &p, f))
		snprintf(k->echo_fail, sizeof k->echo_fail, "AUTH refused");
	atomic_fetch_add(&k->ready, 1);
	static uint8_t payload[8000];
	while (!k->echo_fail[0] && !atomic_load(&k->stop_echo)) {
		uint16_t len = (uint16_t)(1 + below(&s, sizeof payload));
		noise(&s, payload, len);
		uint64_t t0 = mono_ms();
		uint8_t frame[sizeof payload + FRAME_OVERHEAD];
		size_t n = frame_encode(frame, FRAME_ECHO, payload, len);
		if (!peer_send(&p, frame, n, 10000) || !next_own(&p, f, &others)) {
			snprintf(k->echo_fail, sizeof k->echo_fail, "ECHO %" PRIu64 " got no reply",
			         k->echoes);
			break;
		}
		if (f->type != FRAME_ECHO_REPLY || f->len != len ||
		    memcmp(f->payload, payload, len) != 0) {
			snprintf(k->echo_fail, sizeof k->echo_fail,
			         "ECHO %" PRIu64 " answered by type 0x%02x, %u bytes", k->echoes,
			         f->type, f->len);
			break;
		}
		uint64_t dt = mono_ms() - t0;
		k->echo_max_ms = dt > k->echo_max_ms ? dt : k->echo_max_ms;
		k->echoes++;
		sleep_ms(2); /* under the default per-connection rate limit */
	}
	peer_close(&p, false);
	free(f);
	return NULL;
}

static void *pub_run(void *arg)
{
	struct canaries *k = arg;
	struct peer p;
	struct tc_frame *f = malloc(sizeof *f);
	if (!f || !peer_open(&p, k->pub_port, k->tls, 10000)) {
		snprintf(k->pub_fail, sizeof k->pub_fail, "could not connect");
		atomic_fetch_add(&k->ready, 1);
		free(f);
		return NULL;
	}
	bool authed = canary_auth(k, &p, f);
	free(f);
	if (!authed)
		snprintf(k->pub_fail, sizeof k->pub_fail, "AUTH refused");
	atomic_fetch_add(&k->ready, 1);
	/* Drain what others broadcast to it, or the server would rightly
	 * hold it back as a slow consumer. */
	struct timeval tv = { 0, 1000 };
	setsockopt(p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	uint8_t payload[200], frame[256], sink[16384];
	memcpy(payload, CANARY, sizeof CANARY);
	while (authed && !atomic_load(&k->stop_pub)) {
		uint64_t seq = atomic_load(&k->published) + 1;
		for (int i = 0; i < 8; i++)
			payload[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
		memset(payload + 16, (int)(seq & 0xff), sizeof payload - 16);
		size_t n = frame_encode(frame, FRAME_BROADCAST, payload, sizeof payload);
		if (!peer_send(&p, frame, n, 10000)) {
			snprintf(k->pub_fail, sizeof k->pub_fail, "broadcast %" PRIu64 " not taken",
			         seq);
			break;
		}
		atomic_store(&k->published, seq);
		for (int i = 0; i < 4; i++) {
			int r = p.tls ? SSL_read(p.t.ssl, sink, sizeof sink)
			              : (int)recv(p.fd, sink, sizeof sink, MSG_DONTWAIT);
			if (r <= 0)
				break;
		}
		sleep_ms(2);
	}
	/* stay until the receivers have everything */
	while (atomic_load(&k->receivers_done) < k->nrx)
		peer_drain(&p, 20, 1 << 20);
	peer_close(&p, false);
	return NULL;
}

static void *recv_run(void *arg)
{
	struct receiver *r = arg;
	struct canaries *k = r->k;
	struct tc_frame *f = malloc(sizeof *f);
	struct peer p;
	if (!f || !peer_open(&p, r->port, k->tls, 10000)) {
		snprintf(r->fail, sizeof r->fail, "could not connect");
		atomic_fetch_add(&k->ready, 1);
		atomic_fetch_add(&k->receivers_done, 1);
		free(f);
		return NULL;
	}
	/* A PING answered: the server has the connection, so it is a
	 * receiver before the publisher's first broadcast. */
	uint8_t ping[8] = { 0 }, frame[32];
	size_t pn = frame_encode(frame, FRAME_PING, ping, 8);
	uint64_t ignore = 0;
	if (!canary_auth(k, &p, f))
		snprintf(r->fail, sizeof r->fail, "AUTH refused");
	else if (!peer_send(&p, frame, pn, 10000) || !next_own(&p, f, &ignore) ||
	         f->type != FRAME_PONG)
		snprintf(r->fail, sizeof r->fail, "no PONG");
	atomic_fetch_add(&k->ready, 1);
	uint64_t quiet_since = mono_ms(), stopped_at = 0;
	while (!r->fail[0]) {
		int n = peer_frame(&p, f, 100);
		if (n == 0) {
			/* Between frames, see whether everything has come; across
			 * servers, the last ones may never come. */
			if (atomic_load(&k->stop_pub)) {
				uint64_t published = atomic_load(&k->published);
				stopped_at = stopped_at ? stopped_at : mono_ms();
				if (r->received == published)
					break;
				if (r->across && mono_ms() - stopped_at >= 3000) {
					r->missed += published - r->received;
					break;
				}
			}
			if (mono_ms() - quiet_since < 10000)
				continue;
		}
		quiet_since = mono_ms();
		if (n != 1) {
			snprintf(r->fail, sizeof r->fail,
			         "the connection ended or went quiet after %" PRIu64
			         " of the canary's broadcasts", r->received);
			break;
		}
		if (f->type != FRAME_BROADCAST) {
			snprintf(r->fail, sizeof r->fail, "a frame of type 0x%02x (%u bytes)",
			         f->type, f->len);
			break;
		}
		if (f->len < sizeof CANARY || memcmp(f->payload, CANARY, sizeof CANARY) != 0) {
			r->others++;
			continue;
		}
		uint64_t seq = 0;
		for (int i = 0; i < 8; i++)
			seq = seq << 8 | f->payload[8 + i];
		bool body = f->len == 200;
		for (unsigned i = 16; body && i < 200; i++)
			body = f->payload[i] == (uint8_t)(seq & 0xff);
		bool next = r->across ? seq > r->received : seq == r->received + 1;
		if (!next || !body) {
			snprintf(r->fail, sizeof r->fail,
			         "canary broadcast %" PRIu64 " after %" PRIu64 "%s", seq, r->received,
			         body ? "" : " (payload changed)");
			break;
		}
		if (r->first)
			r->missed += seq - r->received - 1;
		else
			r->first = seq; /* across: those before the first are not missed */
		r->received = seq;
	}
	atomic_fetch_add(&k->receivers_done, 1);
	peer_close(&p, false);
	free(f);
	return NULL;
}

/* ---- the test -------------------------------------------------------------------- */

static uint64_t active(uint16_t metrics_port)
{
	uint64_t v = UINT64_MAX;
	if (!scrape_u64(metrics_port, "net001_connections_active", &v))
		return UINT64_MAX;
	return v;
}

/* One series from a server's /metrics, 0 if absent. */
static uint64_t series(uint16_t metrics_port, const char *name)
{
	uint64_t v = 0;
	return scrape_u64(metrics_port, name, &v) ? v : 0;
}

/* What a server counted as lost on the way through the cluster, either
 * way: its own broadcasts it could not publish, and others' it missed
 * (sequence gaps) or could not hand to a worker. */
static uint64_t cluster_losses(uint16_t metrics_port)
{
	static const char *const lost[] = {
		"net001_cluster_sequence_gaps_total",
		"net001_cluster_dropped_total{reason=\"backlog_full\"}",
		"net001_cluster_dropped_total{reason=\"disconnected\"}",
		"net001_cluster_dropped_total{reason=\"inbound_full\"}",
		"net001_cluster_dropped_total{reason=\"slow_consumer\"}",
	};
	uint64_t sum = 0;
	for (size_t i = 0; i < sizeof lost / sizeof lost[0]; i++)
		sum += series(metrics_port, lost[i]);
	return sum;
}

enum mode { PLAIN, TLS, AUTH_RELOADS, CLUSTER };
static const char *const mode_name[] = { "plain, a 1 s SIGSTOP half way",
                                          "TLS, the certificate reloaded every 100 ms",
                                          "4 workers, auth file, SIGHUP every 20 ms",
                                          "a cluster of 2 on nats-server, one stopped 1 s" };

/* The auth file's next version: alice always, bob every other time, and
 * now and then a broken file (the server keeps the table it has). */
static void write_auth(unsigned i)
{
	if (i % 7 == 6)
		auth_file_write_text(&auth, "chaos", "not an auth line\n");
	else if (i & 1)
		auth_file_write(&auth, "chaos", AUTH_USERS("alice", AUTH_ALICE_HEX));
	else
		auth_file_write(&auth, "chaos",
		                AUTH_USERS("alice", AUTH_ALICE_HEX, "bob", AUTH_BOB_HEX));
}

/* Start server i of the cluster run on the broker, and wait until it is
 * connected to it. */
static void node_start(int i, const char *const *common, unsigned nc)
{
	char url[64], id[16];
	snprintf(url, sizeof url, "nats://127.0.0.1:%u", N.port);
	snprintf(id, sizeof id, "chaos%d", i);
	const char *args[24];
	memcpy(args, common, nc * sizeof *args);
	args[nc++] = "--cluster";
	args[nc++] = url;
	args[nc++] = "--node-id";
	args[nc++] = id;
	args[nc] = NULL;
	cr_assert_eq(srv_start(&S[i], args), 0, "server %d starts", i);
	uint64_t until = mono_ms() + 10000;
	while (series(S[i].metrics_port, "net001_cluster_up") != 1 && mono_ms() < until)
		sleep_ms(20);
	cr_assert_eq(series(S[i].metrics_port, "net001_cluster_up"), 1,
	             "server %d connected to nats-server", i);
}

static void chaos(enum mode m)
{
	bool tls = m == TLS;
	unsigned nodes = m == CLUSTER ? NODES : 1;
	/* With reloads, 4 workers: the reloader waits for each of them to
	 * let go of the old table. */
	const char *args[24] = { "--threads", m == AUTH_RELOADS ? "4" : "2",
	                         "--global-rate-limit", "0", "--max-output", MAX_OUTPUT };
	unsigned na = 6;
	if (tls) {
		cr_assert_eq(tlsc_make_cert("chaos", cert_path, key_path), 0);
		args[na++] = "--tls";
		args[na++] = "--cert";
		args[na++] = cert_path;
		args[na++] = "--key";
		args[na++] = key_path;
	}
	if (m == AUTH_RELOADS) {
		write_auth(0);
		args[na++] = "--auth-file";
		args[na++] = auth.path;
	}
	if (m == CLUSTER) {
		cr_assert_eq(nats_run(&N, 0, 0, 0), 0);
		for (unsigned i = 0; i < nodes; i++)
			node_start((int)i, args, na);
		sleep_ms(300); /* both subscribed (up comes first) */
	} else {
		cr_assert_eq(srv_start(&S[0], args), 0);
	}

	struct crowd c = { .nodes = nodes, .nats_port = N.port, .tls = tls,
	                   .auth = m == AUTH_RELOADS };
	for (unsigned i = 0; i < nodes; i++) {
		c.port[i] = S[i].port;
		c.metrics_port[i] = S[i].metrics_port;
	}
	const char *env_seed = getenv("NET001_CHAOS_SEED");
	c.seed = env_seed ? strtoull(env_seed, NULL, 0) : (uint64_t)getpid() ^ mono_ms();
	fprintf(stderr, "chaos (%s): seed %" PRIu64 " (NET001_CHAOS_SEED repeats it)\n",
	        mode_name[m], c.seed);

	/* Publisher and a receiver on the first server; in the cluster, a
	 * second receiver and the ECHO client on the other. */
	struct canaries k = { .echo_port = S[nodes - 1].port, .pub_port = S[0].port,
	                      .tls = tls, .auth = m == AUTH_RELOADS, .nrx = (int)nodes };
	for (unsigned i = 0; i < nodes; i++)
		k.rx[i] = (struct receiver){ .k = &k, .port = S[i].port, .across = i > 0 };
	pthread_t kt[2 + NODES];
	for (int i = 0; i < k.nrx; i++)
		pthread_create(&kt[2 + i], NULL, recv_run, &k.rx[i]);
	while (atomic_load(&k.ready) < k.nrx)
		sleep_ms(5);
	pthread_create(&kt[0], NULL, echo_run, &k);
	pthread_create(&kt[1], NULL, pub_run, &k);
	while (atomic_load(&k.ready) < k.nrx + 2)
		sleep_ms(5);
	sleep_ms(200);
	long rss0[NODES], peak[NODES];
	for (unsigned i = 0; i < nodes; i++)
		rss0[i] = peak[i] = srv_rss_kb(&S[i]);

	struct attacker at[ATTACKERS];
	pthread_t t[ATTACKERS];
	for (unsigned i = 0; i < ATTACKERS; i++) {
		at[i] = (struct attacker){ .c = &c, .index = i };
		pthread_create(&t[i], NULL, attacker_run, &at[i]);
	}
	uint64_t t0 = mono_ms(), until = t0 + CHAOS_MS, next_rss = 0;
	unsigned hups = 0;
	bool stalled = false;
	while (mono_ms() < until) {
		if (m == AUTH_RELOADS)
			write_auth(++hups);
		if (m == AUTH_RELOADS || m == TLS) {
			/* TLS: handshakes start from a context swapped under them */
			hups += m == TLS;
			kill(S[0].pid, SIGHUP);
		}
		/* Plain: the server stopped for a second half way, the crowd
		 * and the canaries carrying on against it; in the cluster, the
		 * one that receives across. */
		if ((m == PLAIN || m == CLUSTER) && !stalled && mono_ms() - t0 >= CHAOS_MS / 2) {
			struct srv *v = &S[nodes - 1];
			cr_assert_eq(srv_freeze(v, 2000), 0);
			sleep_ms(1000);
			kill(v->pid, SIGCONT);
			stalled = true;
		}
		sleep_ms(m == AUTH_RELOADS ? 20 : 100);
		if (mono_ms() >= next_rss) {
			for (unsigned i = 0; i < nodes; i++) {
				long r = srv_rss_kb(&S[i]);
				peak[i] = r > peak[i] ? r : peak[i];
			}
			next_rss = mono_ms() + 100;
		}
	}
	atomic_store(&c.stop, true);
	for (unsigned i = 0; i < ATTACKERS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&k.stop_echo, true);
	atomic_store(&k.stop_pub, true);
	pthread_join(kt[0], NULL);
	for (int i = 0; i < k.nrx; i++)
		pthread_join(kt[2 + i], NULL);
	pthread_join(kt[1], NULL);

	uint64_t total = 0;
	char mix[512];
	size_t ml = 0;
	for (unsigned a = 0; a < A_COUNT; a++) {
		uint64_t n = atomic_load(&c.runs[a]);
		total += n;
		ml += (size_t)snprintf(mix + ml, sizeof mix - ml, "%s%s %" PRIu64, a ? ", " : "",
		                       attack_name[a], n);
	}
	uint64_t published = atomic_load(&k.published);
	fprintf(stderr, "chaos (%s): %" PRIu64 " hostile connections (%s), %" PRIu64
	        " failed to connect; canaries: %" PRIu64 " ECHOs (slowest %" PRIu64
	        " ms), %" PRIu64 " broadcasts published\n",
	        mode_name[m], total, mix, atomic_load(&c.refused), k.echoes, k.echo_max_ms,
	        published);
	for (int i = 0; i < k.nrx; i++)
		fprintf(stderr, "chaos (%s): server %d: receiver at %" PRIu64 " (first %" PRIu64
		        ", %" PRIu64 " missed), %" PRIu64 " of others' broadcasts; RSS %ld KiB "
		        "before, %ld at the peak\n", mode_name[m], i, k.rx[i].received,
		        k.rx[i].first, k.rx[i].missed, k.rx[i].others, rss0[i], peak[i]);

	cr_expect_str_empty(k.echo_fail, "ECHO client: %s", k.echo_fail);
	cr_expect_str_empty(k.pub_fail, "publisher: %s", k.pub_fail);
	cr_expect_gt(k.echoes, 100, "the ECHO client got through (%" PRIu64 ")", k.echoes);
	cr_expect_gt(published, 100);
	for (int i = 0; i < k.nrx; i++) {
		struct receiver *r = &k.rx[i];
		cr_expect_str_empty(r->fail, "receiver on server %d: %s", i, r->fail);
		if (!r->across) {
			cr_expect_eq(r->received, published,
			             "every canary broadcast arrived once, in order");
			continue;
		}
		/* Across: in order and none twice (checked as they came), the
		 * path open from the start, and what is missing counted. */
		uint64_t counted = 0;
		for (unsigned n = 0; n < nodes; n++)
			counted += cluster_losses(S[n].metrics_port);
		fprintf(stderr, "chaos (%s): server %d missed %" PRIu64 " of the canary's %" PRIu64
		        " broadcasts; the servers counted %" PRIu64 " lost\n", mode_name[m], i,
		        r->missed, published, counted);
		cr_expect(r->first >= 1 && r->first <= 10,
		          "server %d delivered from the canary's first broadcasts on (%" PRIu64 ")",
		          i, r->first);
		cr_expect_leq(r->missed, counted,
		              "server %d: %" PRIu64 " canary broadcasts missing, %" PRIu64
		              " counted lost", i, r->missed, counted);
		cr_expect_lt(r->missed, published / 2, "most of them arrived");
	}
	cr_expect_gt(total, 300, "the crowd ran (%" PRIu64 " connections)", total);
	cr_expect_eq(atomic_load(&c.refused), 0, "no connect failed");
	/* Bound, in KiB: what a server holds however long the storm: per
	 * worker a broadcast log (8 MiB, the default) and a receive buffer
	 * ring (1,024 x 16 KiB in the default build) that traffic touches
	 * once; per connection (the attackers' and the canaries', one each at
	 * a time) --max-output unsent and a frame being reassembled, rounded
	 * up to 2 MiB; 16 MiB for the allocator and TLS; in the cluster the
	 * backlog for NATS (--cluster-backlog, 8 MiB) and as much again for
	 * what the NATS client holds. */
	long workers = m == AUTH_RELOADS ? 4 : 2;
	long bound = srv_rss_bound_kb((workers * (8 + 16) + (ATTACKERS + 4) * 2 + 16 +
	                               (m == CLUSTER ? 16 : 0)) * 1024);
	for (unsigned i = 0; i < nodes; i++)
		cr_expect_lt(peak[i] - rss0[i], bound,
		             "server %u's RSS grew from %ld to %ld KiB (bound +%ld)", i, rss0[i],
		             peak[i], bound);
	if (m == CLUSTER && atomic_load(&c.runs[A_NATS_JUNK]) >= 10)
		for (unsigned i = 0; i < nodes; i++)
			cr_expect_gt(series(S[i].metrics_port,
			                    "net001_cluster_dropped_total{reason=\"invalid\"}"), 0,
			             "server %u counted the garbage on the subject", i);

	/* Every hostile connection is let go. */
	for (unsigned i = 0; i < nodes; i++) {
		uint64_t left = UINT64_MAX;
		for (int j = 0; j < 100 && left != 0; j++) {
			left = active(S[i].metrics_port);
			if (left != 0)
				sleep_ms(100);
		}
		cr_expect_eq(left, 0, "server %u: %" PRIu64 " connections still open after the "
		             "crowd left", i, left);
	}
	if (m == TLS) {
		size_t reloads = srv_log_count(&S[0], "SIGHUP: reloaded the certificate");
		fprintf(stderr, "chaos (%s): %u SIGHUPs sent, %zu certificate reloads\n",
		        mode_name[m], hups, reloads);
		cr_expect_gt(reloads, 20, "the certificate was reloaded under the crowd (%zu "
		             "times)", reloads);
	}
	if (m == AUTH_RELOADS) {
		/* Signals sent while one is pending merge: count what ran. */
		size_t reloads = srv_log_count(&S[0], "SIGHUP: reloaded");
		size_t kept = srv_log_count(&S[0], "keeping the previous table");
		fprintf(stderr, "chaos (%s): %u SIGHUPs sent, %zu reloads, %zu broken files "
		        "kept the previous table\n", mode_name[m], hups, reloads, kept);
		cr_expect_gt(reloads, 20, "the table was reloaded under the crowd (%zu times)",
		             reloads);
		cr_expect_gt(kept, 2, "broken files were refused (%zu times)", kept);
	}
	for (unsigned i = 0; i < nodes; i++) {
		int st = srv_stop(&S[i], 15000);
		cr_expect_eq(st, 0, "server %u's exit status after the crowd: %d", i, st);
	}
}

Test(chaos, a_hostile_crowd_harms_nobody_plain) { chaos(PLAIN); }
Test(chaos, a_hostile_crowd_harms_nobody_tls) { chaos(TLS); }
Test(chaos, a_hostile_crowd_harms_nobody_through_auth_reloads) { chaos(AUTH_RELOADS); }
#ifdef NET001_TEST_CLUSTER
Test(chaos, a_hostile_crowd_harms_nobody_in_a_cluster) { chaos(CLUSTER); }
#endif
