/*
 * libnet001 against a scripted fake peer: a loopback listener whose thread
 * accepts one connection and plays a script byte by byte, so each test
 * decides exactly how frames are split, merged, corrupted or withheld.
 *
 * The peer thread never asserts (Criterion asserts only on the test's own
 * thread); it records what it saw in struct peer and the test checks that
 * after peer_join().
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/client/client.h"
#include "ports.h"
#include "timing.h"

struct peer;
typedef void script_fn(struct peer *p, int fd);

struct peer {
	int lfd;
	uint16_t port;
	pthread_t th;
	script_fn *script;
	/* What the script saw, for the test to check after peer_join(). */
	int frames_read;
	uint8_t last_type;
	uint8_t last_payload[FRAME_MAX_PAYLOAD];
	uint16_t last_len;
	uint8_t ping_payload[8]; /* the payload of the last PING read */
	int failed;              /* the client sent something unexpected */
};

/* A loopback socket on a free port (tests/support/ports.h); listening
 * unless listen_too is false, which makes a port where a connect is
 * refused. */
static int bind_random(int family, bool listen_too, uint16_t *port)
{
	int fd = port_bind_random(family, listen_too ? 8 : 0, port);
	cr_assert_geq(fd, 0, "no free port: %s", strerror(-fd));
	return fd;
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	int fd = accept(p->lfd, NULL, NULL);
	if (fd < 0) {
		p->failed = 1;
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	p->script(p, fd);
	close(fd);
	return NULL;
}

static struct peer *peer_start_family(int family, script_fn *script)
{
	struct peer *p = calloc(1, sizeof *p);
	cr_assert_not_null(p);
	p->script = script;
	p->lfd = bind_random(family, true, &p->port);
	cr_assert_eq(pthread_create(&p->th, NULL, peer_main, p), 0);
	return p;
}

static struct peer *peer_start(script_fn *script)
{
	return peer_start_family(AF_INET, script);
}

/* Wait for the script to end; its record stays readable until peer_free(). */
static void peer_join(struct peer *p)
{
	pthread_join(p->th, NULL);
	close(p->lfd);
	p->lfd = -1;
	cr_assert_eq(p->failed, 0, "the fake peer saw something unexpected");
}

static void peer_free(struct peer *p)
{
	free(p);
}

static struct n1c *connect_to(struct peer *p, int timeout_ms)
{
	struct n1c *c = NULL;
	int r = n1c_connect(&c, "127.0.0.1", p->port, timeout_ms);
	cr_assert_eq(r, 0, "connect: %s", n1c_strerror(r));
	cr_assert_not_null(c);
	return c;
}

/* ---- peer-side helpers (no asserts: they set p->failed) ------------------ */

static void write_all(struct peer *p, int fd, const void *b, size_t n)
{
	const uint8_t *q = b;
	while (n > 0) {
		ssize_t w = write(fd, q, n);
		if (w <= 0) {
			p->failed = 1;
			return;
		}
		q += w;
		n -= (size_t)w;
	}
}

/* Write n bytes in pieces of `chunk`, pausing between them. */
static void write_split(struct peer *p, int fd, const void *b, size_t n,
                        size_t chunk, int pause_ms)
{
	const uint8_t *q = b;
	for (size_t off = 0; off < n; off += chunk) {
		write_all(p, fd, q + off, n - off < chunk ? n - off : chunk);
		sleep_ms(pause_ms);
	}
}

/* Read one whole frame from the client into p->last_*; false on EOF. */
static bool read_frame(struct peer *p, int fd)
{
	static _Thread_local uint8_t buf[FRAME_MAX_SIZE];
	size_t have = 0;
	struct frame_decoder d = { 0 };
	struct frame_view f;
	for (;;) {
		int r = frame_decode(&d, buf, have, &f);
		if (r > 0)
			break;
		if (r < 0) {
			p->failed = 1;
			return false;
		}
		ssize_t n = read(fd, buf + have, f.need);
		if (n <= 0)
			return false;
		have += (size_t)n;
	}
	p->frames_read++;
	p->last_type = f.type;
	p->last_len = f.len;
	memcpy(p->last_payload, f.payload, f.len);
	if (f.type == FRAME_PING && f.len == 8)
		memcpy(p->ping_payload, f.payload, 8);
	return true;
}

static void expect_frame(struct peer *p, int fd, uint8_t type)
{
	if (!read_frame(p, fd) || p->last_type != type)
		p->failed = 1;
}

/* Encode a frame into out (room for FRAME_OVERHEAD + len); returns its size. */
static size_t mk(uint8_t *out, uint8_t type, const void *payload, size_t len)
{
	return frame_encode(out, type, payload, (uint16_t)len);
}

static size_t mk_pong(struct peer *p, uint8_t *out)
{
	return mk(out, FRAME_PONG, p->ping_payload, 8);
}

static size_t mk_error(uint8_t *out, uint16_t code, const char *text)
{
	uint8_t pl[2 + 64];
	size_t n = msg_error_build(pl, sizeof pl, code, text);
	return mk(out, FRAME_ERROR, pl, n);
}

/* Wait until the client closes its end, so the script does not end first. */
static void drain(struct peer *p, int fd)
{
	while (read_frame(p, fd))
		;
}

/* ---- frames split across reads ------------------------------------------- */

static void script_pong_byte_by_byte(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[32];
	size_t n = mk_pong(p, out);
	write_split(p, fd, out, n, 1, 2);
	drain(p, fd);
}

Test(client, pong_split_into_single_bytes)
{
	struct peer *p = peer_start(script_pong_byte_by_byte);
	struct n1c *c = connect_to(p, 5000);
	uint64_t rtt = 0;
	int r = n1c_ping(c, &rtt);
	cr_assert_eq(r, 0, "ping: %s", n1c_strerror(r));
	/* 20 bytes, 2 ms apart: the answer cannot come faster than that. */
	cr_assert_geq(rtt, 19 * 2000000ull, "rtt %llu ns", (unsigned long long)rtt);
	n1c_close(c);
	peer_join(p);
	cr_assert_eq(p->last_type, FRAME_PING);
	cr_assert_eq(p->last_len, 8);
	peer_free(p);
}

static void script_echo_big_chunks(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_ECHO);
	uint8_t *out = malloc(FRAME_MAX_SIZE);
	size_t n = mk(out, FRAME_ECHO_REPLY, p->last_payload, p->last_len);
	/* Odd-sized pieces, so frame boundaries never line up with reads. */
	write_split(p, fd, out, n, 4093, 1);
	free(out);
	drain(p, fd);
}

