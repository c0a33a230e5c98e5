/* helpers.c - see helpers.h. */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
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

int conn_open(struct conn *c, uint16_t port)
{
	return conn_open_rcvbuf(c, port, 0);
}

int conn_open_rcvbuf(struct conn *c, uint16_t port, int rcvbuf)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	/* Before connect, so the advertised window is small from the start. */
	if (rcvbuf)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;
		close(c->fd);
		c->fd = -1;
		return err;
	}
	c->cap = 65536;
	c->buf = malloc(c->cap);
	if (!c->buf)
		abort();
	return 0;
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

int conn_send(struct conn *c, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read more into c->buf. Returns bytes read, 0 on EOF, -1 on error. */
static ssize_t fill(struct conn *c)
{
	if (c->len == c->cap) {
		c->cap *= 2;
		c->buf = realloc(c->buf, c->cap);
		if (!c->buf)
			abort();
	}
	ssize_t r;
	do
		r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		c->len += (size_t)r;
	return r;
}

static void consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

int conn_read_response(struct conn *c, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	r->status = -1;
	char *end;
	for (;;) {
		end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
		if (end)
			break;
		if (fill(c) <= 0)
			return -1;
	}
	size_t head_len = (size_t)(end - c->buf) + 4;
	r->head = malloc(head_len + 1);
	memcpy(r->head, c->buf, head_len);
	r->head[head_len] = '\0';
	consume(c, head_len);
	if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
		return -1;
	char cl[32];
	if (!resp_header(r, "Content-Length", cl, sizeof(cl)))
		return -1;
	r->body_len = strtoull(cl, NULL, 10);
	while (c->len < r->body_len)
		if (fill(c) <= 0)
			return -1;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, c->buf, r->body_len);
	r->body[r->body_len] = '\0';
	consume(c, r->body_len);
	return 0;
}

void resp_free(struct resp *r)
{
	free(r->head);
	free(r->body);
	r->head = r->body = NULL;
}

bool resp_header(const struct resp *r, const char *name, char *dst, size_t cap)
{
	size_t n = strlen(name);
	const char *p = r->head ? strstr(r->head, "\r\n") : NULL;
	while (p && p[2] != '\r') {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			const char *e = strstr(v, "\r\n");
			size_t len = (size_t)(e - v);
			if (len >= cap)
				len = cap - 1;
			memcpy(dst, v, len);
			dst[len] = '\0';
			return true;
		}
		p = strstr(p, "\r\n");
	}
	return false;
}

int http_get(uint16_t port, const char *path, struct resp *r)
{
	struct conn c;
	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (conn_open(&c, port) < 0)
		return -1;
	char req[512];
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                 "Connection: close\r\n\r\n", path);
	int st = -1;
	if (conn_send(&c, req, (size_t)n) == 0 && conn_read_response(&c, r) == 0)
		st = r->status;
	conn_close(&c);
	return st;
}

bool conn_wait_eof(struct conn *c)
{
	for (;;) {
		c->len = 0;
		ssize_t r = fill(c);
		if (r == 0)
			return true;
		if (r < 0)
			return errno == ECONNRESET;
	}
}

static const char *find_line(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;
	while (p && *p) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return p + n + 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

bool sample(const char *text, const char *series, double *out)
{
	const char *v = find_line(text, series);
	if (!v)
		return false;
	char *end;
	*out = strtod(v, &end);
	return end != v && (*end == '\n' || *end == '\0');
}

bool sample_u64(const char *text, const char *series, uint64_t *out)
{
	const char *v = find_line(text, series);
	if (!v)
		return false;
	char *end;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return errno == 0 && end != v && (*end == '\n' || *end == '\0');
}

unsigned count_lines(const char *text, const char *line)
{
	size_t n = strlen(line);
	unsigned count = 0;
	const char *p = text;
	while (p && *p) {
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			count++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return count;
}

const char *promtool_path(void)
{
	static char path[4096];
	const char *env = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s", env ? env : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/promtool", d);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}
