/*
 * libnet001 against a real net001-server (started by tests/support's
 * harness on a free loopback port): every library call, the server's ERROR
 * frames as the client surfaces them, timeouts against a stopped server,
 * refused and unresolvable hosts.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/client/client.h"
#include "auth_file.h"
#include "harness.h"
#include "timing.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The test's server; stopped by the fixture even when an assert fails. */
static struct srv server;
static struct auth_file auth;

static void stop_server(void)
{
	srv_cleanup(&server);
	auth_file_remove(&auth);
}

TestSuite(client_srv, .fini = stop_server, .timeout = 60);

static void start(const char *const *args)
{
	cr_assert_eq(srv_start(&server, args), 0, "server did not start");
}

/* An auth file with alice:s3cret and bob:hunter2. */
static const char *write_auth_file(void)
{
	const char *path = auth_file_write(&auth, "client",
	                                   AUTH_USERS("alice", AUTH_ALICE_HEX, "bob", AUTH_BOB_HEX));
	cr_assert_not_null(path);
	return path;
}

static struct n1c *dial(void)
{
	struct n1c *c = NULL;
	int r = n1c_connect(&c, "127.0.0.1", server.port, 5000);
	cr_assert_eq(r, 0, "connect: %s", n1c_strerror(r));
	return c;
}

static void expect_error_frame(struct n1c *c, unsigned code, int timeout_ms)
{
	struct n1c_frame f;
	int r = n1c_recv(c, timeout_ms, &f);
	cr_assert_eq(r, 0, "recv: %s", n1c_strerror(r));
	cr_assert_eq(f.type, FRAME_ERROR, "got frame type 0x%02x", f.type);
	const char *text;
	cr_assert_eq(n1c_server_error(c, &text), code, "ERROR %u (%s), wanted %u",
	             n1c_server_error(c, NULL), text, code);
}

Test(client_srv, ping_and_echo)
{
	start(NULL);
	struct n1c *c = dial();
	uint64_t rtt = 0;
	cr_assert_eq(n1c_ping(c, &rtt), 0);
	cr_assert_gt(rtt, 0);
	cr_assert_lt(rtt, 5000000000ull);

	struct n1c_frame f;
	cr_assert_eq(n1c_echo(c, "hello", 5, &f), 0);
	cr_assert_eq(f.len, 5);
	cr_assert_eq(memcmp(f.payload, "hello", 5), 0);
	cr_assert_eq(n1c_echo(c, NULL, 0, &f), 0);
	cr_assert_eq(f.len, 0);

	uint8_t *big = malloc(FRAME_MAX_PAYLOAD + 1);
	for (size_t i = 0; i <= FRAME_MAX_PAYLOAD; i++)
		big[i] = (uint8_t)(i * 31 + 7);
	int r = n1c_echo(c, big, FRAME_MAX_PAYLOAD, &f);
	cr_assert_eq(r, 0, "echo 65535: %s", n1c_strerror(r));
	cr_assert_eq(f.len, FRAME_MAX_PAYLOAD);
	cr_assert_eq(memcmp(f.payload, big, FRAME_MAX_PAYLOAD), 0);
	cr_assert_eq(n1c_echo(c, big, FRAME_MAX_PAYLOAD + 1, NULL), N1C_ETOOBIG);
	free(big);

	cr_assert_eq(n1c_ping(c, NULL), 0, "the connection is still good");
	n1c_close(c);
}

Test(client_srv, ipv6_literal)
{
	start(ARGS("--host", "::1"));
	struct n1c *c = NULL;
	int r = n1c_connect(&c, "::1", server.port, 5000);
	cr_assert_eq(r, 0, "connect [::1]: %s", n1c_strerror(r));
	cr_assert_eq(n1c_echo(c, "six", 3, NULL), 0);
	n1c_close(c);
	/* Only ::1 listens: the IPv4 loopback is refused. */
	r = n1c_connect(&c, "127.0.0.1", server.port, 5000);
	cr_assert_eq(r, N1C_EREFUSED, "got %s", n1c_strerror(r));
}