Test(client, max_payload_echo_in_pieces)
{
	struct peer *p = peer_start(script_echo_big_chunks);
	struct n1c *c = connect_to(p, 5000);
	uint8_t *msg = malloc(FRAME_MAX_PAYLOAD);
	for (size_t i = 0; i < FRAME_MAX_PAYLOAD; i++)
		msg[i] = (uint8_t)(i * 7 + 3);
	struct n1c_frame reply;
	int r = n1c_echo(c, msg, FRAME_MAX_PAYLOAD, &reply);
	cr_assert_eq(r, 0, "echo: %s", n1c_strerror(r));
	cr_assert_eq(reply.type, FRAME_ECHO_REPLY);
	cr_assert_eq(reply.len, FRAME_MAX_PAYLOAD);
	cr_assert_eq(memcmp(reply.payload, msg, FRAME_MAX_PAYLOAD), 0);
	n1c_close(c);
	peer_join(p);
	cr_assert_eq(p->last_len, FRAME_MAX_PAYLOAD);
	cr_assert_eq(memcmp(p->last_payload, msg, FRAME_MAX_PAYLOAD), 0);
	free(msg);
	peer_free(p);
}

Test(client, payload_above_max_is_too_big)
{
	struct peer *p = peer_start(drain);
	struct n1c *c = connect_to(p, 5000);
	uint8_t *msg = calloc(1, FRAME_MAX_PAYLOAD + 1);
	cr_assert_eq(n1c_echo(c, msg, FRAME_MAX_PAYLOAD + 1, NULL), N1C_ETOOBIG);
	cr_assert_eq(n1c_broadcast(c, msg, FRAME_MAX_PAYLOAD + 1), N1C_ETOOBIG);
	cr_assert_eq(n1c_data(c, msg, FRAME_MAX_PAYLOAD + 1), N1C_ETOOBIG);
	char user[MSG_AUTH_USER_MAX + 2];
	memset(user, 'u', sizeof user - 1);
	user[sizeof user - 1] = '\0';
	bool ok;
	cr_assert_eq(n1c_auth(c, user, "t", &ok, NULL), N1C_ETOOBIG);
	cr_assert_eq(n1c_auth(c, "", "t", &ok, NULL), N1C_EINVAL);
	free(msg);
	n1c_close(c);
	peer_join(p);
	cr_assert_eq(p->frames_read, 0, "nothing may reach the wire");
	peer_free(p);
}

