/*
 * Every ERROR code of PROTOCOL.md section 3 with its close-or-continue
 * rule, and the order in which the checks run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/frame.h"
#include "auth_file.h"
#include "harness.h"
#include "timing.h"
#include "http_client.h"
#include "exposition.h"
#include "proto/msg.h"

static struct srv S;
static struct tc_frame F;

static void start(const char *const *args)
{
	cr_assert_eq(srv_start(&S, args), 0, "server starts");
}

/* The auth file of a test that uses one, removed by stop_clean(). */
static struct auth_file auth;

static void stop_clean(void)
{
	auth_file_remove(&auth);
	cr_assert_eq(srv_stop(&S, 10000), 0, "server exits 0 after SIGTERM");
}

static size_t make_frame(uint8_t *buf, uint8_t type, const void *p, uint16_t len)
{
	return frame_encode(buf, type, p, len);
}

TestSuite(errors, .timeout = 60);

Test(errors, bad_magic_closes, .fini = stop_clean)
{
	start(NULL);
	int fd = tc_connect(S.port);
	cr_assert_eq(tc_send(fd, "NOTMAGIC", 8), 0);
	cr_assert(tc_expect_error(fd, ERR_BAD_MAGIC, 2000));
	cr_assert(tc_wait_closed(fd, 3000), "closed after BAD_MAGIC");
	close(fd);
}

Test(errors, bad_magic_decided_from_first_byte, .fini = stop_clean)
{
	start(NULL);
	int fd = tc_connect(S.port);
	cr_assert_eq(tc_send(fd, "\x00", 1), 0);
	cr_assert(tc_expect_error(fd, ERR_BAD_MAGIC, 2000), "no need to wait for 4 bytes");
	cr_assert(tc_wait_closed(fd, 3000));
	close(fd);
}

Test(errors, bad_version_closes, .fini = stop_clean)
{
	start(NULL);
	int fd = tc_connect(S.port);
	uint8_t buf[32];
	size_t n = make_frame(buf, FRAME_PING, "12345678", 8);
	buf[4] = 2;
	cr_assert_eq(tc_send(fd, buf, n), 0);
	cr_assert(tc_expect_error(fd, ERR_BAD_VERSION, 2000));
	cr_assert(tc_wait_closed(fd, 3000));
	close(fd);
}

Test(errors, bad_crc_discards_and_continues, .fini = stop_clean)
{
	start(NULL);
	int fd = tc_connect(S.port);
	uint8_t buf[32];
	/* A corrupted frame is BAD_CRC whatever its type, even one the
	 * server would refuse for other reasons. */
	static const uint8_t types[] = { FRAME_PING, FRAME_ECHO, 0x42, FRAME_AUTH };
	for (size_t i = 0; i < sizeof types; i++) {
		size_t n = make_frame(buf, types[i], "abc", 3);
		buf[n - 1] ^= 0x40;
		cr_assert_eq(tc_send(fd, buf, n), 0);
		cr_assert(tc_expect_error(fd, ERR_BAD_CRC, 2000), "type %#x", types[i]);
	}
	cr_assert(tc_ping(fd, 1, 2000), "still serving");
	close(fd);
}

Test(errors, frame_too_large_decided_from_header, .fini = stop_clean)
{
	static const char *const args[] = { "--max-payload", "1024", NULL };
	start(args);
	int fd = tc_connect(S.port);
	uint8_t *buf = calloc(1, 3000);
	/* At the limit: fine. */
	size_t n = make_frame(buf, FRAME_ECHO, buf + 1500, 1024);
	cr_assert_eq(tc_send(fd, buf, n), 0);
	cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_ECHO_REPLY);
	/* One past: only the 8-byte header is sent, yet the error comes. */
	frame_put_header(buf, FRAME_ECHO, 1025);
	cr_assert_eq(tc_send(fd, buf, 8), 0);
	cr_assert(tc_expect_error(fd, ERR_FRAME_TOO_LARGE, 2000));
	cr_assert(tc_wait_closed(fd, 3000));
	free(buf);
	close(fd);
}

