/* helpers.c - see helpers.h. */
#include "helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ports.h"
#include "proto/clock.h"

void shards_make(struct shard_set *s, unsigned n)
{
	s->n = n;
	s->shards = aligned_alloc(METRICS_CACHELINE,
	                          (n ? n : 1) * sizeof(struct metrics_shard));
	s->ptrs = calloc(n ? n : 1, sizeof(*s->ptrs));
	if (!s->shards || !s->ptrs)
		abort();
	for (unsigned i = 0; i < n; i++) {
		metrics_shard_init(&s->shards[i]);
		s->ptrs[i] = &s->shards[i];
	}
}

void shards_free(struct shard_set *s)
{
	free(s->shards);
	free(s->ptrs);
	s->shards = NULL;
	s->ptrs = NULL;
}

uint64_t now_ns(void)
{
	return clock_now_ns();
}

int server_start_random(struct metrics_server_config *cfg,
                        struct metrics_server **out)
{
	int err = -EADDRINUSE;
	if (!cfg->host)
		cfg->host = "127.0.0.1";
	for (int i = 0; i < 200 && err == -EADDRINUSE; i++) {
		cfg->port = port_random();
		err = metrics_server_start(cfg, out);
	}
	return err;
}