/* ---- several frames in one read; broadcasts before the answer ------------ */

static void script_burst(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[256];
	size_t n = 0;
	n += mk(out + n, FRAME_BROADCAST, "a", 1);
	n += mk(out + n, FRAME_BROADCAST, "bb", 2);
	n += mk_pong(p, out + n);
	n += mk(out + n, FRAME_BROADCAST, "ccc", 3);
	n += mk(out + n, FRAME_BROADCAST, "", 0);
	write_all(p, fd, out, n);
	drain(p, fd);
}

static void expect_broadcast(struct n1c *c, const char *text)
{
	struct n1c_frame f;
	int r = n1c_recv(c, 1000, &f);
	cr_assert_eq(r, 0, "recv: %s", n1c_strerror(r));
	cr_assert_eq(f.type, FRAME_BROADCAST);
	cr_assert_eq(f.len, strlen(text));
	cr_assert_eq(memcmp(f.payload, text, f.len), 0);
}

Test(client, many_frames_in_one_write)
{
	struct peer *p = peer_start(script_burst);
	struct n1c *c = connect_to(p, 5000);
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, 0, "ping: %s", n1c_strerror(r));
	/* Two queued while the ping waited, two still in the read buffer. */
	expect_broadcast(c, "a");
	expect_broadcast(c, "bb");
	expect_broadcast(c, "ccc");
	expect_broadcast(c, "");
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(c, 50, &f), N1C_ETIMEOUT);
	cr_assert_eq(n1c_dropped(c), 0);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_broadcast_then_pong(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[64];
	size_t n = mk(out, FRAME_BROADCAST, "early", 5);
	write_all(p, fd, out, n);
	sleep_ms(30);
	n = mk_pong(p, out);
	write_all(p, fd, out, n);
	drain(p, fd);
}

Test(client, broadcast_before_pong_is_queued)
{
	struct peer *p = peer_start(script_broadcast_then_pong);
	struct n1c *c = connect_to(p, 5000);
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, 0, "ping: %s", n1c_strerror(r));
	expect_broadcast(c, "early");
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(c, 0, &f), N1C_ETIMEOUT);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_flood_then_pong(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[32];
	for (int i = 0; i < N1C_QUEUE_MAX + 6; i++) {
		char txt[8];
		int len = snprintf(txt, sizeof txt, "%d", i);
		write_all(p, fd, out, mk(out, FRAME_BROADCAST, txt, (size_t)len));
	}
	write_all(p, fd, out, mk_pong(p, out));
	drain(p, fd);
}

Test(client, full_queue_drops_oldest)
{
	struct peer *p = peer_start(script_flood_then_pong);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_ping(c, NULL), 0);
	cr_assert_eq(n1c_dropped(c), 6);
	for (int i = 6; i < N1C_QUEUE_MAX + 6; i++) {
		char txt[8];
		snprintf(txt, sizeof txt, "%d", i);
		expect_broadcast(c, txt);
	}
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(c, 0, &f), N1C_ETIMEOUT);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_half_then_rest(struct peer *p, int fd)
{
	uint8_t out[64];
	size_t n = mk(out, FRAME_BROADCAST, "split payload", 13);
	write_all(p, fd, out, 10);
	sleep_ms(200);
	write_all(p, fd, out + 10, n - 10);
	drain(p, fd);
}

