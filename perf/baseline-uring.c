/*
 * baseline-uring.c - a minimal single-threaded io_uring echo server: the
 * floor a NET-001 server on io_uring is compared against. It does not
 * parse frames: whatever a client sends comes back verbatim.
 *
 * Multishot accept; one multishot recv per connection selecting from a
 * provided-buffer ring; each received buffer is sent back as it is, with
 * no copy. A connection has at most one send in flight (so replies keep
 * their order); buffers waiting behind it are chained through next_bid[].
 * A buffer goes back to the ring when its send completes. When the ring
 * runs dry (ENOBUFS ends the multishot recv), the connection waits on a
 * stall list and is re-armed once buffers come back.
 *
 * --corrupt N (tests only) flips the last byte of every Nth reply.
 * Prints "listening on HOST:PORT" once it accepts; SIGINT or SIGTERM ends
 * it cleanly (exit 0).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "perf/baseline.h"
#include "core/bufring.h"
#include "perf/perfring.h"

#define RING_ENTRIES 4096
#define CQ_ENTRIES   65536
#define BUF_COUNT    4096
#define BUF_SIZE     16384
#define BGID         1
#define NO_BID       0xFFFFu

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_SIGNAL };

struct uconn {
	struct uconn *prev, *next;  /* all live connections */
	struct uconn *stall_next;   /* on the stall list when stalled */
	int fd;
	uint16_t head, tail;        /* queued buffers, head is being sent */
	uint32_t off;               /* bytes of head already sent */
	bool send_busy;
	bool recv_armed;
	bool stalled;
	bool closing;
};

struct server {
	struct io_uring ring;
	struct bufring br;
	int lfd, sfd;
	uint64_t corrupt, replies;
	uint32_t buf_len[BUF_COUNT];   /* bytes received into each buffer */
	uint16_t next_bid[BUF_COUNT];  /* queue links */
	struct uconn *conns;
	struct uconn *stalled;
	bool stop;
};

static inline uint64_t ud(enum op op, struct uconn *c)
{
	return (uint64_t)(uintptr_t)c | (uint64_t)op;
}

static void arm_accept(struct server *s)
{
	struct io_uring_sqe *sqe = perfring_sqe(&s->ring);
	io_uring_prep_multishot_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, NULL));
}

static void arm_recv(struct server *s, struct uconn *c)
{
	struct io_uring_sqe *sqe = perfring_sqe(&s->ring);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, ud(OP_RECV, c));
	c->recv_armed = true;
}

static void send_head(struct server *s, struct uconn *c)
{
	uint16_t bid = c->head;
	struct io_uring_sqe *sqe = perfring_sqe(&s->ring);
	io_uring_prep_send(sqe, c->fd, bufring_addr(&s->br, bid) + c->off,
	                   s->buf_len[bid] - c->off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud(OP_SEND, c));
	c->send_busy = true;
}

/* Give back every queued buffer and, once no request names the
 * connection any more, free it. */
static void conn_maybe_free(struct server *s, struct uconn *c)
{
	if (!c->closing || c->send_busy || c->recv_armed || c->stalled)
		return;
	while (c->head != NO_BID) {
		uint16_t bid = c->head;
		c->head = s->next_bid[bid];
		bufring_put(&s->br, bid);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);
	free(c);
}

static void conn_close(struct server *s, struct uconn *c)
{
	if (!c->closing) {
		c->closing = true;
		/* Ends a multishot recv still armed. */
		shutdown(c->fd, SHUT_RDWR);
	}
	conn_maybe_free(s, c);
}

static void on_accept(struct server *s, const struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept(s);
	if (cqe->res < 0)
		return;
	struct uconn *c = calloc(1, sizeof *c);
	if (!c) {
		close(cqe->res);
		return;
	}
	int one = 1;
	c->fd = cqe->res;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->head = c->tail = NO_BID;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	arm_recv(s, c);
}

static void on_recv(struct server *s, struct uconn *c, const struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->recv_armed = false;
	if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		bufring_took(&s->br);
		if (c->closing) {
			bufring_put(&s->br, bid);
		} else {
			s->buf_len[bid] = (uint32_t)cqe->res;
			if (s->corrupt && ++s->replies % s->corrupt == 0)
				bufring_addr(&s->br, bid)[cqe->res - 1] ^= 0xFF;
			s->next_bid[bid] = NO_BID;
			if (c->head == NO_BID)
				c->head = bid;
			else
				s->next_bid[c->tail] = bid;
			c->tail = bid;
			if (!c->send_busy) {
				c->off = 0;
				send_head(s, c);
			}
		}
	}
	if (c->closing) {
		conn_maybe_free(s, c);
		return;
	}
	if (cqe->res == -ENOBUFS) {
		c->stalled = true;
		c->stall_next = s->stalled;
		s->stalled = c;
		return;
	}
	if (cqe->res <= 0) {
		conn_close(s, c);
		return;
	}
	if (!c->recv_armed)
		arm_recv(s, c);
}

