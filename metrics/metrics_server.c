/*
 * metrics_server.c - the exporter thread: libmicrohttpd, driven from an
 * epoll loop of our own, serving /metrics, /healthz and the dashboard, and
 * the once-a-second sampler behind net001_messages_per_second. See
 * metrics_server.h for the HTTP contract.
 *
 * libmicrohttpd runs without threads of its own (MHD_USE_EPOLL, external
 * polling): its epoll descriptor sits in the exporter's epoll set next to
 * the stop eventfd and the per-second timerfd, and the exporter calls
 * MHD_run whenever anything is ready. Every callback below therefore runs
 * on the exporter thread, as do the two things libmicrohttpd does not do
 * the way the contract wants:
 *
 *   - Deadlines. libmicrohttpd's own timeout is whole seconds of
 *     inactivity, which a client trickling a byte a second never reaches.
 *     The exporter keeps an absolute deadline per connection instead:
 *     ready for a request (accept, response done) -> deadline = now +
 *     timeout; request complete (handler called) -> deadline = now +
 *     timeout for the response to be taken. Past it the socket is shut
 *     down, libmicrohttpd sees the end of the stream and closes it. Its
 *     own timeout stays on, a second later, as a backstop.
 *   - The client cap. A connection past max_clients closes the open one
 *     that has waited longest for a request (idle keep-alive or slow); if
 *     every one is busy answering, the newcomer is marked and its request
 *     answered 503 + close. A silent or slow client thus never keeps a
 *     probe of /healthz out.
 *
 *   accept ---> WAITING --- request complete ---> BUSY
 *                  ^   (on_request: response       |
 *                  |    queued at once)            |
 *                  +----- response sent -----------+
 *                        (on_completed)
 *   WAITING or BUSY past its deadline, or WAITING and chosen to make room:
 *   shutdown(SHUT_RDWR) -> CUT -> libmicrohttpd closes it (on_connection).
 *
 * Memory: the client slots and the render buffer are allocated once at
 * start. Each response body is copied into libmicrohttpd (one allocation
 * per scrape, freed when sent); each connection has libmicrohttpd's pool of
 * POOL_BYTES.
 */
#include "metrics_server.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
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
#define MAX_EVENTS     8
/* libmicrohttpd's memory per connection: the request head is read into
 * it, so a head of METRICS_HTTP_MAX_HEAD fits with room for the parsed
 * fields and the response head. */
#define POOL_BYTES     ((size_t)METRICS_HTTP_MAX_HEAD * 2)

/* Built from metrics/dashboard.html (metrics/embed.c). */
extern const unsigned char metrics_dashboard_html[];
extern const size_t metrics_dashboard_html_len;

/* epoll tags. */
enum { TAG_MHD, TAG_STOP, TAG_TIMER };

/* One per TCP connection libmicrohttpd holds (its socket context). */
struct client {
	struct MHD_Connection *conn;   /* NULL: slot free */
	int fd;
	bool busy;        /* a request is being answered */
	bool cut;         /* shut down here; libmicrohttpd closes it next */
	bool over;        /* came past the cap with no room: answered 503 */
	uint64_t deadline_ns;
	struct client *next_free;
};

struct metrics_server {
	struct MHD_Daemon *mhd;
	int listen_fd;           /* handed to libmicrohttpd, which closes it */
	int epoll_fd;
	int stop_fd;             /* eventfd: metrics_server_stop -> thread */
	int timer_fd;            /* fires on each second since start */
	uint16_t port;
	pthread_t thread;

	struct metrics_shard *const *shards;
	unsigned nshards;
	const _Atomic int *state;
	bool have_info;
	struct metrics_info info;
	char version[64];
	char allocator[32];

	unsigned max_clients;
	unsigned nlive;          /* connections neither cut nor over the cap */
	uint64_t timeout_ns;
	uint64_t start_ns;

