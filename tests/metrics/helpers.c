/* helpers.c - see helpers.h. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int server_start_random(struct metrics_server_config *cfg,
                        struct metrics_server **out)
{
	uint64_t x = now_ns() ^ ((uint64_t)getpid() << 32);
	int err = -EADDRINUSE;
	if (!cfg->host)
		cfg->host = "127.0.0.1";
	for (int i = 0; i < 200 && err == -EADDRINUSE; i++) {
		/* xorshift64: each Criterion test is its own process, so the
		 * pid and clock make runs pick different ports. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		cfg->port = (uint16_t)(10000 + x % 22000);
		err = metrics_server_start(cfg, out);
	}
	return err;
}

bool json_valid(const char *text, char *err, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/net001-json-%d-XXXXXX", (int)getpid());
	int fd = mkstemp(path);
	if (fd < 0) {
		snprintf(err, cap, "mkstemp: %s", strerror(errno));
		return false;
	}
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' %s 2>&1",
	         path);
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	if (p) {
		n = fread(err, 1, cap - 1, p);
		int st = pclose(p);
		err[n] = '\0';
		unlink(path);
		return WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	snprintf(err, cap, "popen: %s", strerror(errno));
	unlink(path);
	return false;
}
