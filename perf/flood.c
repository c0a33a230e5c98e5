/*
 * flood.c - the broadcast flood against net001, Redis and NATS. See
 * flood.h.
 *
 * A connection is set up with blocking I/O (connect, AUTH, SUBSCRIBE/SUB,
 * a round trip proving the server has it), then goes non-blocking into the
 * thread's epoll, level-triggered: publishers wait for EPOLLOUT (and
 * EPOLLIN for replies and errors), receivers for EPOLLIN. Each ready
 * connection gets one turn per epoll_wait: a publisher up to 4 writes, a
 * receiver one read of up to READ_SIZE bytes, so no connection starves
 * the others.
 *
 * A publisher's batch is laid out from a template message and stamped
 * when it is made; it counts as sent message by message as the writes
 * complete each one (sent in the window: completed inside it). A message
 * that straddles two reads at a receiver is carried over: its start is
 * copied in front of the next read.
 *
 * With --rate, a publisher is open loop: message k is due at t_start +
 * k / (its share of the rate) and carries that time, not the time it was
 * written, so a bench that falls behind adds its lateness to the latency
 * instead of hiding it. Whatever is due is laid out at once (up to a
 * batch) and written; the publisher waits for EPOLLOUT only while the
 * socket does not take it, and the loop wakes for the next due message
 * with epoll_pwait2's nanosecond timeout.
 */
#include "perf/flood.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/msg.h"

#define READ_SIZE       (256u * 1024u)
#define PART_MAX        (FRAME_MAX_SIZE + 256u) /* one message, any target */
#define BATCH_BYTES     16384u
#define WRITES_PER_TURN 4
#define SETUP_TIMEOUT_S 10
#define KEEPALIVE_NS    (10ull * 1000000000ull)
#define PUBLISH_NS      (250ull * 1000000ull)
#define NATS_LINE_MAX   4096

struct fconn {
	int fd;
	uint32_t gidx;          /* load connections first, then receivers */
	bool receiver;
	bool open;              /* set up and not closed */
	uint8_t *part;          /* the start of a message cut by a read */
	uint32_t part_len;
	uint32_t until_check;   /* receiver: messages before the next full check */
	uint8_t *out;           /* publisher: the batch being written */
	uint32_t out_len, out_off;
	uint32_t out_done;      /* messages of the batch written whole */
	uint64_t made;          /* --rate: messages laid out so far */
	bool want_out;          /* registered for EPOLLOUT */
	char ctl[64];           /* small writes: PONG, keepalive PING */
	uint32_t ctl_len;
	uint64_t sent_w, err_w; /* messages sent / ERRORs counted in the window */
};

static void put_ts(uint8_t *p, uint32_t len, uint64_t ts)
{
	for (uint32_t i = 0; i < 8 && i < len; i++)
		p[i] = (uint8_t)(ts >> (56 - 8 * i));
}

static uint64_t get_ts(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline bool measuring(const struct flood_worker *w)
{
	return w->now >= w->sh->t_measure && w->now < w->sh->t_end;
}

/* ---- parsers ----------------------------------------------------------------- */

/* The line at p[0..n) up to "\r\n": its length, or -1 when not all here. */
static long line_len(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		const uint8_t *cr = memchr(p + i, '\r', n - 1 - i);
		if (!cr)
			return -1;
		i = (size_t)(cr - p);
		if (p[i + 1] == '\n')
			return (long)i;
	}
	return -1;
}

/* A decimal (optionally negative) filling p[0..n); false otherwise. */
static bool parse_ll(const uint8_t *p, size_t n, long long *out)
{
	bool neg = n > 0 && p[0] == '-';
	size_t i = neg ? 1 : 0;
	long long v = 0;
	if (i == n || n - i > 18)
		return false;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = neg ? -v : v;
	return true;
}

/* One RESP value that is not an array; sets kind, p, len. */
static long resp_scalar(const uint8_t *p, size_t n, char *kind, const uint8_t **vp,
                        long long *len)
{
	if (n < 1)
		return 0;
	if (!strchr("+-:$", p[0]))
		return -1;
	long ll = line_len(p, n);
	if (ll < 0)
		return n > NATS_LINE_MAX ? -1 : 0;
	*kind = (char)p[0];
	switch (p[0]) {
	case '+':
	case '-':
		*vp = p + 1;
		*len = ll - 1;
		return ll + 2;
	case ':':
		*vp = NULL;
		return parse_ll(p + 1, (size_t)ll - 1, len) ? ll + 2 : -1;
	case '$':
		if (!parse_ll(p + 1, (size_t)ll - 1, len) || *len < -1 || *len > 512 * 1024 * 1024)
			return -1;
		if (*len == -1) {
			*vp = NULL;
			return ll + 2;
		}
		if (n < (size_t)ll + 2 + (size_t)*len + 2)
			return 0;
		*vp = p + ll + 2;
		if (p[ll + 2 + *len] != '\r' || p[ll + 2 + *len + 1] != '\n')
			return -1;
		return ll + 2 + *len + 2;
	default:
		return -1;
	}
}