	struct metrics_rate rate;
	char *body;              /* render buffer, body_cap bytes, reused */
	size_t body_cap;
	struct client *clients;  /* nslots slots */
	unsigned nslots;
	struct client *free_list;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- connections --------------------------------------------------------- */

static struct client *client_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* Shut the socket down; libmicrohttpd sees the end of the stream on its
 * next run and closes the connection (on_connection frees the slot). */
static void client_cut(struct metrics_server *srv, struct client *c)
{
	if (c->cut)
		return;
	shutdown(c->fd, SHUT_RDWR);
	c->cut = true;
	if (!c->over)
		srv->nlive--;
}

/* Close the live connection that has waited longest for a request, other
 * than keep. False if every live connection is busy answering. */
static bool make_room(struct metrics_server *srv, const struct client *keep)
{
	struct client *oldest = NULL;
	for (unsigned i = 0; i < srv->nslots; i++) {
		struct client *c = &srv->clients[i];
		if (!c->conn || c == keep || c->cut || c->over || c->busy)
			continue;
		if (!oldest || c->deadline_ns < oldest->deadline_ns)
			oldest = c;
	}
	if (!oldest)
		return false;
	client_cut(srv, oldest);
	return true;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct metrics_server *srv = cls;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct client *c = *ctx;
		if (!c)
			return;
		if (!c->cut && !c->over)
			srv->nlive--;
		c->conn = NULL;
		c->next_free = srv->free_list;
		srv->free_list = c;
		*ctx = NULL;
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct client *c = srv->free_list;
	*ctx = NULL;
	if (!ci || !c) {
		/* No slot (more than nslots, which libmicrohttpd's own limit
		 * prevents): refuse it. */
		if (ci)
			shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	srv->free_list = c->next_free;
	*c = (struct client){
		.conn = conn,
		.fd = ci->connect_fd,
		.deadline_ns = mono_ns() + srv->timeout_ns,
	};
	*ctx = c;
	if (srv->nlive >= srv->max_clients && !make_room(srv, c))
		c->over = true;
	else
		srv->nlive++;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_ctx,
                         enum MHD_RequestTerminationCode toe)
{
	struct metrics_server *srv = cls;
	(void)toe;
	*req_ctx = NULL;
	struct client *c = client_of(conn);
	if (c && c->conn) {
		c->busy = false;
		c->deadline_ns = mono_ns() + srv->timeout_ns;
	}
}

/* Shut down every connection past its deadline; return the earliest
 * deadline still pending (UINT64_MAX if none). */
static uint64_t expire(struct metrics_server *srv, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (unsigned i = 0; i < srv->nslots; i++) {
		struct client *c = &srv->clients[i];
		if (!c->conn || c->cut)
			continue;
		if (c->deadline_ns <= now)
			client_cut(srv, c);
		else if (c->deadline_ns < next)
			next = c->deadline_ns;
	}
	return next;
}

/* ---- requests ------------------------------------------------------------ */

static const char text_plain[] = "text/plain; charset=utf-8";
static const char exposition[] = "text/plain; version=0.0.4; charset=utf-8";

/* Queue a response; body is copied unless it is static (persistent). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *type, const void *body, size_t len,
                             bool persistent, bool allow, bool close)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
		persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	bool ok = MHD_add_response_header(r, "Content-Type", type) == MHD_YES;
	if (allow)
		ok = ok && MHD_add_response_header(r, "Allow", "GET") == MHD_YES;
	if (close)
		ok = ok && MHD_add_response_header(r, "Connection", "close") == MHD_YES;
	enum MHD_Result ret = ok ? MHD_queue_response(conn, status, r) : MHD_NO;
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status,
                                  const char *text, bool allow, bool close)
{
	return reply(conn, status, text_plain, text, strlen(text), true, allow, close);
}

/* What the exporter checks in the fields libmicrohttpd parsed. */
struct field_check {
	unsigned host;
	unsigned content_length;
	bool bad;
};

static enum MHD_Result check_field(void *cls, enum MHD_ValueKind kind,
                                   const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
	struct field_check *fc = cls;
	(void)kind;
	if (key_size == 4 && strncasecmp(key, "host", 4) == 0)
		fc->host++;
	else if (key_size == 14 && strncasecmp(key, "content-length", 14) == 0)
		fc->content_length++;
	for (size_t i = 0; value && i < value_size; i++) {
		unsigned char ch = (unsigned char)value[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			fc->bad = true;
	}
	return MHD_YES;
}

static void fill_process_extra(struct metrics_server *srv, struct metrics_extra *x,
                               struct metrics_process *proc)
{
	*x = (struct metrics_extra){
		.messages_per_second = srv->rate.per_second,
		.process = metrics_process_read(proc) == 0 ? proc : NULL,
		.info = srv->have_info ? &srv->info : NULL,
		.uptime_ms = (mono_ns() - srv->start_ns) / NS_PER_MS,
	};
}

static enum MHD_Result serve_metrics(struct metrics_server *srv,
                                     struct MHD_Connection *conn, bool json)
{
	struct metrics_process proc;
	struct metrics_extra extra;
	fill_process_extra(srv, &extra, &proc);
	int n = json ? metrics_render_json(srv->body, srv->body_cap, srv->shards,
	                                   srv->nshards, &extra)
	             : metrics_render(srv->body, srv->body_cap, srv->shards,
	                              srv->nshards, &extra);
	if (n < 0)
		return reply_text(conn, 500, "metrics rendering failed\n", false, false);
	return reply(conn, 200, json ? "application/json" : exposition, srv->body,
	             (size_t)n, false, false, false);
}

static enum MHD_Result serve_health(struct metrics_server *srv,
                                    struct MHD_Connection *conn)
{
	int st = srv->state ? atomic_load_explicit(srv->state, memory_order_relaxed)
	                    : METRICS_STATE_ACCEPTING;
	if (st == METRICS_STATE_ACCEPTING)
		return reply_text(conn, 200, "ok", false, false);
	if (st == METRICS_STATE_STARTING)
		return reply_text(conn, 503, "starting", false, false);
	return reply_text(conn, 503, "shutting down", false, false);
}

static enum MHD_Result serve_dashboard(struct MHD_Connection *conn)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		metrics_dashboard_html_len, (void *)metrics_dashboard_html,
		MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	/* The page is self-contained: forbid it anything from elsewhere. */
	bool ok = MHD_add_response_header(r, "Content-Type",
	                                  "text/html; charset=utf-8") == MHD_YES &&
	          MHD_add_response_header(r, "Content-Security-Policy",
	                                  "default-src 'none'; script-src 'unsafe-inline'; "
	                                  "style-src 'unsafe-inline'; connect-src 'self'; "
	                                  "img-src data:") == MHD_YES;
	enum MHD_Result ret = ok ? MHD_queue_response(conn, 200, r) : MHD_NO;
	MHD_destroy_response(r);
	return ret;
}

/* Whether the request announces a body: a Content-Length other than 0,
 * or any Transfer-Encoding. */
static bool has_body(struct MHD_Connection *conn)
{
	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding"))
		return true;
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                             "Content-Length");
	return cl && cl[strspn(cl, "0")] != '\0';
}

enum route { R_NONE, R_METRICS, R_HEALTH, R_DASHBOARD, R_STATS };

static enum route route_of(const char *url)
{
	if (strcmp(url, "/metrics") == 0)
		return R_METRICS;
	if (strcmp(url, "/healthz") == 0)
		return R_HEALTH;
	if (strcmp(url, "/") == 0)
		return R_DASHBOARD;
	if (strcmp(url, "/stats.json") == 0)
		return R_STATS;
	return R_NONE;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req_ctx)
{
	struct metrics_server *srv = cls;
	(void)version;
	(void)upload;
	struct client *c = client_of(conn);
	if (!c || c->cut)
		return MHD_NO;
	if (*req_ctx == NULL) {
		/* First call, the head parsed. A request with a body is
		 * answered now: libmicrohttpd then never reads the body and
		 * closes after the response. One without a body is answered
		 * on the next call, once libmicrohttpd has taken the request
		 * as complete (a response queued on the first call always
		 * closes the connection). */
		*req_ctx = srv;
		c->busy = true;
		c->deadline_ns = mono_ns() + srv->timeout_ns;
		if (!has_body(conn))
			return MHD_YES;
	} else if (*upload_size) {
		/* Not reached: a request with a body was answered above. */
		*upload_size = 0;
		return MHD_YES;
	}
	if (c->over)
		return reply_text(conn, 503, "too many clients\n", false, true);

	struct field_check fc = { 0 };
	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, check_field, &fc);
	if (url[0] != '/' || fc.host > 1 || fc.content_length > 1 || fc.bad)
		return reply_text(conn, 400, "bad request\n", false, true);