Test(client, recv_keeps_partial_frame_across_timeout)
{
	struct peer *p = peer_start(script_half_then_rest);
	struct n1c *c = connect_to(p, 5000);
	struct n1c_frame f;
	int64_t t0 = mono_ms();
	cr_assert_eq(n1c_recv(c, 50, &f), N1C_ETIMEOUT);
	cr_assert_geq(mono_ms() - t0, 50);
	expect_broadcast(c, "split payload");
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

/* ---- ERROR frames --------------------------------------------------------- */

static void script_rate_limited(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[96];
	write_all(p, fd, out, mk_error(out, ERR_RATE_LIMITED, "rate limited"));
	/* The connection goes on: answer the next ping. */
	expect_frame(p, fd, FRAME_PING);
	write_all(p, fd, out, mk_pong(p, out));
	drain(p, fd);
}

Test(client, server_error_fails_request_with_code_and_text)
{
	struct peer *p = peer_start(script_rate_limited);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_server_error(c, NULL), 0);
	cr_assert_eq(n1c_ping(c, NULL), N1C_ESERVER);
	const char *text = NULL;
	cr_assert_eq(n1c_server_error(c, &text), ERR_RATE_LIMITED);
	cr_assert_str_eq(text, "rate limited");
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, 0, "second ping: %s", n1c_strerror(r));
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_shutting_down(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_ECHO);
	uint8_t out[96];
	write_all(p, fd, out, mk_error(out, ERR_SHUTTING_DOWN, "shutting down"));
}

Test(client, closing_error_then_closed)
{
	struct peer *p = peer_start(script_shutting_down);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_echo(c, "x", 1, NULL), N1C_ESERVER);
	cr_assert_eq(n1c_server_error(c, NULL), ERR_SHUTTING_DOWN);
	peer_join(p);
	/* The peer has closed: the next request learns it, whatever the phase. */
	int r = n1c_echo(c, "y", 1, NULL);
	cr_assert_eq(r, N1C_ECLOSED, "got %s", n1c_strerror(r));
	n1c_close(c);
	peer_free(p);
}

static void script_error_for_data(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_DATA);
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[96];
	size_t n = mk_error(out, ERR_AUTH_REQUIRED, "auth required");
	n += mk_pong(p, out + n);
	write_all(p, fd, out, n);
	drain(p, fd);
}

Test(client, error_for_earlier_data_is_queued_not_the_pings)
{
	struct peer *p = peer_start(script_error_for_data);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_data(c, "payload", 7), 0);
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, 0, "ping: %s", n1c_strerror(r));
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(c, 1000, &f), 0);
	cr_assert_eq(f.type, FRAME_ERROR);
	cr_assert_eq(f.len, 2 + strlen("auth required"));
	const char *text;
	cr_assert_eq(n1c_server_error(c, &text), ERR_AUTH_REQUIRED);
	cr_assert_str_eq(text, "auth required");
	n1c_close(c);
	peer_join(p);
	cr_assert_eq(p->frames_read, 2);
	peer_free(p);
}

static void script_error_for_broadcast(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_BROADCAST);
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[96];
	write_all(p, fd, out, mk_error(out, ERR_AUTH_REQUIRED, "auth required"));
	sleep_ms(20);
	write_all(p, fd, out, mk_pong(p, out));
	expect_frame(p, fd, FRAME_PING);
	write_all(p, fd, out, mk_pong(p, out));
	drain(p, fd);
}