Test(errors, too_large_beats_bad_crc, .fini = stop_clean)
{
	static const char *const args[] = { "--max-payload", "100", NULL };
	start(args);
	int fd = tc_connect(S.port);
	uint8_t buf[400] = { 0 };
	size_t n = make_frame(buf, FRAME_ECHO, buf + 200, 101);
	buf[n - 1] ^= 1;
	cr_assert_eq(tc_send(fd, buf, n), 0);
	cr_assert(tc_expect_error(fd, ERR_FRAME_TOO_LARGE, 2000));
	close(fd);
}

Test(errors, rate_limited_discards_and_continues, .fini = stop_clean)
{
	static const char *const args[] = { "--rate-limit", "10", NULL };
	start(args);
	int fd = tc_connect(S.port);
	uint8_t buf[40 * 20];
	size_t n = 0;
	for (int i = 0; i < 40; i++) {
		uint8_t ts[8] = { 0, 0, 0, 0, 0, 0, 0, (uint8_t)i };
		n += make_frame(buf + n, FRAME_PING, ts, 8);
	}
	cr_assert_eq(tc_send(fd, buf, n), 0);
	int pongs = 0, limited = 0;
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
		if (F.type == FRAME_PONG)
			pongs++;
		else if (F.type == FRAME_ERROR && frame_get_u16(F.payload) == ERR_RATE_LIMITED)
			limited++;
	}
	/* The bucket starts full with one second's worth (10) and refills
	 * at 10/s, so a burst of 40 gets 10 (a few more if the host stalls). */
	cr_assert_geq(pongs, 10);
	cr_assert_leq(pongs, 20, "a burst of 40 against 10/s (stalls may refill a few)");
	cr_assert_eq(pongs + limited, 40);
	/* Check order: the rate limit comes before the type check. */
	cr_assert_eq(tc_send_frame(fd, 0x42, "", 0), 0);
	cr_assert(tc_expect_error(fd, ERR_RATE_LIMITED, 2000));
	usleep(1100 * 1000);
	cr_assert(tc_ping(fd, 1, 2000), "tokens come back");
	close(fd);
}

Test(errors, global_rate_limit_spans_connections, .fini = stop_clean)
{
	static const char *const args[] = { "--threads", "1", "--rate-limit", "0",
	                                    "--global-rate-limit", "20", NULL };
	start(args);
	int a = tc_connect(S.port), b = tc_connect(S.port);
	uint8_t buf[15 * 20];
	size_t n = 0;
	for (int i = 0; i < 15; i++)
		n += make_frame(buf + n, FRAME_PING, "12345678", 8);
	cr_assert_eq(tc_send(a, buf, n), 0);
	cr_assert_eq(tc_send(b, buf, n), 0);
	int pongs = 0;
	for (int i = 0; i < 15; i++) {
		cr_assert_eq(tc_read_frame(a, &F, 2000), 0);
		pongs += F.type == FRAME_PONG;
		cr_assert_eq(tc_read_frame(b, &F, 2000), 0);
		pongs += F.type == FRAME_PONG;
	}
	cr_assert_geq(pongs, 20);
	cr_assert_leq(pongs, 26, "30 PINGs against a budget of 20/s");
	close(a);
	close(b);
}

Test(errors, server_full_after_accept, .fini = stop_clean)
{
	static const char *const args[] = { "--max-connections", "2", NULL };
	start(args);
	int a = tc_connect(S.port), b = tc_connect(S.port);
	cr_assert(tc_ping(a, 1, 2000) && tc_ping(b, 2, 2000));
	int c = tc_connect(S.port);
	cr_assert_geq(c, 0, "the kernel accepts; the server refuses");
	cr_assert(tc_expect_error(c, ERR_SERVER_FULL, 2000));
	cr_assert(tc_wait_closed(c, 3000));
	close(c);
	/* A slot frees when a client leaves. */
	close(a);
	usleep(200 * 1000);
	int d = tc_connect(S.port);
	cr_assert(tc_ping(d, 3, 2000), "room again after a close");
	close(b);
	close(d);
}

