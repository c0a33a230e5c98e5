/*
 * Every message type of PROTOCOL.md section 2 against a real server.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/frame.h"
#include "harness.h"
#include "proto/msg.h"

static struct srv S;
static struct tc_frame F;

static void start_default(void)
{
	static const char *const args[] = { "--threads", "2", NULL };
	cr_assert_eq(srv_start(&S, args), 0, "server starts");
}

static void stop_clean(void)
{
	cr_assert_eq(srv_stop(&S, 10000), 0, "server exits 0 after SIGTERM");
}

TestSuite(messages, .init = start_default, .fini = stop_clean, .timeout = 60);

Test(messages, ping_pong_carries_the_timestamp)
{
	int fd = tc_connect(S.port);
	cr_assert_geq(fd, 0);
	const uint8_t ts[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	cr_assert_eq(tc_send_frame(fd, FRAME_PING, ts, 8), 0);
	cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_PONG);
	cr_assert_eq(F.len, 8);
	cr_assert_arr_eq(F.payload, ts, 8);
	close(fd);
}

Test(messages, ping_of_wrong_length_is_bad_payload_and_continues)
{
	int fd = tc_connect(S.port);
	static const size_t lens[] = { 0, 7, 9, 100 };
	uint8_t p[100] = { 0 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		cr_assert_eq(tc_send_frame(fd, FRAME_PING, p, lens[i]), 0);
		cr_assert(tc_expect_error(fd, ERR_BAD_PAYLOAD, 2000), "PING of %zu bytes", lens[i]);
	}
	cr_assert(tc_ping(fd, 42, 2000), "connection still serves");
	close(fd);
}

Test(messages, echo_returns_identical_payloads)
{
	int fd = tc_connect(S.port);
	static const size_t lens[] = { 0, 1, 2, 1000, 4096, 20000, 65535 };
	uint8_t *p = malloc(65535);
	for (size_t i = 0; i < 65535; i++)
		p[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		cr_assert_eq(tc_send_frame(fd, FRAME_ECHO, p, lens[i]), 0);
		cr_assert_eq(tc_read_frame(fd, &F, 5000), 0, "reply to ECHO of %zu", lens[i]);
		cr_assert_eq(F.type, FRAME_ECHO_REPLY);
		cr_assert_eq(F.len, lens[i]);
		cr_assert_arr_eq(F.payload, p, lens[i]);
	}
	free(p);
	close(fd);
}

Test(messages, broadcast_reaches_others_not_the_sender)
{
	int a = tc_connect(S.port), b = tc_connect(S.port), c = tc_connect(S.port);
	cr_assert(a >= 0 && b >= 0 && c >= 0);
	/* Make sure all three are being served before broadcasting. */
	cr_assert(tc_ping(a, 1, 2000) && tc_ping(b, 2, 2000) && tc_ping(c, 3, 2000));

	cr_assert_eq(tc_send_frame(a, FRAME_BROADCAST, "hello", 5), 0);
	int rx[2] = { b, c };
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(tc_read_frame(rx[i], &F, 2000), 0);
		cr_assert_eq(F.type, FRAME_BROADCAST);
		cr_assert_eq(F.len, 5);
		cr_assert_arr_eq(F.payload, "hello", 5);
	}
	/* No reply to the sender: the next thing it sees is its PONG. */
	cr_assert(tc_ping(a, 99, 2000), "sender got nothing but its PONG");
	close(a);
	close(b);
	close(c);
}

Test(messages, empty_broadcast_is_delivered)
{
	int a = tc_connect(S.port), b = tc_connect(S.port);
	cr_assert(tc_ping(a, 1, 2000) && tc_ping(b, 2, 2000));
	cr_assert_eq(tc_send_frame(a, FRAME_BROADCAST, "", 0), 0);
	cr_assert_eq(tc_read_frame(b, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_BROADCAST);
	cr_assert_eq(F.len, 0);
	close(a);
	close(b);
}

Test(messages, auth_without_auth_file_replies_failure)
{
	int fd = tc_connect(S.port);
	uint8_t p[80];
	int n = msg_auth_build(p, "alice", 5, "s3cret", 6);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(tc_send_frame(fd, FRAME_AUTH, p, (size_t)n), 0);
		cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
		cr_assert_eq(F.type, FRAME_AUTH_REPLY);
		cr_assert_eq(F.len, MSG_AUTH_REPLY_LEN);
		cr_assert_eq(F.payload[0], 0, "failure");
		for (int k = 1; k < MSG_AUTH_REPLY_LEN; k++)
			cr_assert_eq(F.payload[k], 0, "session id all zero on failure");
	}
	/* Without authentication, failures do not close the connection and
	 * every message type stays allowed. */
	cr_assert(tc_ping(fd, 5, 2000));
	cr_assert_eq(tc_send_frame(fd, FRAME_DATA, "x", 1), 0);
	cr_assert(tc_ping(fd, 6, 2000), "DATA got no reply and no error");
	close(fd);
}