Test(client, sync_reports_error_for_earlier_broadcast)
{
	struct peer *p = peer_start(script_error_for_broadcast);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_broadcast(c, "hello", 5), 0);
	cr_assert_eq(n1c_sync(c), N1C_ESERVER);
	cr_assert_eq(n1c_server_error(c, NULL), ERR_AUTH_REQUIRED);
	struct n1c_frame f;
	/* The sync returned at the ERROR; its PONG, 20 ms later, is dropped
	 * as late rather than handed to n1c_recv(). */
	cr_assert_eq(n1c_recv(c, 100, &f), N1C_ETIMEOUT, "the reported error is not queued too");
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, 0, "ping after sync: %s", n1c_strerror(r));
	n1c_close(c);
	peer_join(p);
	cr_assert_eq(p->frames_read, 3);
	peer_free(p);
}

static void script_sync_clean(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_BROADCAST);
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[32];
	write_all(p, fd, out, mk_pong(p, out));
	drain(p, fd);
}

Test(client, sync_without_error)
{
	struct peer *p = peer_start(script_sync_clean);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_broadcast(c, "hello", 5), 0);
	cr_assert_eq(n1c_sync(c), 0);
	n1c_close(c);
	peer_join(p);
	cr_assert_eq(memcmp(p->last_payload, p->ping_payload, 8), 0);
	peer_free(p);
}

/* ---- corrupt input -------------------------------------------------------- */

static void script_bad_crc_then_good(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[32];
	size_t n = mk_pong(p, out);
	out[n - 1] ^= 0x01;
	write_all(p, fd, out, n);
	expect_frame(p, fd, FRAME_PING);
	write_all(p, fd, out, mk_pong(p, out));
	drain(p, fd);
}

Test(client, bad_crc_is_protocol_error_and_skipped)
{
	struct peer *p = peer_start(script_bad_crc_then_good);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_ping(c, NULL), N1C_EPROTO);
	/* The length was sound, so the stream is still in step. */
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, 0, "ping after bad CRC: %s", n1c_strerror(r));
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_bad_magic(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[32];
	size_t n = mk_pong(p, out);
	out[0] = 0xDF;
	write_all(p, fd, out, n);
	drain(p, fd);
}

Test(client, bad_magic_is_protocol_error_and_closes)
{
	struct peer *p = peer_start(script_bad_magic);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_ping(c, NULL), N1C_EPROTO);
	cr_assert_eq(n1c_fd(c), -1, "framing is lost: the socket is closed");
	cr_assert_eq(n1c_ping(c, NULL), N1C_ECLOSED);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_wrong_echo(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_ECHO);
	uint8_t out[32];
	write_all(p, fd, out, mk(out, FRAME_ECHO_REPLY, "other", 5));
	drain(p, fd);
}

Test(client, echo_reply_must_be_identical)
{
	struct peer *p = peer_start(script_wrong_echo);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_echo(c, "hello", 5, NULL), N1C_EPROTO);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_wrong_pong(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[32];
	uint8_t ts[8] = { 0 };
	write_all(p, fd, out, mk(out, FRAME_PONG, ts, 8));
	drain(p, fd);
}

Test(client, pong_must_carry_the_timestamp)
{
	struct peer *p = peer_start(script_wrong_pong);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_ping(c, NULL), N1C_EPROTO);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_bad_error_payload(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t out[32];
	write_all(p, fd, out, mk(out, FRAME_ERROR, "\x01", 1));
	drain(p, fd);
}

Test(client, short_error_payload_is_protocol_error)
{
	struct peer *p = peer_start(script_bad_error_payload);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_ping(c, NULL), N1C_EPROTO);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

/* ---- AUTH ----------------------------------------------------------------- */

static const uint8_t session_id[MSG_SESSION_ID_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
};

static void script_auth(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_AUTH);
	struct msg_auth a;
	if (msg_auth_parse(p->last_payload, p->last_len, &a) < 0 ||
	    a.user_len != 5 || memcmp(a.user, "alice", 5) != 0 ||
	    a.token_len != 6 || memcmp(a.token, "s3cret", 6) != 0)
		p->failed = 1;
	uint8_t pl[MSG_AUTH_REPLY_LEN], out[64];
	size_t n = msg_auth_reply(pl, true, session_id);
	write_all(p, fd, out, mk(out, FRAME_AUTH_REPLY, pl, n));

	expect_frame(p, fd, FRAME_AUTH);
	n = msg_auth_reply(pl, false, NULL);
	write_all(p, fd, out, mk(out, FRAME_AUTH_REPLY, pl, n));

	expect_frame(p, fd, FRAME_AUTH);
	write_all(p, fd, out, mk(out, FRAME_AUTH_REPLY, pl, 5));
	drain(p, fd);
}

