/*
 * metrics_server.c - the exporter thread: an epoll loop over non-blocking
 * sockets serving /metrics, /healthz and the dashboard (/ and
 * /stats.json), and the once-a-second sampler behind
 * net001_messages_per_second. See metrics_server.h for the HTTP contract.
 *
 * A client connection moves through three states:
 *
 *        accept
 *          |
 *          v         whole response sent,         partial send
 *   +-> READ ------- keep-alive -------+  +------------------------+
 *   |    | request parsed, response    |  |                        v
 *   |    | sent at once                |  |                      WRITE
 *   |    +-----------------------------+--+-- (EPOLLOUT, tail kept in c->out)
 *   |                                  |                           |
 *   +----------------------------------+<------ tail sent ---------+
 *                                      |
 *                    close after reply | (400, HTTP/1.0, Connection: close,
 *                                      v  request with a body)
 *                                   LINGER  shutdown(SHUT_WR), read and
 *                                      |    discard until EOF or deadline
 *                                      v
 *                                    close
 *
 * Every state has one deadline, set to now + timeout whenever the
 * connection starts waiting for a request (accept, response done) or starts
 * a WRITE or LINGER; passing it closes the connection. Deadlines are found
 * by scanning the client table, which max_clients keeps small.
 *
 * A connection accepted with the table full makes room (room_victim): the
 * LINGER connection closest to its deadline goes, else the READ connection
 * that has waited longest for a request (an idle keep-alive or a slow
 * sender). A connection that has sent nothing is not closed in its first
 * MIN_LIFE_NS; while every slot is that young, newcomers wait in the
 * kernel's backlog. Only when every slot is in WRITE does the newcomer get
 * 503. A newly accepted connection is read at once, so a probe whose
 * request is already there is answered before later arrivals can push it
 * out.
 *
 * Memory: the client table and the render buffer are allocated once at
 * start. The only allocation afterwards is c->out, the unsent tail of one
 * response for a client whose socket buffer was full; it is freed when sent
 * or at close, and a client has at most one.
 */
#include "metrics/metrics_server.h"
#include "metrics/http_req.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC     UINT64_C(1000000000)
#define NS_PER_MS      UINT64_C(1000000)
#define MAX_EVENTS     64
#define ACCEPT_BATCH   64
/* After accept fails for lack of fds or memory, leave the backlog alone
 * this long instead of spinning on a listener that stays readable. */
#define ACCEPT_PAUSE_NS (100 * NS_PER_MS)
/* A connection younger than this that has sent nothing is evicted only
 * when everyone is (room_victim)... */
#define FRESH_NS       (100 * NS_PER_MS)
/* ...and never before this age: with every slot that young, newcomers wait
 * in the kernel's backlog, so a crowd reconnecting as fast as it is closed
 * cannot churn the table faster than a client writes its request. */
#define MIN_LIFE_NS    (25 * NS_PER_MS)
/* Room for the status line and headers of any response we send. */
#define HEAD_CAP       768
/* Pending connections the kernel queues for us: enough for a crowd of
 * reconnecting clients not to drop a probe's SYN. */
#define LISTEN_BACKLOG 1024

/* Built from metrics/dashboard.html by metrics/embed.c. */
extern const unsigned char metrics_dashboard_html[];
extern const size_t metrics_dashboard_html_len;

/* epoll tags; a client's tag is TAG_CLIENT + its slot. */
enum { TAG_LISTEN, TAG_STOP, TAG_TIMER, TAG_CLIENT };

enum client_state { C_FREE, C_READ, C_WRITE, C_LINGER };

struct client {
	int fd;
	enum client_state state;
	bool close_after;        /* LINGER once the response is out */
	uint64_t deadline_ns;
	size_t in_len;
	char *out;               /* unsent tail of a response (malloc) */
	size_t out_len;
	size_t out_off;
	char in[METRICS_HTTP_MAX_HEAD];
};