static void on_send(struct server *s, struct uconn *c, int res)
{
	c->send_busy = false;
	if (res < 0 || c->closing) {
		conn_close(s, c);
		return;
	}
	uint16_t bid = c->head;
	c->off += (uint32_t)res;
	if (c->off < s->buf_len[bid]) {
		send_head(s, c);
		return;
	}
	c->head = s->next_bid[bid];
	if (c->head == NO_BID)
		c->tail = NO_BID;
	bufring_put(&s->br, bid);
	c->off = 0;
	if (c->head != NO_BID)
		send_head(s, c);
}

int main(int argc, char **argv)
{
	struct baseline_opt o = { .host = "127.0.0.1", .port = 7001 };
	struct server *s;
	int status = 1, ret;
	struct signalfd_siginfo si;

	if (baseline_parse(&o, argc, argv, "baseline-uring", "io_uring, one thread") < 0)
		return 2;
	if (o.help)
		return 0;

	sigset_t mask;
	baseline_prepare(&mask);

	s = calloc(1, sizeof *s);
	if (!s) {
		fprintf(stderr, "baseline-uring: out of memory\n");
		return 1;
	}
	s->corrupt = o.corrupt;
	s->lfd = s->sfd = -1;
	ret = perfring_init(&s->ring, RING_ENTRIES, CQ_ENTRIES);
	if (ret < 0) {
		fprintf(stderr, "baseline-uring: io_uring: %s\n", strerror(-ret));
		free(s);
		return 1;
	}
	ret = bufring_init(&s->br, &s->ring, BGID, BUF_COUNT, BUF_SIZE);
	if (ret < 0) {
		fprintf(stderr, "baseline-uring: buffer ring: %s\n", strerror(-ret));
		goto out;
	}
	s->sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	s->lfd = baseline_listen("baseline-uring", o.host, o.port, false);
	if (s->sfd < 0 || s->lfd < 0)
		goto out;
	arm_accept(s);
	struct io_uring_sqe *sqe = perfring_sqe(&s->ring);
	io_uring_prep_read(sqe, s->sfd, &si, sizeof si, 0);
	io_uring_sqe_set_data64(sqe, ud(OP_SIGNAL, NULL));
	printf("listening on %s:%u\n", o.host, (unsigned)o.port);
	fflush(stdout);

	while (!s->stop) {
		struct io_uring_cqe *cqe;
		ret = io_uring_submit_and_wait(&s->ring, 1);
		if (ret < 0 && ret != -EINTR) {
			fprintf(stderr, "baseline-uring: io_uring_enter: %s\n", strerror(-ret));
			goto out;
		}
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&s->ring, head, cqe) {
			uint64_t d = io_uring_cqe_get_data64(cqe);
			struct uconn *c = (struct uconn *)(uintptr_t)(d & ~(uint64_t)7);
			switch ((enum op)(d & 7)) {
			case OP_ACCEPT:
				on_accept(s, cqe);
				break;
			case OP_RECV:
				on_recv(s, c, cqe);
				break;
			case OP_SEND:
				on_send(s, c, cqe->res);
				break;
			case OP_SIGNAL:
				s->stop = true;
				break;
			}
			seen++;
		}
		io_uring_cq_advance(&s->ring, seen);
		bufring_flush(&s->br);
		/* Buffers came back: wake the connections that ran dry. */
		while (s->stalled) {
			struct uconn *c = s->stalled;
			s->stalled = c->stall_next;
			c->stalled = false;
			if (c->closing)
				conn_maybe_free(s, c);
			else
				arm_recv(s, c);
		}
	}
	status = 0;
out:
	/* Exiting the ring cancels what is in flight; then nothing names the
	 * connections or the buffers any more. */
	io_uring_queue_exit(&s->ring);
	bufring_destroy(&s->br, NULL);
	while (s->conns) {
		struct uconn *c = s->conns;
		s->conns = c->next;
		close(c->fd);
		free(c);
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->sfd >= 0)
		close(s->sfd);
	free(s);
	return status;
}