Test(client, auth_success_failure_and_bad_reply)
{
	struct peer *p = peer_start(script_auth);
	struct n1c *c = connect_to(p, 5000);
	bool ok = false;
	uint8_t sid[MSG_SESSION_ID_LEN] = { 0 };
	int r = n1c_auth(c, "alice", "s3cret", &ok, sid);
	cr_assert_eq(r, 0, "auth: %s", n1c_strerror(r));
	cr_assert(ok);
	cr_assert_eq(memcmp(sid, session_id, sizeof sid), 0);

	ok = true;
	cr_assert_eq(n1c_auth(c, "alice", "wrong", &ok, sid), 0);
	cr_assert_not(ok);

	cr_assert_eq(n1c_auth(c, "alice", "s3cret", &ok, NULL), N1C_EPROTO);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

/* ---- closed, timeout, late answers ---------------------------------------- */

static void script_close_after_ping(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
}

Test(client, peer_close_is_closed_error)
{
	struct peer *p = peer_start(script_close_after_ping);
	struct n1c *c = connect_to(p, 5000);
	cr_assert_eq(n1c_ping(c, NULL), N1C_ECLOSED);
	peer_join(p);
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(c, 100, &f), N1C_ECLOSED);
	n1c_close(c);
	peer_free(p);
}

static void script_slow_pong(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_PING);
	uint8_t first[8];
	memcpy(first, p->ping_payload, 8);
	/* Answer the first ping only after the client gave up on it. */
	sleep_ms(300);
	uint8_t out[64];
	write_all(p, fd, out, mk(out, FRAME_PONG, first, 8));
	expect_frame(p, fd, FRAME_PING);
	write_all(p, fd, out, mk_pong(p, out));
	drain(p, fd);
}

Test(client, timeout_then_late_pong_is_skipped)
{
	struct peer *p = peer_start(script_slow_pong);
	struct n1c *c = connect_to(p, 100);
	int64_t t0 = mono_ms();
	cr_assert_eq(n1c_ping(c, NULL), N1C_ETIMEOUT);
	int64_t took = mono_ms() - t0;
	cr_assert_geq(took, 100);
	cr_assert_lt(took, 290, "timeout took %lld ms", (long long)took);

	sleep_ms(400); /* the late PONG is now in the socket */
	n1c_set_timeout(c, 2000);
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, 0, "ping after a late PONG: %s", n1c_strerror(r));
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

static void script_slow_echo(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_ECHO);
	sleep_ms(300);
	uint8_t out[64];
	write_all(p, fd, out, mk(out, FRAME_ECHO_REPLY, p->last_payload, p->last_len));
	expect_frame(p, fd, FRAME_ECHO);
	write_all(p, fd, out, mk(out, FRAME_ECHO_REPLY, p->last_payload, p->last_len));
	drain(p, fd);
}