Test(client_srv, host_name)
{
	start(NULL);
	struct n1c *c = NULL;
	int r = n1c_connect(&c, "localhost", server.port, 5000);
	cr_assert_eq(r, 0, "connect localhost: %s", n1c_strerror(r));
	cr_assert_eq(n1c_ping(c, NULL), 0);
	n1c_close(c);
}

Test(client_srv, pipelined_raw_pings_answer_in_order)
{
	start(NULL);
	struct n1c *c = dial();
	for (uint8_t i = 0; i < 50; i++) {
		uint8_t ts[8] = { 0, 0, 0, 0, 0, 0, 0, i };
		cr_assert_eq(n1c_send(c, FRAME_PING, ts, 8), 0);
	}
	for (uint8_t i = 0; i < 50; i++) {
		struct n1c_frame f;
		cr_assert_eq(n1c_recv(c, 5000, &f), 0);
		cr_assert_eq(f.type, FRAME_PONG);
		cr_assert_eq(f.len, 8);
		cr_assert_eq(f.payload[7], i, "PONG %u out of order", i);
	}
	n1c_close(c);
}

Test(client_srv, broadcast_reaches_others_not_sender)
{
	start(ARGS("--threads", "1"));
	struct n1c *a = dial(), *b = dial(), *d = dial();
	/* A round trip each: the server has taken all three in. */
	cr_assert_eq(n1c_sync(a), 0);
	cr_assert_eq(n1c_sync(b), 0);
	cr_assert_eq(n1c_sync(d), 0);

	cr_assert_eq(n1c_broadcast(a, "news", 4), 0);
	cr_assert_eq(n1c_broadcast(a, "", 0), 0);
	cr_assert_eq(n1c_sync(a), 0);
	struct n1c *rx[] = { b, d };
	for (int i = 0; i < 2; i++) {
		struct n1c_frame f;
		cr_assert_eq(n1c_recv(rx[i], 5000, &f), 0);
		cr_assert_eq(f.type, FRAME_BROADCAST);
		cr_assert_eq(f.len, 4);
		cr_assert_eq(memcmp(f.payload, "news", 4), 0);
		cr_assert_eq(n1c_recv(rx[i], 5000, &f), 0);
		cr_assert_eq(f.type, FRAME_BROADCAST);
		cr_assert_eq(f.len, 0);
	}
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(a, 200, &f), N1C_ETIMEOUT, "the sender gets no copy");
	n1c_close(a);
	n1c_close(b);
	n1c_close(d);
}

Test(client_srv, broadcast_across_cores)
{
	start(ARGS("--threads", "2"));
	enum { N = 8 };
	struct n1c *tx = dial(), *rx[N];
	for (int i = 0; i < N; i++) {
		rx[i] = dial();
		cr_assert_eq(n1c_sync(rx[i]), 0);
	}
	cr_assert_eq(n1c_sync(tx), 0);
	for (int k = 0; k < 3; k++) {
		char msg[16];
		int len = snprintf(msg, sizeof msg, "msg-%d", k);
		cr_assert_eq(n1c_broadcast(tx, msg, (size_t)len), 0);
	}
	cr_assert_eq(n1c_sync(tx), 0);
	/* Every receiver, whichever core holds it, gets all three in order. */
	for (int i = 0; i < N; i++) {
		for (int k = 0; k < 3; k++) {
			char msg[16];
			int len = snprintf(msg, sizeof msg, "msg-%d", k);
			struct n1c_frame f;
			int r = n1c_recv(rx[i], 5000, &f);
			cr_assert_eq(r, 0, "receiver %d, message %d: %s", i, k, n1c_strerror(r));
			cr_assert_eq(f.type, FRAME_BROADCAST);
			cr_assert_eq(f.len, (uint16_t)len);
			cr_assert_eq(memcmp(f.payload, msg, f.len), 0);
		}
		n1c_close(rx[i]);
	}
	n1c_close(tx);
}

