/*
 * http_client.c - see http_client.h.
 */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int http_conn_open(struct http_conn *c, uint16_t port)
{
	return http_conn_open_rcvbuf(c, port, 0);
}

int http_conn_open_rcvbuf(struct http_conn *c, uint16_t port, int rcvbuf)
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

void http_conn_close(struct http_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

int http_conn_send(struct http_conn *c, const char *s, size_t n)
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
static ssize_t fill(struct http_conn *c)
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

static void consume(struct http_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

int http_read_response(struct http_conn *c, struct http_resp *r)
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
	if (!http_resp_header(r, "Content-Length", cl, sizeof(cl)))
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

void http_resp_free(struct http_resp *r)
{
	free(r->head);
	free(r->body);
	r->head = r->body = NULL;
}

bool http_resp_header(const struct http_resp *r, const char *name, char *dst,
                      size_t cap)
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

bool http_conn_wait_eof(struct http_conn *c)
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

int http_request(uint16_t port, const void *raw, size_t len, struct http_resp *r,
                 bool *closed)
{
	struct http_conn c;
	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (closed)
		*closed = false;
	if (http_conn_open(&c, port) < 0)
		return -1;
	int st = -1;
	if (http_conn_send(&c, raw, len) == 0 && http_read_response(&c, r) == 0) {
		st = r->status;
		if (closed)
			*closed = http_conn_wait_eof(&c);
	}
	http_conn_close(&c);
	return st;
}

int http_method(uint16_t port, const char *method, const char *path,
                struct http_resp *r)
{
	char req[512];
	snprintf(req, sizeof(req),
	         "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
	         method, path);
	bool closed;
	return http_request(port, req, strlen(req), r, &closed);
}

int http_get(uint16_t port, const char *path, struct http_resp *r)
{
	return http_method(port, "GET", path, r);
}

char *http_scrape(uint16_t port)
{
	struct http_resp r;
	int status = http_get(port, "/metrics", &r);
	char *body = status == 200 ? r.body : NULL;
	if (body)
		r.body = NULL;
	http_resp_free(&r);
	return body;
}
