/*
 * Byte ring tests: sizes, full and empty edges, the padded end of the
 * buffer, reserve/commit in place, drops, the wake rule, and a two-thread
 * stress test with an eventfd sleeper (every record once, in order, intact;
 * a lost wake-up hangs and fails by timeout).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/bytering.h"

TestSuite(bytering, .timeout = 120);

Test(bytering, sizes)
{
	struct bytering r;
	cr_assert_eq(bytering_init(&r, 1, 16), 0);
	cr_assert_eq(r.cap, 4096);
	bytering_destroy(&r);
	cr_assert_eq(bytering_init(&r, 5000, 16), 0);
	cr_assert_eq(r.cap, 8192);
	bytering_destroy(&r);
	/* Twice the largest record at least. */
	cr_assert_eq(bytering_init(&r, 4096, 65547), 0);
	cr_assert_geq(r.cap, 2 * bytering_rec_size(65547));
	bytering_destroy(&r);
	cr_assert_eq(bytering_init(&r, BYTERING_MAX_CAP * 2, 16), -EINVAL);
	bytering_destroy(&r); /* safe after a failed init */
}

Test(bytering, full_empty_and_the_padded_end)
{
	struct bytering r;
	uint8_t buf[3000], *p;
	uint32_t len = 0;
	bool was_empty;
	cr_assert_eq(bytering_init(&r, 4096, 1000), 0);
	cr_assert_null(bytering_peek(&r, &len));
	cr_assert(bytering_idle(&r));

	/* 4096 bytes hold four records of 1000 (1008 with the header each)
	 * and not five. */
	for (int i = 0; i < 4; i++) {
		memset(buf, 'a' + i, 1000);
		cr_assert(bytering_push(&r, buf, 1000, &was_empty));
		cr_assert_eq(was_empty, i == 0);
	}
	cr_assert_not(bytering_push(&r, buf, 1000, &was_empty));
	bytering_drop(&r);
	cr_assert_eq(bytering_drops(&r), 1);
	cr_assert_eq(bytering_used(&r), 4 * 1008);
	cr_assert_not(bytering_idle(&r));

	/* Release one: a fifth does not fit before the end (64 bytes left),
	 * so the end is padded and it goes to the start. */
	p = bytering_peek(&r, &len);
	cr_assert_eq(len, 1000);
	cr_assert_eq(p[0], 'a');
	bytering_release(&r, len);
	memset(buf, 'e', 1100);
	cr_assert_not(bytering_push(&r, buf, 1100, &was_empty), "1100 + pad is more than room");
	cr_assert(bytering_push(&r, buf, 1000, &was_empty));
	cr_assert_not(was_empty);
	cr_assert_eq(bytering_used(&r), 4 * 1008 + 64);
	for (int i = 1; i < 5; i++) {
		p = bytering_peek(&r, &len);
		cr_assert_not_null(p);
		cr_assert_eq(len, 1000);
		cr_assert_eq(p[0], 'a' + i);
		cr_assert_eq(p[999], 'a' + i);
		if (i == 4)
			cr_assert_eq(p, r.buf + BYTERING_HDR, "the padded record starts the buffer");
		bytering_release(&r, len);
	}
	cr_assert_null(bytering_peek(&r, &len));
	cr_assert(bytering_idle(&r));
	/* Zero-length records. */
	cr_assert(bytering_push(&r, buf, 0, &was_empty));
	cr_assert(was_empty);
	p = bytering_peek(&r, &len);
	cr_assert_not_null(p);
	cr_assert_eq(len, 0);
	bytering_release(&r, 0);
	cr_assert_null(bytering_peek(&r, &len));
	bytering_destroy(&r);
}

Test(bytering, reserve_in_place_and_consumer_writes)
{
	struct bytering r;
	uint32_t len;
	bool was_empty;
	cr_assert_eq(bytering_init(&r, 4096, 100), 0);
	uint8_t *d = bytering_reserve(&r, 64);
	cr_assert_not_null(d);
	memset(d + 16, 'x', 48);
	/* Not visible before the commit. */
	cr_assert_null(bytering_peek(&r, &len));
	bytering_commit(&r, &was_empty);
	cr_assert(was_empty);
	uint8_t *p = bytering_peek(&r, &len);
	cr_assert_eq(p, d);
	cr_assert_eq(len, 64);
	memset(p, 'h', 16); /* the consumer fills a header in place */
	cr_assert_eq(p[15], 'h');
	cr_assert_eq(p[16], 'x');
	bytering_release(&r, len);
	bytering_destroy(&r);
}

/* ---- two threads ---------------------------------------------------------- */

#define RECORDS 200000

struct run {
	struct bytering r;
	int efd;
	_Atomic bool done;
	uint64_t drops;
};

static uint32_t rec_len(uint32_t i)
{
	uint32_t h = i * 2654435761u;
	return (h >> 7) % (i % 101 == 0 ? 3000 : 200);
}

static void *producer(void *arg)
{
	struct run *run = arg;
	uint8_t buf[3000 + 4];
	for (uint32_t i = 0; i < RECORDS;) {
		uint32_t n = rec_len(i) + 4;
		memcpy(buf, &i, 4);
		for (uint32_t j = 4; j < n; j++)
			buf[j] = (uint8_t)(i + j);
		bool was_empty;
		if (!bytering_push(&run->r, buf, n, &was_empty)) {
			sched_yield(); /* full: here we wait (a worker would drop) */
			continue;
		}
		if (was_empty) {
			uint64_t one = 1;
			cr_assert_eq(write(run->efd, &one, 8), 8);
		}
		i++;
	}
	return NULL;
}

Test(bytering, two_threads_every_record_once_in_order_no_lost_wakeup)
{
	struct run run = { .efd = eventfd(0, 0) };
	cr_assert_eq(bytering_init(&run.r, 8192, 3004), 0);
	pthread_t t;
	pthread_create(&t, NULL, producer, &run);
	uint32_t next = 0;
	while (next < RECORDS) {
		uint32_t len;
		uint8_t *p;
		while ((p = bytering_peek(&run.r, &len))) {
			uint32_t i;
			memcpy(&i, p, 4);
			cr_assert_eq(i, next, "record %u where %u was due", i, next);
			cr_assert_eq(len, rec_len(i) + 4);
			for (uint32_t j = 4; j < len; j++)
				cr_assert_eq(p[j], (uint8_t)(i + j));
			bytering_release(&run.r, len);
			next++;
		}
		if (next == RECORDS || !bytering_idle(&run.r))
			continue;
		/* Sleep until the producer says so: a lost wake-up hangs here. */
		uint64_t v;
		cr_assert_eq(read(run.efd, &v, 8), 8);
	}
	pthread_join(t, NULL);
	cr_assert_null(bytering_peek(&run.r, &(uint32_t){ 0 }));
	bytering_destroy(&run.r);
	close(run.efd);
}
