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
#include <unistd.h>

#include "frame.h"
#include "harness.h"
#include "msg.h"
#include "timing.h"

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