struct metrics_server {
	int listen_fd;
	int epoll_fd;
	int stop_fd;             /* eventfd: metrics_server_stop -> thread */
	int timer_fd;            /* fires on each second since start */
	uint16_t port;
	bool listen_paused;
	bool listen_for_room;    /* paused until a slot frees, not for fds */
	uint64_t listen_resume_ns;
	pthread_t thread;

	struct metrics_shard *const *shards;
	unsigned nshards;
	const _Atomic int *state;
	const struct metrics_cluster *cluster;
	bool have_info;
	struct metrics_info info;  /* strings point into version/allocator */
	char version[64];
	char allocator[32];
	void (*on_error)(const char *msg);
	unsigned max_clients;
	unsigned nclients;
	uint64_t timeout_ns;
	uint64_t start_ns;

	struct metrics_rate rate;
	char *body;              /* render buffer, body_cap bytes, reused */
	size_t body_cap;
	struct client *clients;  /* max_clients slots */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- connections --------------------------------------------------------- */

static int watch(struct metrics_server *srv, struct client *c, uint32_t events)
{
	struct epoll_event ev = {
		.events = events,
		.data.u64 = TAG_CLIENT + (uint64_t)(c - srv->clients),
	};
	return epoll_ctl(srv->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void client_close(struct metrics_server *srv, struct client *c)
{
	/* close() drops the fd from the epoll set too. */
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->fd = -1;
	c->state = C_FREE;
	srv->nclients--;
}

static void linger_start(struct metrics_server *srv, struct client *c,
                         uint64_t now)
{
	shutdown(c->fd, SHUT_WR);
	c->state = C_LINGER;
	c->in_len = 0;
	c->deadline_ns = now + srv->timeout_ns;
	if (watch(srv, c, EPOLLIN) < 0)
		client_close(srv, c);
}

/* How a response left: whole, partly (tail kept, C_WRITE), or the client
 * was closed on a send error. */
enum sent { SENT_ALL, SENT_PART, SENT_CLOSED };

/* Send head + body; keep what the socket does not take for EPOLLOUT. */
static enum sent send_response(struct metrics_server *srv, struct client *c,
                               const char *head, size_t head_len,
                               const char *body, size_t body_len)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)head, .iov_len = head_len },
		{ .iov_base = (void *)body, .iov_len = body_len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = body_len ? 2 : 1 };
	size_t total = head_len + body_len;
	ssize_t w;
	do
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno != EAGAIN) {
		client_close(srv, c);
		return SENT_CLOSED;
	}
	size_t sent = w < 0 ? 0 : (size_t)w;
	if (sent == total)
		return SENT_ALL;
	size_t rest = total - sent;
	c->out = malloc(rest);
	if (!c->out) {
		client_close(srv, c);
		return SENT_CLOSED;
	}
	if (sent < head_len) {
		memcpy(c->out, head + sent, head_len - sent);
		memcpy(c->out + (head_len - sent), body, body_len);
	} else {
		memcpy(c->out, body + (sent - head_len), rest);
	}
	c->out_len = rest;
	c->out_off = 0;
	c->state = C_WRITE;
	c->deadline_ns = mono_ns() + srv->timeout_ns;
	if (watch(srv, c, EPOLLOUT) < 0) {
		client_close(srv, c);
		return SENT_CLOSED;
	}
	return SENT_PART;
}

static void process_requests(struct metrics_server *srv, struct client *c);

/* A response left the process entirely: close or wait for the next
 * request. */
static void response_done(struct metrics_server *srv, struct client *c)
{
	uint64_t now = mono_ns();
	if (c->close_after) {
		linger_start(srv, c, now);
		return;
	}
	c->state = C_READ;
	c->deadline_ns = now + srv->timeout_ns;
}

static void flush_out(struct metrics_server *srv, struct client *c)
{
	ssize_t w;
	do
		w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		         MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (errno != EAGAIN)
			client_close(srv, c);
		return;
	}
	c->out_off += (size_t)w;
	if (c->out_off < c->out_len)
		return;
	free(c->out);
	c->out = NULL;
	response_done(srv, c);
	if (c->state != C_READ)
		return;
	if (watch(srv, c, EPOLLIN) < 0) {
		client_close(srv, c);
		return;
	}
	/* A pipelined request may already be buffered. */
	process_requests(srv, c);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default:  return "Unknown";
	}
}

