/*
 * client.c - libnet001, the blocking NET-001 client. See client.h.
 *
 * Receive path: bytes are read into rbuf (a fixed 16 KiB) and go through
 * the codec's reassembler (proto/reasm.h): a frame lying wholly in what
 * was read is handed out as a view into rbuf, valid until the next read;
 * only a frame that straddles reads is copied, into the reassembly buffer
 * (ra.buf, grown on demand up to one largest frame, 65547 bytes).
 *
 *   rbuf: [ taken | bytes not yet looked at ... | free ]
 *         0       rpos                          rlen   RBUF_SIZE
 *
 * Requests (ping, echo, auth, sync) send one frame and then read frames
 * until their answer comes; everything else read meanwhile is sorted by
 * await_answer() (queue, drop as late, or fail the request).
 */
#include "net/client/client.h"
#include "proto/clock.h"
#include "proto/reasm.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF_SIZE 16384u
/* First reassembly buffer; it doubles up to FRAME_MAX_SIZE as frames need. */
#define REASM_INITIAL 4096u
#define SRV_TEXT_MAX 255

/* Answer types a request can wait for, as indexes into n1c.late[]. */
enum { LATE_PONG, LATE_ECHO, LATE_AUTH, LATE_N };

struct n1c_qent {
	uint8_t *payload; /* malloc'd copy; NULL when len is 0 */
	uint16_t len;
	uint8_t type;
};

struct n1c {
	int fd;          /* -1 once the stream is unusable */
	SSL_CTX *tls_ctx; /* with n1c_start_tls() */
	SSL *tls;
	uint8_t *tls_out; /* one whole frame, so it leaves as one record */
	int timeout_ms;  /* request timeout, -1 for ever */

	uint8_t *rbuf;   /* RBUF_SIZE bytes */
	uint32_t rpos, rlen;
	struct frame_reasm ra; /* a frame straddling reads; buffer malloc'd */
	struct frame_decoder dec;

	/* Ring of frames set aside while a request waited. */
	struct n1c_qent queue[N1C_QUEUE_MAX];
	unsigned qhead, qcount;
	uint8_t *held;   /* payload handed out by n1c_recv(), freed next call */
	uint64_t dropped;

	/* BROADCAST/DATA frames sent since the last answer: see client.h. */
	uint32_t unanswered;
	/* Answers still expected by requests that gave up. */
	uint32_t late[LATE_N];
	uint64_t last_ping_ts;

	unsigned srv_code;
	char srv_text[SRV_TEXT_MAX + 1];
};

static int64_t now_ns(void)
{
	return (int64_t)clock_now_ns();
}

/* -1 (no deadline) for timeout_ms < 0. */
static int64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
}

/* poll() timeout left until deadline, rounded up; 0 once it has passed. */
static int ms_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ns();
	if (left <= 0)
		return 0;
	int64_t ms = (left + 999999) / 1000000;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Wait for events on fd until deadline: 0, N1C_ETIMEOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r = poll(&p, 1, ms_left(deadline));
	if (r < 0)
		return -errno;
	if (r == 0)
		return N1C_ETIMEOUT;
	return 0;
}

static int sys_err(int e)
{
	if (e == EPIPE || e == ECONNRESET || e == ECONNABORTED)
		return N1C_ECLOSED;
	return -e;
}

/* The stream can no longer be trusted: close it, keep the queue. */
static void client_break(struct n1c *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->tls) {
		SSL_free(c->tls);
		c->tls = NULL;
	}
}

/*
 * After an SSL_* call returned k <= 0: wait as OpenSSL asks (0 to retry),
 * or the error. The socket is non-blocking, so "want" means "poll".
 */
static int tls_wait(struct n1c *c, int k, int64_t deadline)
{
	int e = SSL_get_error(c->tls, k);
	ERR_clear_error();
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c->fd, POLLIN, deadline);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c->fd, POLLOUT, deadline);
	case SSL_ERROR_ZERO_RETURN:
		return N1C_ECLOSED;
	case SSL_ERROR_SYSCALL:
		return errno ? sys_err(errno) : N1C_ECLOSED;
	default:
		return N1C_ETLS;
	}
}

static void release_held(struct n1c *c)
{
	free(c->held);
	c->held = NULL;
}