Test(client_srv, broadcast_during_ping_is_queued)
{
	/* One core: the sender's sync then proves delivery into b's socket. */
	start(ARGS("--threads", "1"));
	struct n1c *a = dial(), *b = dial();
	cr_assert_eq(n1c_sync(a), 0);
	cr_assert_eq(n1c_sync(b), 0);
	cr_assert_eq(n1c_broadcast(a, "first", 5), 0);
	cr_assert_eq(n1c_broadcast(a, "second", 6), 0);
	cr_assert_eq(n1c_sync(a), 0);
	/* Both broadcasts sit in b's socket ahead of the PONG. */
	uint64_t rtt;
	cr_assert_eq(n1c_ping(b, &rtt), 0);
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(b, 0, &f), 0, "queued: no wait needed");
	cr_assert_eq(f.len, 5);
	cr_assert_eq(memcmp(f.payload, "first", 5), 0);
	cr_assert_eq(n1c_recv(b, 0, &f), 0);
	cr_assert_eq(memcmp(f.payload, "second", 6), 0);
	cr_assert_eq(n1c_recv(b, 0, &f), N1C_ETIMEOUT);
	cr_assert_eq(n1c_dropped(b), 0);
	n1c_close(a);
	n1c_close(b);
}

Test(client_srv, data_is_accepted)
{
	start(NULL);
	struct n1c *c = dial();
	uint8_t buf[4096];
	memset(buf, 'd', sizeof buf);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(n1c_data(c, buf, sizeof buf), 0);
	cr_assert_eq(n1c_data(c, NULL, 0), 0);
	int r = n1c_sync(c);
	cr_assert_eq(r, 0, "sync after DATA: %s", n1c_strerror(r));
	n1c_close(c);
}

Test(client_srv, auth_and_auth_required)
{
	start(ARGS("--threads", "1", "--auth-file", write_auth_file()));
	struct n1c *a = dial(), *b = dial();

	/* Unauthenticated: BROADCAST and DATA are refused, PING/ECHO are not. */
	cr_assert_eq(n1c_broadcast(b, "x", 1), 0);
	cr_assert_eq(n1c_sync(b), N1C_ESERVER);
	cr_assert_eq(n1c_server_error(b, NULL), ERR_AUTH_REQUIRED);
	cr_assert_eq(n1c_data(b, "x", 1), 0);
	cr_assert_eq(n1c_sync(b), N1C_ESERVER);
	cr_assert_eq(n1c_server_error(b, NULL), ERR_AUTH_REQUIRED);
	cr_assert_eq(n1c_echo(b, "still", 5, NULL), 0);

	bool ok = false;
	uint8_t sid[MSG_SESSION_ID_LEN], zero[MSG_SESSION_ID_LEN] = { 0 };
	cr_assert_eq(n1c_auth(a, "alice", "s3cret", &ok, sid), 0);
	cr_assert(ok);
	cr_assert_neq(memcmp(sid, zero, sizeof sid), 0, "a session id is random");
	cr_assert_eq(n1c_auth(b, "bob", "hunter2", &ok, NULL), 0);
	cr_assert(ok);

	cr_assert_eq(n1c_broadcast(a, "authed", 6), 0);
	cr_assert_eq(n1c_sync(a), 0);
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(b, 5000, &f), 0);
	cr_assert_eq(f.type, FRAME_BROADCAST);
	cr_assert_eq(memcmp(f.payload, "authed", 6), 0);
	n1c_close(a);
	n1c_close(b);
}

Test(client_srv, third_failed_auth_closes)
{
	start(ARGS("--auth-file", write_auth_file()));
	struct n1c *c = dial();
	uint8_t sid[MSG_SESSION_ID_LEN], zero[MSG_SESSION_ID_LEN] = { 0 };
	for (int i = 0; i < 3; i++) {
		bool ok = true;
		int r = n1c_auth(c, "alice", "wrong", &ok, sid);
		cr_assert_eq(r, 0, "auth %d: %s", i + 1, n1c_strerror(r));
		cr_assert_not(ok);
		cr_assert_eq(memcmp(sid, zero, sizeof sid), 0);
	}
	/* AUTH_REPLY, then ERROR 8, then the close. */
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, N1C_ESERVER, "got %s", n1c_strerror(r));
	cr_assert_eq(n1c_server_error(c, NULL), ERR_AUTH_FAILED);
	cr_assert_eq(n1c_ping(c, NULL), N1C_ECLOSED);
	n1c_close(c);
}