static const char text_plain[] = "text/plain; charset=utf-8";
static const char exposition[] = "text/plain; version=0.0.4; charset=utf-8";

/* Status line and headers into head[HEAD_CAP]; extra is NULL or more
 * header lines, each ending in CRLF. */
static size_t format_head(char *head, int status, const char *type,
                          size_t body_len, const char *extra, bool close_conn)
{
	char date[64];
	struct tm tm;
	time_t t = time(NULL);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	int n = snprintf(head, HEAD_CAP,
		"HTTP/1.1 %d %s\r\n"
		"Date: %s\r\n"
		"Content-Type: %s\r\n"
		"Content-Length: %zu\r\n"
		"%s%s\r\n",
		status, reason(status), date, type, body_len,
		extra ? extra : "",
		close_conn ? "Connection: close\r\n" : "");
	return n > 0 && n < HEAD_CAP ? (size_t)n : 0;
}

static const char allow_get[] = "Allow: GET\r\n";

static enum sent respond(struct metrics_server *srv, struct client *c,
                         int status, const char *type, const char *body,
                         size_t body_len, const char *extra)
{
	char head[HEAD_CAP];
	size_t head_len = format_head(head, status, type, body_len, extra,
	                              c->close_after);
	return send_response(srv, c, head, head_len, body, body_len);
}

static enum sent respond_text(struct metrics_server *srv, struct client *c,
                              int status, const char *text, const char *extra)
{
	return respond(srv, c, status, text_plain, text, strlen(text), extra);
}

/* /metrics (Prometheus text) or /stats.json (the dashboard's JSON). */
static enum sent serve_metrics(struct metrics_server *srv, struct client *c,
                               bool json)
{
	struct metrics_process proc;
	struct metrics_extra extra = {
		.messages_per_second = srv->rate.per_second,
		.process = metrics_process_read(&proc) == 0 ? &proc : NULL,
		.info = srv->have_info ? &srv->info : NULL,
		.uptime_ms = (mono_ns() - srv->start_ns) / NS_PER_MS,
		.cluster = srv->cluster,
	};
	int n = json ? metrics_render_json(srv->body, srv->body_cap, srv->shards,
	                                   srv->nshards, &extra)
	             : metrics_render(srv->body, srv->body_cap, srv->shards,
	                              srv->nshards, &extra);
	if (n < 0)
		return respond_text(srv, c, 500, "metrics rendering failed\n", NULL);
	if (json)
		return respond(srv, c, 200, "application/json", srv->body, (size_t)n,
		               "Cache-Control: no-store\r\n");
	return respond(srv, c, 200, exposition, srv->body, (size_t)n, NULL);
}

/* The page is self-contained; the policy forbids it anything from
 * elsewhere (scripts, styles, fonts, requests to other hosts). */
static const char dashboard_headers[] =
	"Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
	"style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n"
	"Cache-Control: no-cache\r\n";

static enum sent serve_dashboard(struct metrics_server *srv, struct client *c)
{
	return respond(srv, c, 200, "text/html; charset=utf-8",
	               (const char *)metrics_dashboard_html,
	               metrics_dashboard_html_len, dashboard_headers);
}

static enum sent serve_health(struct metrics_server *srv, struct client *c)
{
	int st = srv->state ? atomic_load_explicit(srv->state, memory_order_relaxed)
	                    : METRICS_STATE_ACCEPTING;
	if (st == METRICS_STATE_ACCEPTING)
		return respond_text(srv, c, 200, "ok", NULL);
	if (st == METRICS_STATE_STARTING)
		return respond_text(srv, c, 503, "starting", NULL);
	return respond_text(srv, c, 503, "shutting down", NULL);
}

static bool path_is(const struct http_req *r, const char *lit)
{
	size_t n = strlen(lit);
	return r->path_len == n && memcmp(r->path, lit, n) == 0;
}

