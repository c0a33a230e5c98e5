/*
 * hello_client.c - a small program built against the *installed*
 * libnet001 with nothing but `pkg-config --cflags --libs net001` (the
 * suite 'install', test_install.c). It talks to a real server:
 *
 *   hello_client HOST PORT
 *
 * PING, ECHO (a short text, nothing, and a largest payload that arrives
 * over many reads), the codec's own calls, and prints where libnet001 was
 * loaded from. Exit 0 and "ok" as the last line when every answer was
 * right; 1 and a message otherwise.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <net001/client.h>

static int fail(const char *what, int r)
{
	fprintf(stderr, "hello_client: %s: %s\n", what, n1c_strerror(r));
	return 1;
}

static int echo_check(struct n1c *c, const void *p, size_t len)
{
	struct n1c_frame reply;
	int r = n1c_echo(c, p, len, &reply);
	if (r < 0)
		return fail("echo", r);
	if (reply.type != FRAME_ECHO_REPLY || reply.len != len ||
	    (len && memcmp(reply.payload, p, len) != 0)) {
		fprintf(stderr, "hello_client: echo of %zu bytes came back different\n", len);
		return 1;
	}
	return 0;
}

/* The codec, straight from the installed headers. */
static int codec_check(void)
{
	uint8_t buf[64];
	size_t n = frame_encode(buf, FRAME_ECHO, "hi", 2);
	static const uint8_t want[] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x03, 0x00, 0x02,
	                                0x68, 0x69, 0x97, 0x1f, 0xe5, 0x14 };
	struct frame_view f;
	if (n != sizeof want || memcmp(buf, want, n) != 0 ||
	    frame_decode(NULL, buf, n, &f) != (int)n || f.len != 2 ||
	    frame_crc(0, "123456789", 9) != 0xCBF43926u ||
	    strcmp(msg_error_name(ERR_BAD_CRC), "BAD_CRC") != 0) {
		fprintf(stderr, "hello_client: the codec disagrees with PROTOCOL.md\n");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: hello_client HOST PORT\n");
		return 2;
	}
	if (codec_check())
		return 1;
	puts("codec ok");

	struct n1c *c;
	int r = n1c_connect(&c, argv[1], (uint16_t)atoi(argv[2]), 5000);
	if (r < 0)
		return fail("connect", r);
	uint64_t rtt = 0;
	r = n1c_ping(c, &rtt);
	if (r < 0) {
		n1c_close(c);
		return fail("ping", r);
	}
	printf("ping ok (%.3f ms)\n", (double)rtt / 1e6);

	size_t big = FRAME_MAX_PAYLOAD;
	uint8_t *p = malloc(big);
	if (!p) {
		n1c_close(c);
		return fail("malloc", -ENOMEM);
	}
	for (size_t i = 0; i < big; i++)
		p[i] = (uint8_t)(i * 131u + 7u);
	int bad = echo_check(c, "hello, net001", 13) || echo_check(c, "", 0) ||
	          echo_check(c, p, big);
	free(p);
	n1c_close(c);
	if (bad)
		return 1;
	puts("echo ok");

	/* Where the call came from: the installed libnet001.so, or this
	 * program itself when linked statically. */
	int (*fn)(struct n1c **, const char *, uint16_t, int) = n1c_connect;
	void *addr;
	memcpy(&addr, &fn, sizeof addr);
	Dl_info info;
	if (dladdr(addr, &info) && info.dli_fname)
		printf("libnet001 from %s\n", info.dli_fname);
	puts("ok");
	return 0;
}