long flood_parse_resp(const uint8_t *p, size_t n, struct flood_item *it)
{
	memset(it, 0, sizeof *it);
	if (n < 1)
		return 0;
	if (p[0] != '*')
		return resp_scalar(p, n, &it->kind, &it->p, &it->len);
	long ll = line_len(p, n);
	if (ll < 0)
		return n > NATS_LINE_MAX ? -1 : 0;
	long long count;
	if (!parse_ll(p + 1, (size_t)ll - 1, &count) || count < 0 || count > 64)
		return -1;
	it->kind = '*';
	it->len = count;
	size_t off = (size_t)ll + 2;
	for (long long i = 0; i < count; i++) {
		char kind;
		const uint8_t *vp = NULL;
		long long len = 0;
		long r = resp_scalar(p + off, n - off, &kind, &vp, &len);
		if (r <= 0)
			return r;
		if (i < 4) {
			it->elem[i].kind = kind;
			it->elem[i].p = vp;
			it->elem[i].len = len;
		}
		off += (size_t)r;
	}
	it->nelem = count < 4 ? (int)count : 4;
	return (long)off;
}

long flood_parse_nats(const uint8_t *p, size_t n, struct flood_item *it)
{
	memset(it, 0, sizeof *it);
	if (n > 0 && !strchr("MPI+-", p[0]))
		return -1;
	long ll = line_len(p, n);
	if (ll < 0)
		return n > NATS_LINE_MAX ? -1 : 0;
	const char *s = (const char *)p;
	if (ll >= 4 && memcmp(s, "MSG ", 4) == 0) {
		/* MSG <subject> <sid> [reply-to] <#bytes> */
		const uint8_t *last = p + ll;
		while (last > p && last[-1] != ' ')
			last--;
		long long nb;
		if (last <= p + 4 || !parse_ll(last, (size_t)(p + ll - last), &nb) || nb < 0 ||
		    nb > 64 * 1024 * 1024)
			return -1;
		size_t total = (size_t)ll + 2 + (size_t)nb + 2;
		if (n < total)
			return 0;
		if (p[ll + 2 + nb] != '\r' || p[ll + 2 + nb + 1] != '\n')
			return -1;
		it->kind = 'M';
		it->p = p + ll + 2;
		it->len = nb;
		return (long)total;
	}
	if (ll == 4 && memcmp(s, "PING", 4) == 0)
		it->kind = 'P';
	else if (ll == 4 && memcmp(s, "PONG", 4) == 0)
		it->kind = 'O';
	else if (ll == 3 && memcmp(s, "+OK", 3) == 0)
		it->kind = '+';
	else if (ll >= 4 && memcmp(s, "-ERR", 4) == 0)
		it->kind = '-';
	else if (ll >= 5 && memcmp(s, "INFO ", 5) == 0)
		it->kind = 'I';
	else
		return -1;
	it->p = p;
	it->len = ll;
	return ll + 2;
}