enum route { R_NONE, R_METRICS, R_HEALTH, R_DASHBOARD, R_STATS };

static enum route route_of(const struct http_req *r)
{
	if (path_is(r, "/metrics"))
		return R_METRICS;
	if (path_is(r, "/healthz"))
		return R_HEALTH;
	if (path_is(r, "/"))
		return R_DASHBOARD;
	if (path_is(r, "/stats.json"))
		return R_STATS;
	return R_NONE;
}

/* Answer the complete requests in c->in, in order, for as long as each
 * response leaves at once; a partial send resumes in flush_out. */
static void process_requests(struct metrics_server *srv, struct client *c)
{
	while (c->state == C_READ) {
		struct http_req req;
		long head = http_req_parse(c->in, c->in_len, &req);
		if (head == 0 && c->in_len < sizeof(c->in))
			return;
		enum sent s;
		if (head <= 0) {
			c->close_after = true;
			s = respond_text(srv, c, 400, "bad request\n", NULL);
		} else {
			c->close_after = req.close;
			enum route rt = route_of(&req);
			bool get = req.get;
			/* req points into c->in: decide before consuming. */
			memmove(c->in, c->in + head, c->in_len - (size_t)head);
			c->in_len -= (size_t)head;
			if (rt == R_NONE)
				s = respond_text(srv, c, 404, "not found\n", NULL);
			else if (!get)
				s = respond_text(srv, c, 405, "method not allowed\n", allow_get);
			else if (rt == R_METRICS)
				s = serve_metrics(srv, c, false);
			else if (rt == R_STATS)
				s = serve_metrics(srv, c, true);
			else if (rt == R_DASHBOARD)
				s = serve_dashboard(srv, c);
			else
				s = serve_health(srv, c);
		}
		if (s != SENT_ALL)
			return;
		response_done(srv, c);
	}
}

static void client_readable(struct metrics_server *srv, struct client *c)
{
	if (c->state == C_LINGER) {
		ssize_t r = recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			client_close(srv, c);
		return;
	}
	ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
	                 MSG_DONTWAIT);
	if (r < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_close(srv, c);
		return;
	}
	if (r == 0) {
		/* The peer is done sending: nothing more can complete. */
		client_close(srv, c);
		return;
	}
	c->in_len += (size_t)r;
	process_requests(srv, c);
}