Test(errors, max_connections_from_environment, .fini = stop_clean)
{
	static const char *const env[] = { "MAX_CONNECTIONS=1", NULL };
	cr_assert_eq(srv_start_env(&S, NULL, env), 0);
	int a = tc_connect(S.port);
	cr_assert(tc_ping(a, 1, 2000));
	int b = tc_connect(S.port);
	cr_assert(tc_expect_error(b, ERR_SERVER_FULL, 2000));
	close(a);
	close(b);
}

Test(errors, flag_beats_environment, .fini = stop_clean)
{
	static const char *const env[] = { "MAX_CONNECTIONS=1", NULL };
	static const char *const args[] = { "--max-connections", "3", NULL };
	cr_assert_eq(srv_start_env(&S, args, env), 0);
	int a = tc_connect(S.port), b = tc_connect(S.port);
	cr_assert(tc_ping(a, 1, 2000) && tc_ping(b, 2, 2000));
	close(a);
	close(b);
}

Test(errors, idle_timeout_closes, .fini = stop_clean)
{
	static const char *const args[] = { "--idle-timeout", "1", NULL };
	start(args);
	int a = tc_connect(S.port), b = tc_connect(S.port);
	cr_assert(tc_ping(a, 1, 2000));
	/* b sends half a frame: partial input does not count as activity. */
	cr_assert_eq(tc_send(b, "\xde\xad\xbe\xef\x01\x01", 6), 0);
	cr_assert(tc_expect_error(a, ERR_IDLE_TIMEOUT, 4000));
	cr_assert(tc_wait_closed(a, 2000));
	cr_assert(tc_expect_error(b, ERR_IDLE_TIMEOUT, 4000));
	close(a);
	close(b);
}

Test(errors, activity_defers_idle_timeout, .fini = stop_clean)
{
	static const char *const args[] = { "--idle-timeout", "2", NULL };
	start(args);
	int a = tc_connect(S.port);
	for (int i = 0; i < 6; i++) {
		usleep(700 * 1000);
		cr_assert(tc_ping(a, (uint64_t)i, 2000), "alive after %d pings", i);
	}
	close(a);
}

Test(errors, idle_timeout_zero_is_off, .fini = stop_clean)
{
	static const char *const args[] = { "--idle-timeout", "0", NULL };
	start(args);
	int a = tc_connect(S.port);
	cr_assert(tc_quiet(a, 2500), "no IDLE_TIMEOUT");
	cr_assert(tc_ping(a, 1, 2000));
	close(a);
}

static const char *write_auth_file(const char *user)
{
	const char *path = auth_file_write(&auth, "errors", AUTH_USERS(user, AUTH_ALICE_HEX));
	cr_assert_not_null(path);
	return path;
}

static size_t auth_payload(uint8_t *p, const char *user, const char *token)
{
	return (size_t)msg_auth_build(p, user, strlen(user), token, strlen(token));
}