Test(client, timeout_then_late_echo_reply_is_skipped)
{
	struct peer *p = peer_start(script_slow_echo);
	struct n1c *c = connect_to(p, 100);
	cr_assert_eq(n1c_echo(c, "first", 5, NULL), N1C_ETIMEOUT);
	sleep_ms(400);
	n1c_set_timeout(c, 2000);
	struct n1c_frame f;
	int r = n1c_echo(c, "second", 6, &f);
	cr_assert_eq(r, 0, "echo after a late reply: %s", n1c_strerror(r));
	cr_assert_eq(f.len, 6);
	cr_assert_eq(memcmp(f.payload, "second", 6), 0);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

/* ---- connect -------------------------------------------------------------- */

Test(client, refused_connection)
{
	uint16_t port;
	/* Bound but not listening: nothing else can listen there meanwhile. */
	int fd = bind_random(AF_INET, false, &port);
	struct n1c *c = (struct n1c *)1;
	int r = n1c_connect(&c, "127.0.0.1", port, 2000);
	cr_assert_eq(r, N1C_EREFUSED, "got %s", n1c_strerror(r));
	cr_assert_null(c);
	close(fd);
}

Test(client, unresolvable_host)
{
	struct n1c *c = (struct n1c *)1;
	/* .invalid never resolves (RFC 6761); without DNS the lookup fails for now. */
	int r = n1c_connect(&c, "no-such-host.invalid", 5000, 2000);
	cr_assert(r == N1C_ERESOLVE || r == N1C_ERESOLVE_AGAIN, "got %s", n1c_strerror(r));
	cr_assert_null(c);
}

Test(client, bad_arguments)
{
	struct n1c *c;
	cr_assert_eq(n1c_connect(&c, "", 5000, 100), N1C_EINVAL);
	cr_assert_eq(n1c_connect(&c, "127.0.0.1", 0, 100), N1C_EINVAL);
}

static void script_echo_once(struct peer *p, int fd)
{
	expect_frame(p, fd, FRAME_ECHO);
	uint8_t out[64];
	write_all(p, fd, out, mk(out, FRAME_ECHO_REPLY, p->last_payload, p->last_len));
	drain(p, fd);
}

Test(client, ipv6_literal_and_host_name)
{
	struct peer *p = peer_start_family(AF_INET6, script_echo_once);
	struct n1c *c = NULL;
	int r = n1c_connect(&c, "::1", p->port, 2000);
	cr_assert_eq(r, 0, "connect [::1]: %s", n1c_strerror(r));
	cr_assert_eq(n1c_echo(c, "v6", 2, NULL), 0);
	n1c_close(c);
	peer_join(p);
	peer_free(p);

	/* A host name ("localhost" works even without /etc/hosts). */
	p = peer_start(script_echo_once);
	r = n1c_connect(&c, "localhost", p->port, 2000);
	cr_assert_eq(r, 0, "connect localhost: %s", n1c_strerror(r));
	cr_assert_eq(n1c_echo(c, "name", 4, NULL), 0);
	n1c_close(c);
	peer_join(p);
	peer_free(p);
}

/* A listener whose accept queue is full drops further SYNs: connect hangs. */
Test(client, connect_timeout)
{
	uint16_t port;
	int lfd = bind_random(AF_INET, false, &port);
	cr_assert_eq(listen(lfd, 0), 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fill[4];
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&a, sizeof a);
	}
	sleep_ms(50);
	struct n1c *c = NULL;
	int64_t t0 = mono_ms();
	int r = n1c_connect(&c, "127.0.0.1", port, 200);
	int64_t took = mono_ms() - t0;
	cr_assert_eq(r, N1C_ETIMEOUT, "got %s", n1c_strerror(r));
	cr_assert_geq(took, 200);
	cr_assert_lt(took, 1500);
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
}

/* ---- error names ---------------------------------------------------------- */

Test(client, strerror_names_every_code)
{
	static const int codes[] = {
		N1C_ETIMEOUT, N1C_ECLOSED, N1C_EREFUSED, N1C_EPROTO, N1C_ETOOBIG,
		N1C_EINVAL, N1C_ERESOLVE, N1C_ERESOLVE_AGAIN, N1C_ESERVER,
	};
	size_t n = sizeof codes / sizeof codes[0];
	for (size_t i = 0; i < n; i++) {
		const char *s = n1c_strerror(codes[i]);
		cr_assert_not_null(s);
		cr_assert_str_neq(s, "Unknown error");
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(s, n1c_strerror(codes[j]));
	}
	cr_assert_str_eq(n1c_strerror(N1C_EREFUSED), "Connection refused");
	cr_assert_str_eq(n1c_strerror(-ENETUNREACH), "Network is unreachable");
	cr_assert_str_eq(n1c_strerror(-99999), "Unknown error");
}