/* ---- connect -------------------------------------------------------------- */

static int gai_err(int g)
{
	switch (g) {
	case EAI_AGAIN:  return N1C_ERESOLVE_AGAIN;
	case EAI_MEMORY: return -ENOMEM;
	case EAI_SYSTEM: return errno ? -errno : N1C_ERESOLVE;
	default:         return N1C_ERESOLVE; /* NONAME, NODATA, FAIL, ... */
	}
}

/* One address: a connected non-blocking socket, or an error. */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                ai->ai_protocol);
	if (fd < 0)
		return -errno;

	int r;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			goto fail;
		}
		r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			goto fail;
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
			r = -errno;
			goto fail;
		}
		if (soerr) {
			r = -soerr;
			goto fail;
		}
	}

	/* Requests are small and answered one at a time: Nagle only adds delay. */
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
		r = -errno;
		goto fail;
	}
	return fd;

fail:
	close(fd);
	return r;
}

int n1c_connect(struct n1c **out, const char *host, uint16_t port, int timeout_ms)
{
	*out = NULL;
	if (!host || !*host || port == 0)
		return N1C_EINVAL;

	int64_t deadline = deadline_after(timeout_ms);
	char service[8];
	snprintf(service, sizeof service, "%u", (unsigned)port);
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	errno = 0;
	/* "localhost" is the loopback address by definition (RFC 6761), even
	 * on a system without /etc/hosts. */
	if (strcasecmp(host, "localhost") == 0)
		host = "127.0.0.1";
	int g = getaddrinfo(host, service, &hints, &res);
	if (g != 0)
		return gai_err(g);

	int r = N1C_ERESOLVE;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		r = connect_one(ai, deadline);
		if (r >= 0 || r == N1C_ETIMEOUT || r == -EINTR)
			break;
	}
	freeaddrinfo(res);
	if (r < 0)
		return r;

	int fd = r;
	struct n1c *c = calloc(1, sizeof *c);
	if (!c)
		goto nomem;
	c->rbuf = malloc(RBUF_SIZE);
	if (!c->rbuf)
		goto nomem;
	c->fd = fd;
	c->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	*out = c;
	return 0;

nomem:
	free(c);
	close(fd);
	return -ENOMEM;
}