static void client_event(struct metrics_server *srv, struct client *c,
                         uint32_t events)
{
	if (c->state == C_FREE)
		return;
	if (c->state == C_WRITE) {
		if (events & (EPOLLERR | EPOLLHUP))
			client_close(srv, c);
		else if (events & EPOLLOUT)
			flush_out(srv, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		client_readable(srv, c);
}

static const char busy[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Length: 17\r\n"
	"Connection: close\r\n"
	"\r\n"
	"too many clients\n";

static void reject_full(int fd)
{
	/* Best effort: a fresh socket's buffer takes it whole. */
	ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	close(fd);
}

/*
 * The table is full and a connection waits: choose whom to close for it.
 * A LINGER connection (nearest its deadline) goes first, else the READ
 * connection that has waited longest for a request, passing over those
 * that have sent nothing yet and came less than FRESH_NS ago while there
 * is anyone else: a probe that connected and is about to write its request
 * is not pushed out by a crowd reconnecting faster than it writes. When
 * everyone is that fresh the oldest of them goes, but only once it is
 * MIN_LIFE_NS old; until then *later_ns says when to ask again. NULL with
 * *later_ns 0 when every slot is in WRITE: nothing to spare.
 */
static struct client *room_victim(struct metrics_server *srv, uint64_t now,
                                  uint64_t *later_ns)
{
	struct client *linger = NULL, *read = NULL, *fresh = NULL;
	/* A READ connection's deadline is its start plus timeout_ns. */
	uint64_t fresh_after = now + srv->timeout_ns - FRESH_NS;
	for (unsigned i = 0; i < srv->max_clients; i++) {
		struct client *c = &srv->clients[i];
		if (c->state == C_LINGER &&
		    (!linger || c->deadline_ns < linger->deadline_ns)) {
			linger = c;
		} else if (c->state == C_READ) {
			struct client **best =
				c->in_len == 0 && c->deadline_ns > fresh_after ? &fresh : &read;
			if (!*best || c->deadline_ns < (*best)->deadline_ns)
				*best = c;
		}
	}
	*later_ns = 0;
	if (linger || read)
		return linger ? linger : read;
	uint64_t old_enough = fresh ? fresh->deadline_ns - srv->timeout_ns + MIN_LIFE_NS : 0;
	if (fresh && old_enough > now) {
		*later_ns = old_enough;
		return NULL;
	}
	return fresh;
}

/* Close the victim; one with part of a request gets 503 first, like a
 * newcomer would; an idle one just closes. */
static void evict(struct metrics_server *srv, struct client *victim)
{
	if (victim->state == C_READ && victim->in_len > 0) {
		ssize_t w = send(victim->fd, busy, sizeof(busy) - 1,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
	}
	client_close(srv, victim);
}

static void listen_pause(struct metrics_server *srv, bool pause)
{
	struct epoll_event ev = {
		.events = pause ? 0 : EPOLLIN,
		.data.u64 = TAG_LISTEN,
	};
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_MOD, srv->listen_fd, &ev) == 0)
		srv->listen_paused = pause;
}

static void accept_clients(struct metrics_server *srv)
{
	/* With the table full, each newcomer closes someone: make room for
	 * at most a quarter of the table per pass, so a connection accepted
	 * in one pass has its request read in the next before it can be the
	 * one waiting longest. */
	unsigned evictions = 0, max_evictions = (srv->max_clients + 3) / 4;
	for (int k = 0; k < ACCEPT_BATCH && evictions < max_evictions; k++) {
		struct client *victim = NULL;
		bool full = srv->nclients == srv->max_clients;
		if (full) {
			/* Everyone too young to close: leave the newcomers
			 * in the backlog until someone is old enough or
			 * leaves. */
			uint64_t later_ns;
			victim = room_victim(srv, mono_ns(), &later_ns);
			if (later_ns) {
				srv->listen_resume_ns = later_ns;
				srv->listen_for_room = true;
				listen_pause(srv, true);
				return;
			}
		}
		int fd = accept4(srv->listen_fd, NULL, NULL,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				srv->listen_resume_ns = mono_ns() + ACCEPT_PAUSE_NS;
				srv->listen_for_room = false;
				listen_pause(srv, true);
			}
			return;
		}
		if (full) {
			if (!victim) {
				reject_full(fd);
				continue;
			}
			evict(srv, victim);
			evictions++;
		}
		struct client *c = srv->clients;
		while (c->state != C_FREE)
			c++;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event ev = {
			.events = EPOLLIN,
			.data.u64 = TAG_CLIENT + (uint64_t)(c - srv->clients),
		};
		if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = C_READ;
		c->close_after = false;
		c->in_len = 0;
		c->out = NULL;
		c->deadline_ns = mono_ns() + srv->timeout_ns;
		srv->nclients++;
		/* The request of a client that wrote at once (a probe, a
		 * scraper) is usually here already: answer it now. */
		client_readable(srv, c);
	}
}

/* Close every connection whose deadline passed; return the earliest
 * deadline still pending (UINT64_MAX if none). */
static uint64_t expire(struct metrics_server *srv, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (unsigned i = 0; i < srv->max_clients && srv->nclients; i++) {
		struct client *c = &srv->clients[i];
		if (c->state == C_FREE)
			continue;
		if (c->deadline_ns > now) {
			if (c->deadline_ns < next)
				next = c->deadline_ns;
			continue;
		}
		if (c->state == C_READ && c->in_len > 0) {
			/* Part of a request came and stalled: say why before
			 * closing. An idle keep-alive connection just closes, so
			 * a request racing the close never reads a stray 408. */
			char head[HEAD_CAP];
			static const char msg[] = "request timeout\n";
			size_t n = format_head(head, 408, text_plain,
			                       sizeof(msg) - 1, NULL, true);
			struct iovec iov[2] = {
				{ .iov_base = head, .iov_len = n },
				{ .iov_base = (void *)msg, .iov_len = sizeof(msg) - 1 },
			};
			struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
			ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
		}
		client_close(srv, c);
	}
	return next;
}

static void rate_tick(struct metrics_server *srv)
{
	uint64_t expirations;
	if (read(srv->timer_fd, &expirations, sizeof(expirations)) < 0)
		return;
	metrics_rate_tick(&srv->rate, mono_ns(),
	                  metrics_frames_received_total(srv->shards, srv->nshards));
}

static void *exporter_main(void *arg)
{
	struct metrics_server *srv = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t next = UINT64_MAX;
	for (;;) {
		uint64_t now = mono_ns();
		if (srv->listen_paused && srv->listen_resume_ns < next)
			next = srv->listen_resume_ns;
		int timeout = -1;
		if (next != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;
			uint64_t ms = (wait + NS_PER_MS - 1) / NS_PER_MS;
			timeout = ms > 60000 ? 60000 : (int)ms;
		}
		int n = epoll_wait(srv->epoll_fd, evs, MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			char msg[160];
			snprintf(msg, sizeof msg, "metrics: epoll_wait: %s; exporter stopped",
			         strerror(errno));
			if (srv->on_error)
				srv->on_error(msg);
			else
				fprintf(stderr, "net001 %s\n", msg);
			return NULL;
		}
		/* Clients first, new connections last: a request that has
		 * arrived is answered before a newcomer can push its
		 * connection out of a full table. */
		bool accept_ready = false;
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_STOP)
				return NULL;
			if (tag == TAG_TIMER)
				rate_tick(srv);
			else if (tag == TAG_LISTEN)
				accept_ready = true;
			else
				client_event(srv, &srv->clients[tag - TAG_CLIENT],
				             evs[i].events);
		}
		if (accept_ready)
			accept_clients(srv);
		now = mono_ns();
		if (srv->listen_paused &&
		    (now >= srv->listen_resume_ns ||
		     (srv->listen_for_room && srv->nclients < srv->max_clients)))
			listen_pause(srv, false);
		next = expire(srv, now);
	}
}