	enum route rt = route_of(url);
	if (rt == R_NONE)
		return reply_text(conn, 404, "not found\n", false, false);
	if (strcmp(method, "GET") != 0)
		return reply_text(conn, 405, "method not allowed\n", true, false);
	switch (rt) {
	case R_METRICS:   return serve_metrics(srv, conn, false);
	case R_STATS:     return serve_metrics(srv, conn, true);
	case R_HEALTH:    return serve_health(srv, conn);
	case R_DASHBOARD: return serve_dashboard(conn);
	default:          return MHD_NO;
	}
}

/* ---- the exporter thread ------------------------------------------------- */

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
		int timeout = -1;
		MHD_UNSIGNED_LONG_LONG mt;
		if (MHD_get_timeout(srv->mhd, &mt) == MHD_YES)
			timeout = mt > 60000 ? 60000 : (int)mt;
		if (next != UINT64_MAX) {
			uint64_t now = mono_ns();
			uint64_t wait = next > now ? next - now : 0;
			uint64_t ms = (wait + NS_PER_MS - 1) / NS_PER_MS;
			if (ms > 60000)
				ms = 60000;
			if (timeout < 0 || (int)ms < timeout)
				timeout = (int)ms;
		}
		int n = epoll_wait(srv->epoll_fd, evs, MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "net001 metrics: epoll_wait: %s; exporter stopped\n",
			        strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == TAG_STOP)
				return NULL;
			if (evs[i].data.u64 == TAG_TIMER)
				rate_tick(srv);
		}
		MHD_run(srv->mhd);
		next = expire(srv, mono_ns());
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
		    listen(fd, 128) < 0) {
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
	if (srv->mhd)
		MHD_stop_daemon(srv->mhd);       /* closes listen_fd too */
	else if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	free(srv->clients);
	free(srv->body);
	if (srv->timer_fd >= 0)
		close(srv->timer_fd);
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	if (srv->epoll_fd >= 0)
		close(srv->epoll_fd);
	free(srv);
}