Test(messages, data_gets_no_reply)
{
	int fd = tc_connect(S.port);
	uint8_t p[3000];
	memset(p, 0xab, sizeof p);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(tc_send_frame(fd, FRAME_DATA, p, (size_t)(i * 60)), 0);
	cr_assert(tc_ping(fd, 7, 2000), "the first reply is the PONG");
	close(fd);
}

Test(messages, server_to_client_and_unknown_types_are_unsupported)
{
	int fd = tc_connect(S.port);
	static const uint8_t types[] = { FRAME_PONG, FRAME_ECHO_REPLY, FRAME_AUTH_REPLY,
	                                 FRAME_ERROR, 0x00, 0x09, 0x42, 0xfe };
	for (size_t i = 0; i < sizeof types; i++) {
		cr_assert_eq(tc_send_frame(fd, types[i], "abcdefgh", 8), 0);
		cr_assert(tc_expect_error(fd, ERR_UNSUPPORTED_TYPE, 2000), "type %#x", types[i]);
	}
	cr_assert(tc_ping(fd, 8, 2000));
	close(fd);
}

Test(messages, replies_leave_in_request_order)
{
	int fd = tc_connect(S.port);
	/* PING, ECHO, a bad frame, PING: answers in exactly that order. */
	uint8_t ts[8] = { 0, 0, 0, 0, 0, 0, 0, 9 };
	cr_assert_eq(tc_send_frame(fd, FRAME_PING, ts, 8), 0);
	cr_assert_eq(tc_send_frame(fd, FRAME_ECHO, "order", 5), 0);
	cr_assert_eq(tc_send_frame(fd, 0x77, "", 0), 0);
	ts[7] = 10;
	cr_assert_eq(tc_send_frame(fd, FRAME_PING, ts, 8), 0);

	cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_PONG);
	cr_assert_eq(F.payload[7], 9);
	cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_ECHO_REPLY);
	cr_assert(tc_expect_error(fd, ERR_UNSUPPORTED_TYPE, 2000));
	cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_PONG);
	cr_assert_eq(F.payload[7], 10);
	close(fd);
}

Test(messages, five_hundred_pipelined_pings_in_order)
{
	int fd = tc_connect(S.port);
	size_t one = FRAME_OVERHEAD + 8;
	uint8_t *buf = malloc(500 * one);
	for (int i = 0; i < 500; i++) {
		uint8_t ts[8] = { 0 };
		ts[6] = (uint8_t)(i >> 8);
		ts[7] = (uint8_t)i;
		frame_encode(buf + (size_t)i * one, FRAME_PING, ts, 8);
	}
	cr_assert_eq(tc_send(fd, buf, 500 * one), 0, "all 500 sent in one write");
	for (int i = 0; i < 500; i++) {
		cr_assert_eq(tc_read_frame(fd, &F, 5000), 0, "PONG %d", i);
		cr_assert_eq(F.type, FRAME_PONG);
		cr_assert_eq((F.payload[6] << 8) | F.payload[7], i, "PONG %d in order", i);
	}
	free(buf);
	close(fd);
}

Test(messages, frames_split_byte_by_byte)
{
	int fd = tc_connect(S.port);
	uint8_t buf[3 * (FRAME_OVERHEAD + 64)];
	size_t n = 0;
	const uint8_t ts[8] = { 8, 7, 6, 5, 4, 3, 2, 1 };
	n += frame_encode(buf + n, FRAME_PING, ts, 8);
	n += frame_encode(buf + n, FRAME_ECHO, "split me", 8);
	n += frame_encode(buf + n, FRAME_DATA, "data", 4);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(tc_send(fd, buf + i, 1), 0);
		usleep(500); /* separate reads on the server */
	}
	cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_PONG);
	cr_assert_arr_eq(F.payload, ts, 8);
	cr_assert_eq(tc_read_frame(fd, &F, 2000), 0);
	cr_assert_eq(F.type, FRAME_ECHO_REPLY);
	cr_assert_arr_eq(F.payload, "split me", 8);
	cr_assert(tc_ping(fd, 11, 2000), "DATA answered nothing");
	close(fd);
}

Test(messages, large_echo_split_in_odd_chunks)
{
	int fd = tc_connect(S.port);
	size_t len = 65535, size = FRAME_OVERHEAD + len;
	uint8_t *p = malloc(len), *buf = malloc(2 * size);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i ^ (i >> 8));
	frame_encode(buf, FRAME_ECHO, p, (uint16_t)len);
	frame_encode(buf + size, FRAME_ECHO, p, (uint16_t)len);
	/* Chunks of 1, 7, 4093, ... so frames straddle reads everywhere. */
	size_t off = 0, step = 1;
	while (off < 2 * size) {
		size_t k = step < 2 * size - off ? step : 2 * size - off;
		cr_assert_eq(tc_send(fd, buf + off, k), 0);
		off += k;
		step = step * 7 % 9973 + 1;
	}
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(tc_read_frame(fd, &F, 5000), 0);
		cr_assert_eq(F.type, FRAME_ECHO_REPLY);
		cr_assert_eq(F.len, len);
		cr_assert_arr_eq(F.payload, p, len);
	}
	free(p);
	free(buf);
	close(fd);
}
