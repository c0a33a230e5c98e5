/*
 * baseline-epoll.c - a minimal single-threaded epoll echo server: the
 * floor a NET-001 server is compared against. It does not parse frames:
 * whatever a client sends comes back verbatim.
 *
 * Level-triggered epoll, non-blocking sockets. A readable connection is
 * read into one shared buffer and written straight back; if the socket
 * takes only part, the rest is copied into the connection's pending
 * buffer, reading stops (EPOLLIN off) and EPOLLOUT drains it first, so a
 * client that does not read cannot grow the server's memory without bound.
 *
 * --corrupt N (tests only) flips the last byte of every Nth reply, a read
 * echoed back; with a client that sends whole frames, that byte is a CRC.
 *
 * Prints "listening on HOST:PORT" on stdout once it accepts connections;
 * SIGINT or SIGTERM ends it cleanly (exit 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "perf/baseline.h"

#define READ_BUF   (256 * 1024)
#define MAX_EVENTS 256
/* Reads per wakeup for one connection, so one busy client cannot starve
 * the others. */
#define READS_PER_EVENT 4

struct econn {
	struct econn *prev, *next; /* every live connection, for a clean exit */
	int fd;
	uint8_t *pending;      /* unsent reply bytes, NULL when none */
	size_t pend_len, pend_off, pend_cap;
};

struct server {
	int ep;
	int lfd;
	int sfd;               /* signalfd for SIGINT/SIGTERM */
	uint64_t corrupt;      /* 0: honest */
	uint64_t replies;
	uint8_t *buf;
	struct econn listen_tag, signal_tag; /* epoll tags for the two fds */
	struct econn *conns;
};

static void conn_free(struct server *s, struct econn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pending);
	free(c);
}

static int set_events(struct server *s, struct econn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };
	return epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Write p[0..n) back, keeping what the socket will not take. Returns 0,
 * or -1 when the connection is gone. */
static int reply(struct server *s, struct econn *c, uint8_t *p, size_t n)
{
	if (s->corrupt && ++s->replies % s->corrupt == 0)
		p[n - 1] ^= 0xFF;
	size_t off = 0;
	while (off < n) {
		ssize_t w = send(c->fd, p + off, n - off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
		off += (size_t)w;
	}
	if (off == n)
		return 0;
	size_t rest = n - off;
	if (rest > c->pend_cap) {
		uint8_t *np = realloc(c->pending, rest);
		if (!np)
			return -1;
		c->pending = np;
		c->pend_cap = rest;
	}
	memcpy(c->pending, p + off, rest);
	c->pend_len = rest;
	c->pend_off = 0;
	return set_events(s, c, EPOLLOUT) < 0 ? -1 : 0;
}

static void on_readable(struct server *s, struct econn *c)
{
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(c->fd, s->buf, READ_BUF, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || reply(s, c, s->buf, (size_t)n) < 0) {
			conn_free(s, c);
			return;
		}
		if (c->pend_len || (size_t)n < READ_BUF)
			return;
	}
}

static void on_writable(struct server *s, struct econn *c)
{
	while (c->pend_off < c->pend_len) {
		ssize_t w = send(c->fd, c->pending + c->pend_off, c->pend_len - c->pend_off,
		                 MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			conn_free(s, c);
			return;
		}
		c->pend_off += (size_t)w;
	}
	c->pend_len = c->pend_off = 0;
	if (set_events(s, c, EPOLLIN) < 0)
		conn_free(s, c);
}

static void on_accept(struct server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* EMFILE and friends: leave the rest in the backlog. */
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct econn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
	}
}

int main(int argc, char **argv)
{
	struct baseline_opt o = { .host = "127.0.0.1", .port = 7000 };
	struct server s = { .ep = -1, .lfd = -1, .sfd = -1 };
	int status = 1;

	if (baseline_parse(&o, argc, argv, "baseline-epoll", "epoll, one thread") < 0)
		return 2;
	if (o.help)
		return 0;
	s.corrupt = o.corrupt;

	sigset_t mask;
	baseline_prepare(&mask);

	s.buf = malloc(READ_BUF);
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	s.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (!s.buf || s.ep < 0 || s.sfd < 0) {
		perror("baseline-epoll: setup");
		goto out;
	}
	s.lfd = baseline_listen("baseline-epoll", o.host, o.port, true);
	if (s.lfd < 0)
		goto out;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &s.listen_tag };
	epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &e);
	e.data.ptr = &s.signal_tag;
	epoll_ctl(s.ep, EPOLL_CTL_ADD, s.sfd, &e);
	printf("listening on %s:%u\n", o.host, (unsigned)o.port);
	fflush(stdout);

	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(s.ep, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("baseline-epoll: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			if (tag == &s.signal_tag) {
				status = 0;
				goto out;
			}
			if (tag == &s.listen_tag) {
				on_accept(&s);
				continue;
			}
			struct econn *c = tag;
			if (evs[i].events & EPOLLOUT)
				on_writable(&s, c);
			else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				on_readable(&s, c);
		}
	}
out:
	while (s.conns)
		conn_free(&s, s.conns);
	if (s.lfd >= 0)
		close(s.lfd);
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.ep >= 0)
		close(s.ep);
	free(s.buf);
	return status;
}