Test(client_srv, auth_without_auth_file_fails)
{
	start(NULL);
	struct n1c *c = dial();
	bool ok = true;
	cr_assert_eq(n1c_auth(c, "alice", "s3cret", &ok, NULL), 0);
	cr_assert_not(ok);
	n1c_close(c);
}

Test(client_srv, server_errors_as_frames)
{
	start(NULL);
	struct n1c *c = dial();
	/* A server-to-client type from a client, then a short PING. */
	uint8_t ts[8] = { 0 };
	cr_assert_eq(n1c_send(c, FRAME_PONG, ts, 8), 0);
	expect_error_frame(c, ERR_UNSUPPORTED_TYPE, 5000);
	cr_assert_eq(n1c_send(c, FRAME_PING, ts, 3), 0);
	expect_error_frame(c, ERR_BAD_PAYLOAD, 5000);
	cr_assert_eq(n1c_send(c, 0x42, NULL, 0), 0);
	expect_error_frame(c, ERR_UNSUPPORTED_TYPE, 5000);
	cr_assert_eq(n1c_ping(c, NULL), 0, "those errors do not close");
	n1c_close(c);
}

Test(client_srv, rate_limited_request_fails_then_recovers)
{
	start(ARGS("--rate-limit", "5", "--global-rate-limit", "0"));
	struct n1c *c = dial();
	int ok = 0, limited = 0;
	for (int i = 0; i < 20; i++) {
		int r = n1c_ping(c, NULL);
		if (r == 0) {
			ok++;
		} else {
			cr_assert_eq(r, N1C_ESERVER, "ping %d: %s", i, n1c_strerror(r));
			cr_assert_eq(n1c_server_error(c, NULL), ERR_RATE_LIMITED);
			limited++;
		}
	}
	cr_assert_geq(ok, 5);
	cr_assert_geq(limited, 1);
	sleep_ms(1200);
	int r = n1c_ping(c, NULL);
	cr_assert_eq(r, 0, "after a second the bucket is full: %s", n1c_strerror(r));
	n1c_close(c);
}

Test(client_srv, rate_limited_data_reported_by_sync)
{
	start(ARGS("--rate-limit", "5", "--global-rate-limit", "0"));
	struct n1c *c = dial();
	for (int i = 0; i < 12; i++)
		cr_assert_eq(n1c_data(c, "z", 1), 0);
	int64_t t0 = mono_ms();
	int r = n1c_sync(c);
	cr_assert_eq(r, N1C_ESERVER, "got %s", n1c_strerror(r));
	cr_assert_eq(n1c_server_error(c, NULL), ERR_RATE_LIMITED);
	cr_assert_lt(mono_ms() - t0, 2000, "reported without waiting out the timeout");
	/* The other refusals come after it and are queued. */
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(c, 2000, &f), 0);
	cr_assert_eq(f.type, FRAME_ERROR);
	cr_assert_eq(n1c_server_error(c, NULL), ERR_RATE_LIMITED);
	n1c_close(c);
}

Test(client_srv, frame_too_large_closes)
{
	start(ARGS("--max-payload", "100"));
	struct n1c *c = dial();
	uint8_t buf[200] = { 0 };
	cr_assert_eq(n1c_echo(c, buf, 100, NULL), 0);
	int r = n1c_echo(c, buf, 101, NULL);
	cr_assert_eq(r, N1C_ESERVER, "got %s", n1c_strerror(r));
	cr_assert_eq(n1c_server_error(c, NULL), ERR_FRAME_TOO_LARGE);
	r = n1c_ping(c, NULL);
	cr_assert(r == N1C_ECLOSED, "got %s", n1c_strerror(r));
	n1c_close(c);
}