static void copy_info(struct metrics_server *srv, const struct metrics_info *in)
{
	srv->info = *in;
	snprintf(srv->version, sizeof(srv->version), "%s",
	         in->version ? in->version : "unknown");
	snprintf(srv->allocator, sizeof(srv->allocator), "%s",
	         in->allocator ? in->allocator : "libc");
	srv->info.version = srv->version;
	srv->info.allocator = srv->allocator;
	srv->have_info = true;
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
	if (cfg->info)
		copy_info(srv, cfg->info);
	srv->max_clients = cfg->max_clients ? cfg->max_clients
	                                    : METRICS_DEFAULT_MAX_CLIENTS;
	unsigned timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms
	                                              : METRICS_DEFAULT_TIMEOUT_MS;
	srv->timeout_ns = (uint64_t)timeout_ms * NS_PER_MS;

	/* Room for the cap, as many again shut down but not yet reaped, and
	 * a few marked over the cap. */
	srv->nslots = srv->max_clients * 2 + 16;
	int err = -ENOMEM;
	size_t prom = metrics_render_bound(cfg->nshards);
	size_t json = metrics_render_json_bound(cfg->nshards);
	srv->body_cap = prom > json ? prom : json;
	srv->body = malloc(srv->body_cap);
	srv->clients = calloc(srv->nslots, sizeof(*srv->clients));
	if (!srv->body || !srv->clients)
		goto fail;
	for (unsigned i = srv->nslots; i-- > 0;) {
		srv->clients[i].next_free = srv->free_list;
		srv->free_list = &srv->clients[i];
	}

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

	srv->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_TURBO, 0, NULL, NULL,
		on_request, srv,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)srv->listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, srv->nslots,
		/* Whole seconds of inactivity: a backstop behind the exporter's
		 * own deadlines, which come first. */
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(timeout_ms / 1000 + 2),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, POOL_BYTES,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_END);
	if (!srv->mhd) {
		err = -ENOMEM;
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->mhd,
		MHD_DAEMON_INFO_EPOLL_FD);
	if (!di) {
		err = -EINVAL;
		goto fail;
	}

	/* Sample at start + k seconds: every interval the gauge reports is a
	 * whole second. The baseline is 0, not the total now: the workers
	 * may have counted frames before this exporter started, and those
	 * belong to its first second. */
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

	if ((err = add_fd(srv->epoll_fd, di->epoll_fd, TAG_MHD)) < 0 ||
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