/* ---- setup (blocking) ------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ECONNRESET;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Read more into buf[*len..cap); 0, or -errno (-ECONNRESET at EOF). */
static int read_more(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	if (*len >= cap)
		return -EMSGSIZE;
	for (;;) {
		ssize_t r = recv(fd, buf + *len, cap - *len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (r == 0)
			return -ECONNRESET;
		*len += (size_t)r;
		return 0;
	}
}

static void consume(uint8_t *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

/* net001: [AUTH, AUTH_REPLY ok,] PING, PONG. */
static int setup_net001(struct flood_worker *w, int fd, uint8_t *buf, size_t cap,
                        size_t *left, char *why, size_t whylen)
{
	const struct benchopt *o = w->sh->opt;
	uint8_t req[FRAME_OVERHEAD + 1 + MSG_AUTH_USER_MAX + MSG_AUTH_TOKEN_MAX + FRAME_OVERHEAD + 8];
	size_t rl = 0;
	if (o->auth_user) {
		uint8_t pl[1 + MSG_AUTH_USER_MAX + MSG_AUTH_TOKEN_MAX];
		int n = msg_auth_build(pl, o->auth_user, o->auth_user_len, o->auth_token,
		                       o->auth_token_len);
		rl += frame_encode(req, FRAME_AUTH, pl, (uint16_t)n);
	}
	uint8_t ping[8];
	put_ts(ping, 8, benchrun_now());
	rl += frame_encode(req + rl, FRAME_PING, ping, 8);
	int rc = write_all(fd, req, rl);
	if (rc < 0)
		return rc;
	bool authed = !o->auth_user;
	size_t len = 0;
	for (;;) {
		struct frame_view f;
		int r = frame_decode(NULL, buf, len, &f);
		if (r == FRAME_NEED_MORE) {
			rc = read_more(fd, buf, cap, &len);
			if (rc < 0)
				return rc;
			continue;
		}
		if (r < 0) {
			snprintf(why, whylen, "not a NET-001 server (bad frame)");
			return -EPROTO;
		}
		if (f.type == FRAME_ERROR) {
			uint16_t code = 0;
			const uint8_t *text;
			size_t tl;
			msg_error_parse(f.payload, f.len, &code, &text, &tl);
			const char *name = msg_error_name(code);
			snprintf(why, whylen, "server error %u %s", code, name ? name : "UNKNOWN");
			return -EPROTO;
		}
		if (!authed && f.type == FRAME_AUTH_REPLY) {
			if (f.len != MSG_AUTH_REPLY_LEN || f.payload[0] != 1) {
				w->c.mismatch[MM_AUTH]++;
				snprintf(why, whylen, "AUTH refused");
				return -EACCES;
			}
			authed = true;
		} else if (authed && f.type == FRAME_PONG) {
			consume(buf, &len, (size_t)r);
			*left = len; /* bytes after the answer: the stream's start */
			return 0;
		} else {
			snprintf(why, whylen, "unexpected frame type 0x%02x", f.type);
			return -EPROTO;
		}
		consume(buf, &len, (size_t)r);
	}
}

/*
 * The next whole item of a Redis or NATS server's answer during setup,
 * read from fd as needed; it stays at the start of buf (the caller
 * consumes it). Returns its length, or -errno: -EPROTO with why set to
 * bad for bytes that do not parse, or to the error reply, after proto,
 * for one.
 */
static long setup_item(long (*parse)(const uint8_t *, size_t, struct flood_item *),
                       const char *proto, const char *bad, int fd, uint8_t *buf,
                       size_t cap, size_t *len, struct flood_item *it, char *why,
                       size_t whylen)
{
	for (;;) {
		long r = parse(buf, *len, it);
		if (r == 0) {
			int rc = read_more(fd, buf, cap, len);
			if (rc < 0)
				return rc;
			continue;
		}
		if (r < 0) {
			snprintf(why, whylen, "%s", bad);
			return -EPROTO;
		}
		if (it->kind == '-') {
			snprintf(why, whylen, "%s: %.*s", proto, (int)(it->len > 80 ? 80 : it->len),
			         it->p);
			return -EPROTO;
		}
		return r;
	}
}

/* Redis: SUBSCRIBE and its confirmation, or PING and +PONG. */
static int setup_redis(struct flood_worker *w, struct fconn *c, uint8_t *buf, size_t cap,
                       size_t *left, char *why, size_t whylen)
{
	char req[160];
	int rl = c->receiver
		? snprintf(req, sizeof req, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
		           strlen(w->chan), w->chan)
		: snprintf(req, sizeof req, "*1\r\n$4\r\nPING\r\n");
	int rc = write_all(c->fd, req, (size_t)rl);
	if (rc < 0)
		return rc;
	size_t len = 0;
	for (;;) {
		struct flood_item it;
		long r = setup_item(flood_parse_resp, "Redis", "not a Redis server (bad RESP)",
		                    c->fd, buf, cap, &len, &it, why, whylen);
		if (r < 0)
			return (int)r;
		bool done = c->receiver
			? it.kind == '*' && it.nelem == 3 && it.elem[0].len == 9 &&
			  memcmp(it.elem[0].p, "subscribe", 9) == 0
			: it.kind == '+' && it.len == 4 && memcmp(it.p, "PONG", 4) == 0;
		consume(buf, &len, (size_t)r);
		if (done) {
			*left = len; /* bytes after the answer: the stream's start */
			return 0;
		}
	}
}

/* NATS: INFO, then CONNECT [SUB] PING, then PONG. */
static int setup_nats(struct flood_worker *w, struct fconn *c, uint8_t *buf, size_t cap,
                      size_t *left, char *why, size_t whylen)
{
	size_t len = 0;
	bool info = false;
	int rc;
	for (;;) {
		struct flood_item it;
		long r = setup_item(flood_parse_nats, "NATS", "not a NATS server", c->fd, buf, cap,
		                    &len, &it, why, whylen);
		if (r < 0)
			return (int)r;
		consume(buf, &len, (size_t)r);
		if (!info) {
			if (it.kind != 'I') {
				snprintf(why, whylen, "not a NATS server (no INFO)");
				return -EPROTO;
			}
			info = true;
			char req[256];
			int rl = snprintf(req, sizeof req,
			                  "CONNECT {\"verbose\":false,\"pedantic\":false,"
			                  "\"name\":\"net001-bench\"}\r\n");
			if (c->receiver)
				rl += snprintf(req + rl, sizeof req - (size_t)rl, "SUB %s 1\r\n", w->chan);
			rl += snprintf(req + rl, sizeof req - (size_t)rl, "PING\r\n");
			rc = write_all(c->fd, req, (size_t)rl);
			if (rc < 0)
				return rc;
		} else if (it.kind == 'O') {
			*left = len; /* bytes after the answer: the stream's start */
			return 0;
		} else if (it.kind == 'P') {
			rc = write_all(c->fd, "PONG\r\n", 6);
			if (rc < 0)
				return rc;
		}
	}
}

static void conn_failed(struct flood_worker *w, struct fconn *c, int err,
                        const char *why)
{
	w->c.connect_failed++;
	if (!w->c.first_connect_err) {
		w->c.first_connect_err = err;
		if (why && *why)
			snprintf(w->why, sizeof w->why, "%s", why);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void setup_conn(struct flood_worker *w, struct fconn *c)
{
	const struct benchopt *o = w->sh->opt;
	char why[128] = "";
	int fd = socket(w->sh->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_failed(w, c, -errno, NULL);
		return;
	}
	c->fd = fd;
	struct timeval tv = { .tv_sec = SETUP_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, benchrun_addr(w->sh, c->gidx), w->sh->addrlen) < 0) {
		conn_failed(w, c, errno == EINPROGRESS ? -ETIMEDOUT : -errno, NULL);
		return;
	}
	int rc;
	size_t left = 0;
	switch (o->target) {
	case TARGET_REDIS:
		rc = setup_redis(w, c, w->rbuf, READ_SIZE, &left, why, sizeof why);
		break;
	case TARGET_NATS:
		rc = setup_nats(w, c, w->rbuf, READ_SIZE, &left, why, sizeof why);
		break;
	default:
		rc = setup_net001(w, fd, w->rbuf, READ_SIZE, &left, why, sizeof why);
		break;
	}
	if (rc == 0 && left > PART_MAX)
		rc = -EPROTO;
	if (rc == 0 && left && !(c->part = malloc(PART_MAX)))
		rc = -ENOMEM;
	if (rc < 0) {
		conn_failed(w, c, rc, why);
		return;
	}
	/* What came after the answer is the start of the stream. */
	if (left)
		memcpy(c->part, w->rbuf, left);
	c->part_len = (uint32_t)left;
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	struct epoll_event ev = {
		.events = c->receiver || w->rate_pub > 0 ? EPOLLIN : EPOLLIN | EPOLLOUT,
		.data.u32 = (uint32_t)(c - w->conns),
	};
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		conn_failed(w, c, -errno, NULL);
		return;
	}
	c->open = true;
	c->want_out = !c->receiver && w->rate_pub <= 0;
}

/* ---- the load --------------------------------------------------------------- */

static void conn_close(struct flood_worker *w, struct fconn *c)
{
	if (!c->open)
		return;
	c->open = false;
	if (w->now < w->sh->t_end)
		w->c.closed++;
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	shutdown(c->fd, SHUT_RDWR);
}

static void count_error(struct flood_worker *w, struct fconn *c, unsigned code)
{
	unsigned slot = code <= ERR_MAX ? code : 0;
	/* A publisher's errors answer its messages: at most one per message
	 * sent in the window counts in it. */
	if (!c->receiver && measuring(w) && c->err_w < c->sent_w) {
		c->err_w++;
		w->c.errors[slot]++;
	} else {
		w->c.errors_other[slot]++;
	}
}

/* A stamp a delivery can carry: not before the bench connected, not from
 * more than a second ahead of this turn's clock. */
static inline bool stamp_plausible(const struct flood_worker *w, uint64_t ts)
{
	return ts >= w->sh->t_connect && ts <= w->now + 1000000000ull;
}

/* w->now is this turn's clock; a publisher on another thread may have
 * stamped a little after it was read: that delivery took less than the
 * clock's grain. */
static inline void record_latency(struct flood_worker *w, uint64_t ts)
{
	lathist_record(&w->hist, ts < w->now ? w->now - ts : 0);
}

/* Whether the receiver's next message gets the full check (CRC and
 * payload bytes): one in --check-every. A load generator that checks every
 * byte of 64-byte messages spends more CPU on that than on reading them,
 * and its own queueing would show up as the server's latency. */
static bool full_check_next(const struct flood_worker *w, const struct fconn *c)
{
	return !c->receiver || c->until_check == 0 || w->sh->opt->check_every == 1;
}

/* A message delivered to a receiver: check it and count it; checked: its
 * CRC (when it has one) was verified, and its payload is compared here. */
static void delivered(struct flood_worker *w, struct fconn *c, const uint8_t *p,
                      long long len, bool checked)
{
	const struct benchopt *o = w->sh->opt;
	/* A NET-001 publisher gets the other publishers' broadcasts too. */
	if (!c->receiver)
		return;
	c->until_check = checked ? o->check_every - 1 : c->until_check - 1;
	if (len != o->payload) {
		w->c.mismatch[MM_LENGTH]++;
		return;
	}
	uint32_t tl = len < 8 ? (uint32_t)len : 8;
	uint64_t ts = len >= 8 ? get_ts(p) : 0;
	if ((len >= 8 && !stamp_plausible(w, ts)) ||
	    (checked && memcmp(p + tl, w->sh->pattern + tl, (size_t)len - tl) != 0)) {
		w->c.mismatch[MM_PAYLOAD]++;
		return;
	}
	w->c.deliveries++;
	w->c.checked += checked;
	if (measuring(w)) {
		w->c.msgs++;
		w->c.payload_bytes += (uint64_t)len;
		if (ts)
			record_latency(w, ts);
	}
}

/* Try the pending small write; true when nothing is left of it. */
static bool flush_ctl(struct fconn *c)
{
	while (c->ctl_len) {
		ssize_t r = send(c->fd, c->ctl, c->ctl_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r <= 0)
			return false;
		memmove(c->ctl, c->ctl + r, c->ctl_len - (size_t)r);
		c->ctl_len -= (uint32_t)r;
	}
	return true;
}

static void queue_ctl(struct flood_worker *w, struct fconn *c, const void *p, size_t n)
{
	(void)w;
	if (c->ctl_len + n > sizeof c->ctl)
		return; /* a backlog of PONGs: one pending is enough */
	memcpy(c->ctl + c->ctl_len, p, n);
	c->ctl_len += (uint32_t)n;
	/* A publisher writes it between batches. */
	if (c->receiver)
		flush_ctl(c);
}

/*
 * A NET-001 receiver's common case, in a tight loop: whole BROADCASTs of
 * the expected length (the 8-byte header equal to the one expected:
 * magic, version, type, length) that are not due for the full check, with
 * a plausible time stamp. The same counts as delivered() without the
 * check; returns the bytes taken, and leaves anything else (a cut
 * message, another header, a full check, a bad stamp) to the long way.
 * At 17 M messages/s the receivers' per-message work is most of the
 * bench's user time, and its queueing would show up as latency.
 */
static size_t take_plain_run(struct flood_worker *w, struct fconn *c, const uint8_t *p,
                             size_t n)
{
	const uint32_t size = w->msg_size;
	const bool meas = measuring(w);
	size_t off = 0;
	uint64_t k = 0;
	while (n - off >= size && c->until_check > 0 &&
	       memcmp(p + off, w->tmpl, FRAME_HEADER_SIZE) == 0) {
		uint64_t ts = get_ts(p + off + FRAME_HEADER_SIZE);
		if (!stamp_plausible(w, ts))
			break;
		if (meas)
			record_latency(w, ts);
		c->until_check--;
		off += size;
		k++;
	}
	w->c.deliveries += k;
	if (meas) {
		w->c.msgs += k;
		w->c.payload_bytes += k * (uint64_t)w->sh->opt->payload;
	}
	return off;
}

/* Parse p[0..n); returns the bytes used (the rest is a partial message),
 * or -1 when the connection was closed for bad bytes. */
static long parse_input(struct flood_worker *w, struct fconn *c, const uint8_t *p, size_t n)
{
	const struct benchopt *o = w->sh->opt;
	bool plain = o->target == TARGET_NET001 && c->receiver && o->payload >= 8;
	size_t off = 0;
	while (off < n) {
		if (plain && (off += take_plain_run(w, c, p + off, n - off)) == n)
			break;
		const uint8_t *q = p + off;
		size_t m = n - off;
		long r;
		if (o->target == TARGET_NET001) {
			struct frame_view f;
			bool full = full_check_next(w, c);
			/* Without the full check the header alone is decoded:
			 * magic, version and length are still checked. */
			int d = frame_decode(NULL, q, full || m < FRAME_HEADER_SIZE ? m
			                                    : FRAME_HEADER_SIZE, &f);
			if (!full && d == FRAME_NEED_MORE && m >= FRAME_HEADER_SIZE &&
			    m >= f.size)
				d = (int)f.size;
			if (d == FRAME_NEED_MORE) {
				/* A header that cannot be ours: do not wait for its bytes. */
				if (m >= FRAME_HEADER_SIZE && f.type == FRAME_BROADCAST &&
				    f.len != o->payload) {
					w->c.mismatch[MM_LENGTH]++;
					conn_close(w, c);
					return -1;
				}
				break;
			}
			if (d == FRAME_ECRC) {
				w->c.mismatch[MM_CRC]++;
				r = f.size;
			} else if (d < 0) {
				w->c.mismatch[d == FRAME_EMAGIC ? MM_MAGIC
				              : d == FRAME_EVERSION ? MM_VERSION : MM_LENGTH]++;
				conn_close(w, c);
				return -1;
			} else {
				r = d;
				if (f.type == FRAME_BROADCAST) {
					delivered(w, c, f.payload, f.len, full);
				} else if (f.type == FRAME_ERROR) {
					uint16_t code = 0;
					const uint8_t *text;
					size_t tl;
					if (msg_error_parse(f.payload, f.len, &code, &text, &tl) < 0)
						w->c.mismatch[MM_LENGTH]++;
					else
						count_error(w, c, code);
				} else if (f.type != FRAME_PONG) {
					w->c.mismatch[MM_TYPE]++;
				}
			}
		} else {
			struct flood_item it;
			bool redis = o->target == TARGET_REDIS;
			r = redis ? flood_parse_resp(q, m, &it) : flood_parse_nats(q, m, &it);
			if (r == 0)
				break;
			if (r < 0) {
				w->c.mismatch[MM_TYPE]++;
				conn_close(w, c);
				return -1;
			}
			if (redis) {
				if (it.kind == '*' && it.nelem == 3 && it.elem[0].len == 7 &&
				    memcmp(it.elem[0].p, "message", 7) == 0 && it.elem[2].kind == '$')
					delivered(w, c, it.elem[2].p, it.elem[2].len,
					          full_check_next(w, c));
				else if (it.kind == '-')
					count_error(w, c, 0);
				else if (!(it.kind == ':' && !c->receiver))
					w->c.mismatch[MM_TYPE]++;
			} else {
				if (it.kind == 'M')
					delivered(w, c, it.p, it.len, full_check_next(w, c));
				else if (it.kind == 'P')
					queue_ctl(w, c, "PONG\r\n", 6);
				else if (it.kind == '-')
					count_error(w, c, 0);
			}
		}
		off += (size_t)r;
	}
	return (long)off;
}

static void on_readable(struct flood_worker *w, struct fconn *c)
{
	uint8_t *buf = w->rbuf;
	if (c->part_len)
		memcpy(buf, c->part, c->part_len);
	ssize_t r = recv(c->fd, buf + c->part_len, READ_SIZE, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		conn_close(w, c);
		return;
	}
	size_t n = c->part_len + (size_t)r;
	long used = parse_input(w, c, buf, n);
	if (used < 0)
		return;
	size_t rest = n - (size_t)used;
	if (rest > PART_MAX) {
		w->c.mismatch[MM_LENGTH]++;
		conn_close(w, c);
		return;
	}
	if (rest && !c->part && !(c->part = malloc(PART_MAX))) {
		conn_close(w, c);
		return;
	}
	if (rest)
		memcpy(c->part, buf + used, rest);
	c->part_len = (uint32_t)rest;
}

/* A new batch of n messages, stamped (see below) from first on. */
static void fill(struct flood_worker *w, struct fconn *c, uint32_t n, uint64_t first,
                 bool scheduled)
{
	const struct benchopt *o = w->sh->opt;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *m = c->out + (size_t)i * w->msg_size;
		memcpy(m, w->tmpl, w->msg_size);
		/* Flood: the time the batch is made, + i so stamps differ;
		 * --rate: the time message first + i was due. */
		uint64_t ts = scheduled ? w->sh->t_start +
		                          (uint64_t)llround((double)(first + i) * 1e9 / w->rate_pub)
		                        : first + i;
		put_ts(m + w->ts_off, o->payload, ts);
		if (o->target == TARGET_NET001)
			frame_put_u32(m + FRAME_HEADER_SIZE + o->payload,
			              frame_crc(0, m, FRAME_HEADER_SIZE + (size_t)o->payload));
	}
	c->out_len = n * w->msg_size;
	c->out_off = 0;
	c->out_done = 0;
}

/* Messages of c due by now (--rate). */
static uint64_t due(const struct flood_worker *w)
{
	if (w->now < w->sh->t_start)
		return 0;
	return (uint64_t)((double)(w->now - w->sh->t_start) * w->rate_pub / 1e9) + 1;
}

static void want_out(struct flood_worker *w, struct fconn *c, bool on)
{
	if (c->want_out == on || !c->open)
		return;
	struct epoll_event ev = {
		.events = on ? EPOLLIN | EPOLLOUT : EPOLLIN,
		.data.u32 = (uint32_t)(c - w->conns),
	};
	if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = on;
}

/*
 * Write what there is: the batch under way, then (flood) a new one, or
 * (--rate) the messages due by now, at most a batch at a time. Returns
 * false when the socket took no more (or the connection closed).
 */
static bool write_some(struct flood_worker *w, struct fconn *c)
{
	if (c->out_off == c->out_len) {
		if (!flush_ctl(c))
			return false;
		if (w->rate_pub > 0) {
			uint64_t d = due(w);
			if (d <= c->made)
				return true;
			uint64_t n = d - c->made < w->batch ? d - c->made : w->batch;
			fill(w, c, (uint32_t)n, c->made, true);
			c->made += n;
		} else {
			fill(w, c, w->batch, benchrun_now(), false);
		}
	}
	ssize_t r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
	                 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (r <= 0) {
		conn_close(w, c);
		return false;
	}
	c->out_off += (uint32_t)r;
	uint32_t done = c->out_off / w->msg_size;
	uint64_t fresh = done - c->out_done;
	c->out_done = done;
	w->c.sent_total += fresh;
	if (measuring(w)) {
		w->c.sent += fresh;
		w->c.sends++;
		c->sent_w += fresh;
	}
	return true;
}

static void on_writable(struct flood_worker *w, struct fconn *c)
{
	if (w->rate_pub > 0) {
		/* Everything due, then wait for the clock or for EPOLLOUT. */
		bool more = true;
		for (int k = 0; k < WRITES_PER_TURN && c->open && more; k++) {
			more = write_some(w, c);
			if (more && c->out_off == c->out_len && due(w) <= c->made)
				break;
		}
		want_out(w, c, c->open && (c->out_off < c->out_len || c->ctl_len));
		return;
	}
	for (int k = 0; k < WRITES_PER_TURN && c->open; k++)
		if (!write_some(w, c))
			return;
}

/* --rate: when the next message of an idle publisher falls due. */
static uint64_t next_due(const struct flood_worker *w, const struct fconn *c)
{
	return w->sh->t_start + (uint64_t)llround((double)c->made * 1e9 / w->rate_pub);
}

static void keepalive(struct flood_worker *w)
{
	uint8_t ping[FRAME_OVERHEAD + 8], ts[8];
	put_ts(ts, 8, w->now);
	frame_encode(ping, FRAME_PING, ts, 8);
	for (uint32_t i = w->nload; i < w->nconns; i++) {
		struct fconn *c = &w->conns[i];
		if (c->open && c->ctl_len == 0)
			queue_ctl(w, c, ping, sizeof ping);
	}
}

/* ---- templates and threads ---------------------------------------------------- */

static int make_template(struct flood_worker *w)
{
	const struct benchopt *o = w->sh->opt;
	char head[128];
	int hl = 0, tail = 0;
	switch (o->target) {
	case TARGET_REDIS:
		hl = snprintf(head, sizeof head, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%u\r\n",
		              strlen(w->chan), w->chan, o->payload);
		tail = 2;
		break;
	case TARGET_NATS:
		hl = snprintf(head, sizeof head, "PUB %s %u\r\n", w->chan, o->payload);
		tail = 2;
		break;
	default:
		hl = FRAME_HEADER_SIZE;
		tail = FRAME_CRC_SIZE;
		break;
	}
	w->ts_off = (uint32_t)hl;
	w->msg_size = (uint32_t)hl + o->payload + (uint32_t)tail;
	w->tmpl = malloc(w->msg_size);
	if (!w->tmpl)
		return -ENOMEM;
	if (o->target == TARGET_NET001)
		frame_put_header(w->tmpl, FRAME_BROADCAST, (uint16_t)o->payload);
	else
		memcpy(w->tmpl, head, (size_t)hl);
	memcpy(w->tmpl + hl, w->sh->pattern, o->payload);
	if (tail == 2)
		memcpy(w->tmpl + hl + o->payload, "\r\n", 2);
	w->batch = o->pipeline_given ? o->pipeline
	                             : (BATCH_BYTES + w->msg_size - 1) / w->msg_size;
	if (w->batch < 1)
		w->batch = 1;
	/* Every publisher the same share of --rate. */
	w->rate_pub = o->rate > 0 && o->connections ? o->rate / o->connections : 0;
	return 0;
}

int flood_worker_init(struct flood_worker *w, struct benchrun_shared *sh, unsigned id)
{
	const struct benchopt *o = sh->opt;
	memset(w, 0, sizeof *w);
	w->sh = sh;
	w->id = id;
	w->ep = -1;
	bench_live_init(&w->live);
	snprintf(w->chan, sizeof w->chan, "net001bench.%d", (int)getpid());

	w->nconns = benchrun_share(o, id, &w->nload);
	w->conns = calloc(w->nconns ? w->nconns : 1, sizeof *w->conns);
	w->rbuf = malloc(PART_MAX + READ_SIZE);
	if (!w->conns || !w->rbuf || make_template(w) < 0)
		goto err;
	uint32_t li = 0, ri = w->nload;
	for (uint32_t g = id; g < o->connections + o->receivers; g += o->threads) {
		bool rcv = g >= o->connections;
		struct fconn *c = &w->conns[rcv ? ri++ : li++];
		c->fd = -1;
		c->gidx = g;
		c->receiver = rcv;
		if (!rcv && !(c->out = malloc((size_t)w->batch * w->msg_size)))
			goto err;
	}
	return 0;
err:
	flood_worker_free(w);
	return -ENOMEM;
}

void *flood_worker_main(void *arg)
{
	struct flood_worker *w = arg;
	struct benchrun_shared *sh = w->sh;

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0) {
		w->err = -errno;
		snprintf(w->errmsg, sizeof w->errmsg, "epoll: %s", strerror(errno));
		atomic_fetch_add(&sh->ready, 1);
		return NULL;
	}
	/* Receivers first, so every one is subscribed before a publisher of
	 * this thread exists; the main thread's go waits for all threads. */
	for (uint32_t i = w->nload; i < w->nconns; i++)
		setup_conn(w, &w->conns[i]);
	for (uint32_t i = 0; i < w->nload; i++)
		setup_conn(w, &w->conns[i]);
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load_explicit(&sh->go, memory_order_acquire)) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}

	struct epoll_event ev[256];
	w->now = benchrun_now();
	w->next_keepalive = w->now + KEEPALIVE_NS;
	while (w->now < sh->t_end) {
		uint64_t wake = sh->t_end;
		if (w->next_keepalive < wake)
			wake = w->next_keepalive;
		if (w->now + PUBLISH_NS < wake)
			wake = w->now + PUBLISH_NS;
		for (uint32_t i = 0; w->rate_pub > 0 && i < w->nload; i++) {
			struct fconn *c = &w->conns[i];
			if (c->open && !c->want_out && next_due(w, c) < wake)
				wake = next_due(w, c);
		}
		uint64_t left = wake > w->now ? wake - w->now : 0;
		struct timespec to = { (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
		int n = epoll_pwait2(w->ep, ev, 256, &to, NULL);
		w->now = benchrun_now();
		for (int i = 0; i < n; i++) {
			struct fconn *c = &w->conns[ev[i].data.u32];
			if (!c->open)
				continue;
			if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(w, c);
			if (c->open && (ev[i].events & EPOLLOUT) && w->now < sh->t_end)
				on_writable(w, c);
		}
		for (uint32_t i = 0; w->rate_pub > 0 && i < w->nload && w->now < sh->t_end; i++) {
			struct fconn *c = &w->conns[i];
			if (c->open && !c->want_out && next_due(w, c) <= w->now)
				on_writable(w, c);
		}
		if (w->now >= w->next_keepalive && sh->opt->target == TARGET_NET001) {
			keepalive(w);
			w->next_keepalive = w->now + KEEPALIVE_NS;
		}
		if (w->now >= w->next_publish) {
			bench_live_publish(&w->live, &w->c, &w->hist);
			w->next_publish = w->now + PUBLISH_NS;
		}
	}
	for (uint32_t i = 0; i < w->nconns; i++)
		if (w->conns[i].open)
			w->c.open_at_end++;
	bench_live_publish(&w->live, &w->c, &w->hist);
	return NULL;
}

void flood_worker_free(struct flood_worker *w)
{
	for (uint32_t i = 0; w->conns && i < w->nconns; i++) {
		struct fconn *c = &w->conns[i];
		if (c->fd >= 0)
			close(c->fd);
		free(c->part);
		free(c->out);
	}
	if (w->ep >= 0)
		close(w->ep);
	free(w->conns);
	free(w->rbuf);
	free(w->tmpl);
	w->conns = NULL;
	w->rbuf = NULL;
	w->tmpl = NULL;
	w->ep = -1;
	if (w->sh) {
		bench_live_destroy(&w->live);
		w->sh = NULL;
	}
}