Test(client_srv, server_full)
{
	start(ARGS("--max-connections", "1"));
	struct n1c *a = dial();
	cr_assert_eq(n1c_ping(a, NULL), 0);
	struct n1c *b = dial(); /* the kernel accepts; the server refuses */
	expect_error_frame(b, ERR_SERVER_FULL, 5000);
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(b, 5000, &f), N1C_ECLOSED);
	cr_assert_eq(n1c_ping(a, NULL), 0, "the first one is unaffected");
	n1c_close(a);
	n1c_close(b);
}

Test(client_srv, idle_timeout)
{
	/* Idle time is counted in whole seconds: 2 means more than 1. */
	start(ARGS("--idle-timeout", "2"));
	struct n1c *c = dial();
	int64_t t0 = mono_ms();
	expect_error_frame(c, ERR_IDLE_TIMEOUT, 5000);
	cr_assert_geq(mono_ms() - t0, 1000);
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(c, 5000, &f), N1C_ECLOSED);
	n1c_close(c);
}

Test(client_srv, shutdown_is_reported)
{
	start(NULL);
	struct n1c *c = dial();
	cr_assert_eq(n1c_ping(c, NULL), 0);
	cr_assert_eq(srv_stop(&server, 10000), 0);
	int r = n1c_ping(c, NULL);
	cr_assert(r == N1C_ESERVER || r == N1C_ECLOSED, "got %s", n1c_strerror(r));
	if (r == N1C_ESERVER)
		cr_assert_eq(n1c_server_error(c, NULL), ERR_SHUTTING_DOWN);
	n1c_close(c);

	/* Nothing listens there any more. */
	r = n1c_connect(&c, "127.0.0.1", server.port, 2000);
	cr_assert_eq(r, N1C_EREFUSED, "got %s", n1c_strerror(r));
}

Test(client_srv, shutdown_error_frame_while_idle)
{
	start(NULL);
	struct n1c *c = dial();
	cr_assert_eq(n1c_ping(c, NULL), 0);
	cr_assert_eq(srv_stop(&server, 10000), 0);
	expect_error_frame(c, ERR_SHUTTING_DOWN, 2000);
	n1c_close(c);
}

Test(client_srv, timeouts_and_late_answers)
{
	start(NULL);
	struct n1c *c = dial();
	cr_assert_eq(n1c_ping(c, NULL), 0);

	cr_assert_eq(srv_freeze(&server, 2000), 0, "server threads did not stop");
	n1c_set_timeout(c, 200);
	int64_t t0 = mono_ms();
	cr_assert_eq(n1c_ping(c, NULL), N1C_ETIMEOUT);
	int64_t took = mono_ms() - t0;
	cr_assert_geq(took, 200);
	cr_assert_lt(took, 2000);
	cr_assert_eq(n1c_echo(c, "lost", 4, NULL), N1C_ETIMEOUT);
	struct n1c_frame f;
	cr_assert_eq(n1c_recv(c, 100, &f), N1C_ETIMEOUT);

	/* Awake again, the server answers both; the client drops them. */
	cr_assert_eq(kill(server.pid, SIGCONT), 0);
	n1c_set_timeout(c, 5000);
	int r = n1c_echo(c, "found", 5, &f);
	cr_assert_eq(r, 0, "echo after timeouts: %s", n1c_strerror(r));
	cr_assert_eq(memcmp(f.payload, "found", 5), 0);
	cr_assert_eq(n1c_ping(c, NULL), 0);
	cr_assert_eq(n1c_recv(c, 200, &f), N1C_ETIMEOUT, "no stray answers left");
	n1c_close(c);
}

Test(client_srv, unresolvable_host)
{
	struct n1c *c = NULL;
	int r = n1c_connect(&c, "no-such-host.invalid", 5000, 2000);
	cr_assert(r == N1C_ERESOLVE || r == N1C_ERESOLVE_AGAIN, "got %s", n1c_strerror(r));
	cr_assert_null(c);
}