/* ---- start / stop -------------------------------------------------------- */

static int open_listener(const struct metrics_server_config *cfg, int *fd_out,
                         uint16_t *port_out)
{
	const char *host = cfg->host && cfg->host[0] ? cfg->host : "0.0.0.0";
	char service[8];
	snprintf(service, sizeof(service), "%u", (unsigned)cfg->port);
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res;
	int gai = getaddrinfo(host, service, &hints, &res);
	if (gai != 0)
		return gai == EAI_SYSTEM ? -errno : (gai == EAI_MEMORY ? -ENOMEM : -EINVAL);

	int err = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		                SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		int one = 1;
		/* A restarted server must not wait out TIME_WAIT of its scrapes. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, LISTEN_BACKLOG) < 0) {
			err = -errno;
			close(fd);
			continue;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
			err = -errno;
			close(fd);
			continue;
		}
		*port_out = ntohs(ss.ss_family == AF_INET6
			? ((struct sockaddr_in6 *)&ss)->sin6_port
			: ((struct sockaddr_in *)&ss)->sin_port);
		*fd_out = fd;
		err = 0;
		break;
	}
	freeaddrinfo(res);
	return err;
}

static int add_fd(int ep, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void server_free(struct metrics_server *srv)
{
	if (srv->clients) {
		for (unsigned i = 0; i < srv->max_clients; i++) {
			if (srv->clients[i].state != C_FREE)
				close(srv->clients[i].fd);
			free(srv->clients[i].out);
		}
	}
	free(srv->clients);
	free(srv->body);
	if (srv->timer_fd >= 0)
		close(srv->timer_fd);
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	if (srv->epoll_fd >= 0)
		close(srv->epoll_fd);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	free(srv);
}

int metrics_server_start(const struct metrics_server_config *cfg,
                         struct metrics_server **out)
{
	if (!cfg || !out || (cfg->nshards && !cfg->shards))
		return -EINVAL;
	for (unsigned i = 0; i < cfg->nshards; i++)
		if (!cfg->shards[i])
			return -EINVAL;

	struct metrics_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->listen_fd = srv->epoll_fd = srv->stop_fd = srv->timer_fd = -1;
	srv->shards = cfg->shards;
	srv->nshards = cfg->nshards;
	srv->state = cfg->state;
	srv->cluster = cfg->cluster;
	if (cfg->info) {
		srv->info = *cfg->info;
		snprintf(srv->version, sizeof(srv->version), "%s",
		         cfg->info->version ? cfg->info->version : "unknown");
		snprintf(srv->allocator, sizeof(srv->allocator), "%s",
		         cfg->info->allocator ? cfg->info->allocator : "libc");
		srv->info.version = srv->version;
		srv->info.allocator = srv->allocator;
		srv->have_info = true;
	}
	srv->on_error = cfg->on_error;
	srv->max_clients = cfg->max_clients ? cfg->max_clients
	                                    : METRICS_DEFAULT_MAX_CLIENTS;
	srv->timeout_ns = (uint64_t)(cfg->request_timeout_ms
	                             ? cfg->request_timeout_ms
	                             : METRICS_DEFAULT_TIMEOUT_MS) * NS_PER_MS;

	int err = -ENOMEM;
	size_t prom = metrics_render_bound(cfg->nshards);
	size_t json = metrics_render_json_bound(cfg->nshards);
	srv->body_cap = prom > json ? prom : json;
	srv->body = malloc(srv->body_cap);
	srv->clients = calloc(srv->max_clients, sizeof(*srv->clients));
	if (!srv->body || !srv->clients)
		goto fail;
	for (unsigned i = 0; i < srv->max_clients; i++)
		srv->clients[i].fd = -1;

	err = open_listener(cfg, &srv->listen_fd, &srv->port);
	if (err < 0)
		goto fail;

	srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	srv->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	srv->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (srv->epoll_fd < 0 || srv->stop_fd < 0 || srv->timer_fd < 0) {
		err = -errno;
		goto fail;
	}

	/* Sample at start + k seconds: every interval the gauge reports is a
	 * whole second. The baseline is 0, not the total now: the workers
	 * accept before the exporter starts, and frames they counted in that
	 * gap belong to the first second, not to a baseline nobody sees. */
	uint64_t t0 = mono_ns();
	srv->start_ns = t0;
	metrics_rate_start(&srv->rate, t0, 0);
	uint64_t first = t0 + NS_PER_SEC;
	struct itimerspec its = {
		.it_interval = { .tv_sec = 1 },
		.it_value = { .tv_sec = (time_t)(first / NS_PER_SEC),
		              .tv_nsec = (long)(first % NS_PER_SEC) },
	};
	if (timerfd_settime(srv->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		err = -errno;
		goto fail;
	}

	if ((err = add_fd(srv->epoll_fd, srv->listen_fd, TAG_LISTEN)) < 0 ||
	    (err = add_fd(srv->epoll_fd, srv->stop_fd, TAG_STOP)) < 0 ||
	    (err = add_fd(srv->epoll_fd, srv->timer_fd, TAG_TIMER)) < 0)
		goto fail;

	/* Signals belong to the engine's main thread, not the exporter. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&srv->thread, NULL, exporter_main, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		err = -rc;
		goto fail;
	}
	pthread_setname_np(srv->thread, "net001-metrics");
	*out = srv;
	return 0;

fail:
	server_free(srv);
	return err;
}

uint16_t metrics_server_port(const struct metrics_server *srv)
{
	return srv->port;
}

void metrics_server_stop(struct metrics_server *srv)
{
	if (!srv)
		return;
	uint64_t one = 1;
	ssize_t w = write(srv->stop_fd, &one, sizeof(one));
	(void)w;
	pthread_join(srv->thread, NULL);
	server_free(srv);
}