int n1c_start_tls(struct n1c *c, const char *host, const char *ca_file, bool verify)
{
	if (c->fd < 0)
		return N1C_ECLOSED;
	if (c->tls)
		return N1C_EINVAL;
	int64_t deadline = deadline_after(c->timeout_ms);

	c->tls_out = malloc(FRAME_MAX_SIZE);
	c->tls_ctx = SSL_CTX_new(TLS_client_method());
	if (!c->tls_out || !c->tls_ctx)
		goto fail_mem;
	SSL_CTX_set_min_proto_version(c->tls_ctx, TLS1_2_VERSION);
	if (verify) {
		int ok = ca_file ? SSL_CTX_load_verify_locations(c->tls_ctx, ca_file, NULL)
		                 : SSL_CTX_set_default_verify_paths(c->tls_ctx);
		if (ok != 1) {
			ERR_clear_error();
			client_break(c);
			return N1C_ETLS;
		}
		SSL_CTX_set_verify(c->tls_ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(c->tls_ctx, SSL_VERIFY_NONE, NULL);
	}
	c->tls = SSL_new(c->tls_ctx);
	if (!c->tls || SSL_set_fd(c->tls, c->fd) != 1)
		goto fail_mem;
	if (host) {
		SSL_set_tlsext_host_name(c->tls, host);
		if (verify)
			SSL_set1_host(c->tls, host);
	}
	for (;;) {
		int k = SSL_connect(c->tls);
		if (k == 1)
			return 0;
		int r = tls_wait(c, k, deadline);
		if (r == 0)
			continue;
		client_break(c); /* a signal ends the handshake's wait too */
		return r == N1C_ECLOSED ? N1C_ETLS : r;
	}

fail_mem:
	ERR_clear_error();
	client_break(c);
	return -ENOMEM;
}

void n1c_close(struct n1c *c)
{
	if (!c)
		return;
	if (c->tls && c->fd >= 0) {
		SSL_shutdown(c->tls); /* best effort: the socket is non-blocking */
		ERR_clear_error();
	}
	client_break(c);
	SSL_CTX_free(c->tls_ctx);
	free(c->tls_out);
	for (unsigned i = 0; i < c->qcount; i++)
		free(c->queue[(c->qhead + i) % N1C_QUEUE_MAX].payload);
	free(c->held);
	free(c->ra.buf);
	free(c->rbuf);
	free(c);
}

void n1c_set_timeout(struct n1c *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

int n1c_fd(const struct n1c *c)
{
	return c->fd;
}

unsigned n1c_server_error(const struct n1c *c, const char **text)
{
	if (text)
		*text = c->srv_text;
	return c->srv_code;
}

uint64_t n1c_dropped(const struct n1c *c)
{
	return c->dropped;
}

/* ---- send ----------------------------------------------------------------- */

/*
 * Write one whole frame before deadline. The payload is not copied: header,
 * payload and CRC go out as three iovecs. If the deadline or a signal stops
 * a frame half sent, the peer's framing is lost, so the connection is
 * closed.
 */
static int send_frame(struct n1c *c, uint8_t type, const void *p, size_t len,
                      int64_t deadline)
{
	if (len > FRAME_MAX_PAYLOAD)
		return N1C_ETOOBIG;
	if (c->fd < 0)
		return N1C_ECLOSED;

	if (c->tls) {
		/* One SSL_write of the whole frame: one record, and OpenSSL
		 * wants the very same buffer again after a WANT_*. */
		int n = (int)frame_encode(c->tls_out, type, p, (uint16_t)len);
		for (;;) {
			int k = SSL_write(c->tls, c->tls_out, n);
			if (k == n)
				return 0;
			/* A signal (Ctrl-C) ends the wait like a timeout does: the
			 * caller decides; the record may be half written, so the
			 * connection cannot be used again. */
			int r = tls_wait(c, k, deadline);
			if (r == 0)
				continue;
			client_break(c); /* a half-written record cannot be resumed */
			return r;
		}
	}

	uint8_t hdr[FRAME_HEADER_SIZE], crc[FRAME_CRC_SIZE];
	frame_wrap(hdr, crc, type, p, (uint16_t)len);
	struct iovec iov[3] = {
		{ hdr, sizeof hdr },
		{ (void *)p, len },
		{ crc, sizeof crc },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
	size_t left = sizeof hdr + len + sizeof crc;
	bool started = false;

	while (left > 0) {
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			int r;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				r = wait_fd(c->fd, POLLOUT, deadline);
			else if (errno == EINTR)
				continue;
			else
				r = sys_err(errno);
			if (r == 0)
				continue;
			if (started || r == N1C_ECLOSED)
				client_break(c);
			return r;
		}
		started = true;
		left -= (size_t)n;
		while (n > 0 && mh.msg_iovlen > 0) {
			if ((size_t)n >= mh.msg_iov->iov_len) {
				n -= (ssize_t)mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + n;
				mh.msg_iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

int n1c_send(struct n1c *c, uint8_t type, const void *p, size_t len)
{
	release_held(c);
	return send_frame(c, type, p, len, deadline_after(c->timeout_ms));
}

static int send_unanswered(struct n1c *c, uint8_t type, const void *p, size_t len)
{
	int r = n1c_send(c, type, p, len);
	if (r == 0)
		c->unanswered++;
	return r;
}

int n1c_broadcast(struct n1c *c, const void *p, size_t len)
{
	return send_unanswered(c, FRAME_BROADCAST, p, len);
}

int n1c_data(struct n1c *c, const void *p, size_t len)
{
	return send_unanswered(c, FRAME_DATA, p, len);
}

/* ---- receive -------------------------------------------------------------- */

/* A reassembly buffer of at least want bytes; the held bytes move along. */
static int reasm_grow(struct n1c *c, uint32_t want)
{
	uint32_t cap = c->ra.cap ? c->ra.cap * 2 : REASM_INITIAL;
	if (cap > FRAME_MAX_SIZE)
		cap = FRAME_MAX_SIZE;
	if (cap < want)
		cap = want;
	uint8_t *nb = realloc(c->ra.buf, cap);
	if (!nb)
		return -ENOMEM;
	c->ra.buf = nb;
	c->ra.cap = cap;
	return 0;
}

/* Read what is there into rbuf (all of it was taken), waiting until
 * deadline. 0 once bytes arrived, else an error. */
static int read_more(struct n1c *c, int64_t deadline)
{
	c->rpos = c->rlen = 0;
	for (;;) {
		if (c->fd < 0)
			return N1C_ECLOSED;
		int r;
		if (c->tls) {
			int k = SSL_read(c->tls, c->rbuf, (int)RBUF_SIZE);
			if (k > 0) {
				c->rlen = (uint32_t)k;
				return 0;
			}
			r = tls_wait(c, k, deadline);
			if (r == N1C_ECLOSED || r == N1C_ETLS)
				client_break(c);
			if (r < 0)
				return r;
			continue;
		}
		ssize_t n = recv(c->fd, c->rbuf, RBUF_SIZE, MSG_DONTWAIT);
		if (n > 0) {
			c->rlen = (uint32_t)n;
			return 0;
		}
		if (n == 0) {
			client_break(c);
			return N1C_ECLOSED;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			r = wait_fd(c->fd, POLLIN, deadline);
		else if (errno == EINTR)
			r = 0;
		else
			r = sys_err(errno);
		if (r == N1C_ECLOSED)
			client_break(c);
		if (r < 0)
			return r;
	}
}

/*
 * The next frame off the stream, waiting until deadline. *f points into
 * rbuf or the reassembly buffer and stays valid until the next call.
 * A frame with a bad CRC is skipped and reported as N1C_EPROTO: its length
 * was sound, so the stream stays in step. Bad magic, version or length
 * lose the framing: the connection is closed.
 */
static int next_frame(struct n1c *c, int64_t deadline, struct frame_view *f)
{
	for (;;) {
		const uint8_t *p = c->rbuf + c->rpos;
		size_t n = c->rlen - c->rpos;
		int r = frame_reasm_next(&c->ra, &c->dec, &p, &n, f);
		c->rpos = (uint32_t)(p - c->rbuf);
		if (r > 0)
			return 0;
		if (r == FRAME_ECRC)
			return N1C_EPROTO;
		if (r == FRAME_REASM_NOBUF) {
			r = reasm_grow(c, c->ra.want);
			if (r < 0)
				return r;
			continue;
		}
		if (r < 0) {
			/* A TLS alert record (content type 21, version 3.x) where
			 * a frame should start: the server speaks TLS, we do not. */
			size_t have = frame_reasm_held(&c->ra, f) ? c->ra.len : n;
			bool alert = r == FRAME_EMAGIC && !c->tls && have >= 2 &&
			             f->frame[0] == 21 && f->frame[1] == 3;
			frame_reasm_reset(&c->ra);
			client_break(c);
			return alert ? N1C_ETLS : N1C_EPROTO;
		}
		r = read_more(c, deadline);
		if (r < 0)
			return r;
	}
}

/* Copy a frame into the queue, dropping the oldest when it is full. */
static void enqueue(struct n1c *c, const struct frame_view *f)
{
	struct n1c_qent e = { .type = f->type, .len = f->len };
	if (f->len) {
		e.payload = malloc(f->len);
		if (!e.payload) {
			c->dropped++;
			return;
		}
		memcpy(e.payload, f->payload, f->len);
	}
	if (c->qcount == N1C_QUEUE_MAX) {
		free(c->queue[c->qhead].payload);
		c->qhead = (c->qhead + 1) % N1C_QUEUE_MAX;
		c->qcount--;
		c->dropped++;
	}
	c->queue[(c->qhead + c->qcount) % N1C_QUEUE_MAX] = e;
	c->qcount++;
}

/* Parse an ERROR frame into srv_code/srv_text. N1C_EPROTO if malformed. */
static int take_error(struct n1c *c, const struct frame_view *f)
{
	uint16_t code;
	const uint8_t *text;
	size_t tlen;
	if (msg_error_parse(f->payload, f->len, &code, &text, &tlen) < 0)
		return N1C_EPROTO;
	if (tlen > SRV_TEXT_MAX)
		tlen = SRV_TEXT_MAX;
	c->srv_code = code;
	memcpy(c->srv_text, text, tlen);
	c->srv_text[tlen] = '\0';
	return 0;
}

static int late_index(uint8_t type)
{
	switch (type) {
	case FRAME_PONG:       return LATE_PONG;
	case FRAME_ECHO_REPLY: return LATE_ECHO;
	case FRAME_AUTH_REPLY: return LATE_AUTH;
	default:               return -1;
	}
}

/* If an answer of this type is expected late, drop it and say so. */
static bool drop_late(struct n1c *c, uint8_t type)
{
	int li = late_index(type);
	if (li < 0 || c->late[li] == 0)
		return false;
	c->late[li]--;
	return true;
}

struct request {
	uint8_t answer;          /* frame type that answers it */
	const uint8_t *expect;   /* payload the answer must carry, or NULL */
	size_t expect_len;
	bool sync;               /* n1c_sync(): report errors for earlier frames */
};

/*
 * Read until the answer to rq arrives; *f then views it. Every other frame
 * is queued, dropped as a late answer, or ends the wait (see client.h).
 */
static int await_answer(struct n1c *c, struct request *rq, int64_t deadline,
                        struct frame_view *f)
{
	for (;;) {
		int r = next_frame(c, deadline, f);
		if (r == N1C_ETIMEOUT || r == -EINTR)
			c->late[late_index(rq->answer)]++;
		if (r < 0)
			return r;

		if (f->type == rq->answer) {
			bool fits = !rq->expect ||
			            (f->len == rq->expect_len &&
			             memcmp(f->payload, rq->expect, f->len) == 0);
			/* AUTH_REPLYs cannot be told apart: a late one comes first. */
			if ((!fits || rq->answer == FRAME_AUTH_REPLY) &&
			    drop_late(c, f->type))
				continue;
			if (!fits)
				return N1C_EPROTO;
			c->unanswered = 0;
			return 0;
		}

		if (f->type == FRAME_ERROR) {
			r = take_error(c, f);
			if (r < 0)
				return r;
			if (msg_error_closes(c->srv_code) || c->unanswered == 0) {
				c->unanswered = 0;
				return N1C_ESERVER;
			}
			c->unanswered--;
			if (rq->sync) {
				/* Report it now: if the PING itself was refused too
				 * (RATE_LIMITED), no PONG would ever end the wait. One
				 * that does come is dropped as late. */
				c->late[LATE_PONG]++;
				return N1C_ESERVER;
			}
			enqueue(c, f);
			continue;
		}

		if (!drop_late(c, f->type))
			enqueue(c, f);
	}
}

/* A PING payload: now in ns, strictly above any this client sent before. */
static uint64_t ping_stamp(struct n1c *c)
{
	uint64_t ts = (uint64_t)now_ns();
	if (ts <= c->last_ping_ts)
		ts = c->last_ping_ts + 1;
	c->last_ping_ts = ts;
	return ts;
}

static int do_ping(struct n1c *c, struct request *rq, uint64_t *rtt_ns)
{
	release_held(c);
	int64_t deadline = deadline_after(c->timeout_ms);
	uint64_t ts = ping_stamp(c);
	uint8_t p[MSG_PING_LEN];
	frame_put_u32(p, (uint32_t)(ts >> 32));
	frame_put_u32(p + 4, (uint32_t)ts);

	int r = send_frame(c, FRAME_PING, p, sizeof p, deadline);
	if (r < 0)
		return r;
	rq->answer = FRAME_PONG;
	rq->expect = p;
	rq->expect_len = sizeof p;
	struct frame_view f;
	r = await_answer(c, rq, deadline, &f);
	if (r < 0)
		return r;
	if (rtt_ns)
		*rtt_ns = (uint64_t)now_ns() - ts;
	return 0;
}

int n1c_ping(struct n1c *c, uint64_t *rtt_ns)
{
	struct request rq = { 0 };
	return do_ping(c, &rq, rtt_ns);
}

int n1c_sync(struct n1c *c)
{
	struct request rq = { .sync = true };
	return do_ping(c, &rq, NULL);
}

int n1c_echo(struct n1c *c, const void *p, size_t len, struct n1c_frame *reply)
{
	release_held(c);
	int64_t deadline = deadline_after(c->timeout_ms);
	int r = send_frame(c, FRAME_ECHO, p, len, deadline);
	if (r < 0)
		return r;
	struct request rq = { .answer = FRAME_ECHO_REPLY, .expect = p, .expect_len = len };
	/* memcmp() must not see NULL, even for 0 bytes. */
	if (!rq.expect)
		rq.expect = (const uint8_t *)"";
	struct frame_view f;
	r = await_answer(c, &rq, deadline, &f);
	if (r < 0)
		return r;
	if (reply)
		*reply = (struct n1c_frame){ .payload = f.payload, .len = f.len, .type = f.type };
	return 0;
}

int n1c_auth(struct n1c *c, const char *user, const char *token, bool *ok,
             uint8_t session[MSG_SESSION_ID_LEN])
{
	release_held(c);
	size_t ulen = strlen(user), tlen = strlen(token);
	if (ulen == 0 || tlen == 0)
		return N1C_EINVAL;
	if (ulen > MSG_AUTH_USER_MAX || tlen > MSG_AUTH_TOKEN_MAX)
		return N1C_ETOOBIG;

	uint8_t p[1 + MSG_AUTH_USER_MAX + MSG_AUTH_TOKEN_MAX];
	int n = msg_auth_build(p, user, ulen, token, tlen);
	if (n < 0)
		return N1C_EINVAL;
	int64_t deadline = deadline_after(c->timeout_ms);
	int r = send_frame(c, FRAME_AUTH, p, (size_t)n, deadline);
	if (r < 0)
		return r;

	struct request rq = { .answer = FRAME_AUTH_REPLY };
	struct frame_view f;
	r = await_answer(c, &rq, deadline, &f);
	if (r < 0)
		return r;
	if (f.len != MSG_AUTH_REPLY_LEN || f.payload[0] > 1)
		return N1C_EPROTO;
	*ok = f.payload[0] == 1;
	if (session)
		memcpy(session, f.payload + 1, MSG_SESSION_ID_LEN);
	return 0;
}

int n1c_recv(struct n1c *c, int timeout_ms, struct n1c_frame *out)
{
	release_held(c);
	if (c->qcount > 0) {
		struct n1c_qent *e = &c->queue[c->qhead];
		c->qhead = (c->qhead + 1) % N1C_QUEUE_MAX;
		c->qcount--;
		c->held = e->payload;
		*out = (struct n1c_frame){
			.payload = e->payload ? e->payload : (const uint8_t *)"",
			.len = e->len,
			.type = e->type,
		};
		if (e->type == FRAME_ERROR) {
			struct frame_view f = { .payload = out->payload, .len = out->len };
			take_error(c, &f);
		}
		return 0;
	}

	int64_t deadline = deadline_after(timeout_ms);
	struct frame_view f;
	for (;;) {
		int r = next_frame(c, deadline, &f);
		if (r < 0)
			return r;
		if (drop_late(c, f.type))
			continue;
		if (f.type == FRAME_ERROR) {
			r = take_error(c, &f);
			if (r < 0)
				return r;
		}
		*out = (struct n1c_frame){ .payload = f.payload, .len = f.len, .type = f.type };
		return 0;
	}
}

/* ---- errors --------------------------------------------------------------- */

const char *n1c_strerror(int err)
{
	switch (err) {
	case 0:                  return "Success";
	case N1C_ETIMEOUT:       return "Timed out";
	case N1C_ECLOSED:        return "Connection closed by peer";
	case N1C_EREFUSED:       return "Connection refused";
	case N1C_EPROTO:         return "Protocol error (bad frame or reply from server)";
	case N1C_ETOOBIG:        return "Payload too large";
	case N1C_EINVAL:         return "Invalid argument";
	case N1C_ERESOLVE:       return "Cannot resolve host name";
	case N1C_ERESOLVE_AGAIN: return "Temporary failure in name resolution";
	case N1C_ESERVER:        return "Server sent an ERROR frame";
	case N1C_ETLS:           return "TLS failure (handshake, certificate or record)";
	}
	if (err < 0 && err > -4096) {
		const char *s = strerrordesc_np(-err);
		if (s)
			return s;
	}
	return "Unknown error";
}
