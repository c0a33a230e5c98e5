/*
 * race_bytering - the byte ring's two-thread scenario without Criterion,
 * so it runs under ThreadSanitizer (suite 'tsan'): 300,000 records of
 * varied sizes through a small ring, a producer that also counts drops
 * when full, a consumer that sleeps on an eventfd (a lost wake-up hangs
 * and the test times out). Exits 0 when every record arrived once, in
 * order and intact, and the drops add up.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/bytering.h"

#define RECORDS 300000u

static struct bytering R;
static int efd;
static uint32_t pushed;
static atomic_bool finished;

static uint32_t rec_len(uint32_t i)
{
	return (i * 2654435761u >> 9) % (i % 61 == 0 ? 2000 : 120);
}

static void *producer(void *arg)
{
	uint8_t buf[2000 + 8];
	(void)arg;
	for (uint32_t i = 0; i < RECORDS; i++) {
		uint32_t n = rec_len(pushed) + 8;
		memcpy(buf, &pushed, 4);
		memcpy(buf + 4, &i, 4);
		for (uint32_t j = 8; j < n; j++)
			buf[j] = (uint8_t)(pushed ^ j);
		bool was_empty;
		if (!bytering_push(&R, buf, n, &was_empty)) {
			bytering_drop(&R); /* a worker drops, it never waits */
			usleep(20);        /* (and the consumer gets to run) */
			continue;
		}
		pushed++;
		if (was_empty) {
			uint64_t one = 1;
			if (write(efd, &one, 8) != 8)
				return (void *)1;
		}
	}
	/* The end: a flag, then one more wake-up. */
	atomic_store_explicit(&finished, true, memory_order_release);
	uint64_t one = 1;
	if (write(efd, &one, 8) != 8)
		return (void *)1;
	return NULL;
}

int main(void)
{
	efd = eventfd(0, 0);
	if (efd < 0 || bytering_init(&R, 16384, 2008) != 0)
		return 1;
	pthread_t t;
	pthread_create(&t, NULL, producer, NULL);
	uint32_t next = 0;
	int64_t last_i = -1;
	for (;;) {
		uint32_t len;
		uint8_t *p;
		while ((p = bytering_peek(&R, &len))) {
			uint32_t k, i;
			memcpy(&k, p, 4);
			memcpy(&i, p + 4, 4);
			if (k != next || len != rec_len(k) + 8 || (int64_t)i <= last_i) {
				fprintf(stderr, "record %u (try %u, %u bytes) where %u was due\n", k, i,
				        len, next);
				return 1;
			}
			for (uint32_t j = 8; j < len; j++)
				if (p[j] != (uint8_t)(k ^ j)) {
					fprintf(stderr, "record %u corrupted at %u\n", k, j);
					return 1;
				}
			last_i = i;
			bytering_release(&R, len);
			next++;
		}
		bool fin = atomic_load_explicit(&finished, memory_order_acquire);
		if (!bytering_idle(&R))
			continue;
		if (fin)
			break; /* everything it pushed before the flag is taken */
		uint64_t v;
		if (read(efd, &v, 8) != 8)
			return 1;
	}
	void *rc;
	pthread_join(t, &rc);
	uint64_t drops = bytering_drops(&R);
	if (rc || next + drops != RECORDS) {
		fprintf(stderr, "%u received + %llu dropped != %u\n", next,
		        (unsigned long long)drops, RECORDS);
		return 1;
	}
	printf("race-bytering: %u records received, %llu dropped when full\n", next,
	       (unsigned long long)drops);
	bytering_destroy(&R);
	close(efd);
	return 0;
}