Test(errors, auth_required_then_granted, .fini = stop_clean)
{
	const char *const args[] = { "--auth-file", write_auth_file("alice"), NULL };
	start(args);

	int a = tc_connect(S.port), b = tc_connect(S.port);
	/* PING and ECHO need no authentication. */
	cr_assert(tc_ping(a, 1, 2000));
	cr_assert_eq(tc_send_frame(a, FRAME_ECHO, "e", 1), 0);
	cr_assert_eq(tc_read_frame(a, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_ECHO_REPLY);
	/* BROADCAST and DATA do. */
	cr_assert_eq(tc_send_frame(a, FRAME_BROADCAST, "x", 1), 0);
	cr_assert(tc_expect_error(a, ERR_AUTH_REQUIRED, 2000));
	cr_assert_eq(tc_send_frame(a, FRAME_DATA, "x", 1), 0);
	cr_assert(tc_expect_error(a, ERR_AUTH_REQUIRED, 2000));
	/* Type is checked before authentication. */
	cr_assert_eq(tc_send_frame(a, 0x55, "x", 1), 0);
	cr_assert(tc_expect_error(a, ERR_UNSUPPORTED_TYPE, 2000));

	uint8_t p[400];
	size_t n = auth_payload(p, "alice", "s3cret");
	cr_assert_eq(tc_send_frame(a, FRAME_AUTH, p, n), 0);
	cr_assert_eq(tc_read_frame(a, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_AUTH_REPLY);
	cr_assert_eq(F.len, 17);
	cr_assert_eq(F.payload[0], 1, "success");
	int nonzero = 0;
	for (int i = 1; i < 17; i++)
		nonzero += F.payload[i] != 0;
	cr_assert_gt(nonzero, 0, "a random session id");

	/* An authenticated sender reaches authenticated receivers only. */
	cr_assert_eq(tc_send_frame(b, FRAME_AUTH, p, n), 0);
	cr_assert_eq(tc_read_frame(b, &F, 2000), 0);
	cr_assert_eq(F.payload[0], 1);
	int c = tc_connect(S.port);
	cr_assert(tc_ping(c, 3, 2000));
	cr_assert_eq(tc_send_frame(a, FRAME_BROADCAST, "news", 4), 0);
	cr_assert_eq(tc_read_frame(b, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_BROADCAST);
	cr_assert(tc_quiet(c, 500), "unauthenticated connection receives nothing");
	cr_assert_eq(tc_send_frame(a, FRAME_DATA, "d", 1), 0);
	cr_assert(tc_ping(a, 4, 2000), "DATA accepted after AUTH");
	close(a);
	close(b);
	close(c);
}

Test(errors, third_auth_failure_closes, .fini = stop_clean)
{
	const char *const args[] = { "--auth-file", write_auth_file("alice"), NULL };
	start(args);

	int a = tc_connect(S.port);
	uint8_t p[400];
	size_t n = auth_payload(p, "alice", "wrong");
	/* A malformed AUTH is BAD_PAYLOAD and not an attempt. */
	cr_assert_eq(tc_send_frame(a, FRAME_AUTH, "\x00zz", 3), 0);
	cr_assert(tc_expect_error(a, ERR_BAD_PAYLOAD, 2000));
	for (int i = 1; i <= 3; i++) {
		cr_assert_eq(tc_send_frame(a, FRAME_AUTH, p, n), 0);
		cr_assert_eq(tc_read_frame(a, &F, 2000), 0);
		cr_assert_eq(F.type, FRAME_AUTH_REPLY, "attempt %d answered", i);
		cr_assert_eq(F.payload[0], 0);
	}
	cr_assert(tc_expect_error(a, ERR_AUTH_FAILED, 2000));
	cr_assert(tc_wait_closed(a, 3000));
	close(a);

	/* Unknown users fail the same way. */
	int b = tc_connect(S.port);
	n = auth_payload(p, "mallory", "s3cret");
	cr_assert_eq(tc_send_frame(b, FRAME_AUTH, p, n), 0);
	cr_assert_eq(tc_read_frame(b, &F, 2000), 0);
	cr_assert_eq(F.payload[0], 0);
	close(b);
}

Test(errors, sighup_reloads_auth_file, .fini = stop_clean)
{
	const char *const args[] = { "--auth-file", write_auth_file("alice"), NULL };
	start(args);

	uint8_t p[400];
	size_t n = auth_payload(p, "bob", "s3cret");
	int a = tc_connect(S.port);
	cr_assert_eq(tc_send_frame(a, FRAME_AUTH, p, n), 0);
	cr_assert_eq(tc_read_frame(a, &F, 2000), 0);
	cr_assert_eq(F.payload[0], 0, "bob unknown before the reload");

	write_auth_file("bob");
	kill(S.pid, SIGHUP);
	for (int i = 0; i < 200 && !srv_log_contains(&S, "reloaded"); i++)
		usleep(10000);
	cr_assert(srv_log_contains(&S, "reloaded"));
	cr_assert_eq(tc_send_frame(a, FRAME_AUTH, p, n), 0);
	cr_assert_eq(tc_read_frame(a, &F, 2000), 0);
	cr_assert_eq(F.payload[0], 1, "bob known after the reload");

	/* A broken file keeps the previous table. */
	cr_assert_not_null(auth_file_write_text(&auth, "errors", "this is not an auth line\n"));
	kill(S.pid, SIGHUP);
	for (int i = 0; i < 200 && !srv_log_contains(&S, "keeping the previous"); i++)
		usleep(10000);
	cr_assert(srv_log_contains(&S, "keeping the previous"));
	int b = tc_connect(S.port);
	cr_assert_eq(tc_send_frame(b, FRAME_AUTH, p, n), 0);
	cr_assert_eq(tc_read_frame(b, &F, 2000), 0);
	cr_assert_eq(F.payload[0], 1, "bob still known");
	close(a);
	close(b);
}

Test(errors, slow_consumer_closed, .fini = stop_clean)
{
	static const char *const args[] = { "--max-output", "200000", "--rate-limit", "0",
	                                    "--global-rate-limit", "0", "--debug", NULL };
	start(args);
	int a = tc_connect_small(S.port, 4096);
	int sender = tc_connect(S.port);
	cr_assert(tc_ping(a, 1, 2000) && tc_ping(sender, 2, 2000));
	/* a does not read while 65 MB of broadcasts go out: far more than
	 * the socket buffers hold. Its cursor stops; after 5 s it no longer
	 * holds the sender back, and once its backlog passes --max-output it
	 * is dropped (reading less cannot hold broadcasts back). */
	uint8_t *p = calloc(1, 65535);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(tc_send_frame(sender, FRAME_BROADCAST, p, 65535), 0);
	/* What a finally reads: whole broadcasts, maybe SLOW_CONSUMER (when
	 * TCP lets it through before the linger ends), then the close. */
	int r, frames = 0;
	while ((r = tc_read_frame(a, &F, 15000)) == 0) {
		frames++;
		cr_assert(F.type == FRAME_BROADCAST ||
		          (F.type == FRAME_ERROR && frame_get_u16(F.payload) == ERR_SLOW_CONSUMER),
		          "frame %d: type %u", frames, F.type);
	}
	cr_assert(r == -EPIPE || r == -ECONNRESET, "the server dropped the reader (%d, after %d frames)", r, frames);
	struct http_resp m;
	cr_assert_eq(http_get(S.metrics_port, "/metrics", &m), 200);
	uint64_t closes = 0;
	cr_assert(sample_u64(m.body, "net001_slow_consumer_closes_total", &closes));
	http_resp_free(&m);
	cr_assert_eq(closes, 1, "closed as a slow consumer (%llu)", (unsigned long long)closes);
	free(p);
	close(a);
	cr_assert(tc_ping(sender, 3, 2000), "the sender is unaffected");
	close(sender);
}

Test(errors, shutting_down_sent_on_sigterm)
{
	start(NULL);
	int a = tc_connect(S.port), b = tc_connect(S.port);
	cr_assert(tc_ping(a, 1, 2000) && tc_ping(b, 2, 2000));
	kill(S.pid, SIGTERM);
	cr_assert(tc_expect_error(a, ERR_SHUTTING_DOWN, 3000));
	cr_assert(tc_expect_error(b, ERR_SHUTTING_DOWN, 3000));
	cr_assert(tc_wait_closed(a, 3000));
	cr_assert_eq(srv_wait(&S, 10000), 0, "exit 0");
	close(a);
	close(b);
}

Test(errors, shutdown_closes_non_readers_after_grace)
{
	static const char *const args[] = { "--rate-limit", "0", "--global-rate-limit", "0",
	                                    NULL };
	start(args);
	int a = tc_connect_small(S.port, 4096);
	uint8_t *p = calloc(1, 30000);
	for (int i = 0; i < 40; i++)
		tc_send_frame(a, FRAME_ECHO, p, 30000);
	usleep(300 * 1000);
	kill(S.pid, SIGTERM);
	/* The reader never reads: the server gives it 5 s, then closes. */
	cr_assert_eq(srv_wait(&S, 12000), 0, "exit 0 within the grace period");
	free(p);
	close(a);
}
