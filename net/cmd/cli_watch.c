/*
 * cli_watch.c - net001-cli's watching modes and its /metrics reader.
 *
 *   --stat              GET /metrics on the metrics port every -i seconds
 *                       (default 1): connections, and the increase of the
 *                       received-frames, ERROR and broadcast-delivery
 *                       counters over the interval, per second
 *   --latency           PING every 10 ms on one connection; the running
 *                       min/max/average round trip, reported every -i
 *                       seconds (on a terminal, one line rewritten in place)
 *   --latency-history   the same, figures reset and a new line every -i
 *                       seconds (default 15)
 *
 * The HTTP side is the least that works with the server's exporter: one
 * HTTP/1.0 GET per scrape on a fresh connection, read to the end (or
 * Content-Length), status 200 required.
 */
#include "net/cmd/cli.h"

#include "core/errbuf.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LATENCY_SAMPLE_MS 10
#define METRICS_MAX (8u << 20)

/* ---- /metrics --------------------------------------------------------------- */

/* Connect to host:port within timeout_ms; the socket, or -errno / n1c code. */
static int tcp_connect(const char *host, uint16_t port, int timeout_ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char ps[8];
	snprintf(ps, sizeof ps, "%u", port);
	int g = getaddrinfo(host, ps, &hints, &res);
	if (g == EAI_AGAIN)
		return N1C_ERESOLVE_AGAIN;
	if (g != 0)
		return N1C_ERESOLVE;
	int err = N1C_EREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			freeaddrinfo(res);
			return fd;
		}
		if (errno != EINPROGRESS) {
			err = -errno;
			close(fd);
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int n = poll(&p, 1, timeout_ms);
		if (n == 1) {
			int soerr = 0;
			socklen_t len = sizeof soerr;
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
			if (soerr == 0) {
				freeaddrinfo(res);
				return fd;
			}
			err = -soerr;
		} else {
			err = n == 0 ? N1C_ETIMEOUT : -errno;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return err;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - cli_now_ms();
		if (left <= 0)
			return N1C_ETIMEOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno == EINTR) {
			if (cli_interrupted)
				return -EINTR;
			continue;
		}
		if (n < 0)
			return -errno;
	}
}

int metrics_fetch(const char *host, uint16_t port, int timeout_ms, char **body,
                  char *err, size_t errlen)
{
	char peer[300];
	cli_peer(host, port, peer, sizeof peer);
	*body = NULL;
	int64_t deadline = cli_now_ms() + timeout_ms;
	int fd = tcp_connect(host, port, timeout_ms);
	if (fd < 0) {
		errbuf_set(err, errlen, "%s: %s", peer, n1c_strerror(fd));
		return fd;
	}
	char req[400];
	int rl = snprintf(req, sizeof req, "GET /metrics HTTP/1.0\r\nHost: %s\r\n"
	                  "Accept: text/plain\r\n\r\n", host);
	int rc = 0;
	size_t off = 0;
	while (off < (size_t)rl) {
		ssize_t n = send(fd, req + off, (size_t)rl - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			rc = wait_fd(fd, POLLOUT, deadline);
			if (rc == 0)
				continue;
		} else {
			rc = -errno;
		}
		errbuf_set(err, errlen, "%s: %s", peer, n1c_strerror(rc));
		close(fd);
		return rc;
	}

	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		errbuf_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	long content_length = -1;
	char *head_end = NULL;
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= METRICS_MAX) {
				rc = -EMSGSIZE;
				errbuf_set(err, errlen, "%s: /metrics larger than %u bytes", peer,
				           METRICS_MAX);
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = -ENOMEM;
				errbuf_set(err, errlen, "out of memory");
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n > 0) {
			len += (size_t)n;
			buf[len] = '\0';
			if (!head_end && (head_end = strstr(buf, "\r\n\r\n"))) {
				const char *cl = strcasestr(buf, "\r\nContent-Length:");
				if (cl && cl < head_end)
					content_length = strtol(cl + 17, NULL, 10);
			}
			if (head_end && content_length >= 0 &&
			    len >= (size_t)(head_end + 4 - buf) + (size_t)content_length)
				break;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EAGAIN || errno == EINTR) {
			rc = wait_fd(fd, POLLIN, deadline);
			if (rc == 0)
				continue;
		} else {
			rc = -errno;
		}
		errbuf_set(err, errlen, "%s: %s", peer, n1c_strerror(rc));
		break;
	}
	close(fd);
	if (rc == 0) {
		buf[len] = '\0';
		head_end = strstr(buf, "\r\n\r\n");
		if (strncmp(buf, "HTTP/1.", 7) != 0 || len < 12 || !head_end) {
			rc = N1C_EPROTO;
			errbuf_set(err, errlen, "%s: not an HTTP response", peer);
		} else if (strncmp(buf + 9, "200", 3) != 0) {
			rc = N1C_EPROTO;
			char *eol = strstr(buf, "\r\n");
			*eol = '\0';
			errbuf_set(err, errlen, "%s: GET /metrics: %s", peer, buf);
		}
	}
	if (rc < 0) {
		free(buf);
		return rc;
	}
	size_t skip = (size_t)(head_end + 4 - buf);
	memmove(buf, buf + skip, len - skip + 1);
	*body = buf;
	return 0;
}

bool metrics_sum(const char *body, const char *name, double *out)
{
	size_t nl = strlen(name);
	bool found = false;
	double sum = 0;
	for (const char *line = body; line && *line;) {
		const char *next = strchr(line, '\n');
		if (*line != '#' && strncmp(line, name, nl) == 0 &&
		    (line[nl] == '{' || line[nl] == ' ')) {
			const char *p = line + nl;
			if (*p == '{') {
				/* Label values are quoted and may hold '}' or '\"'. */
				bool quoted = false;
				for (p++; *p && *p != '\n'; p++) {
					if (quoted && *p == '\\' && p[1])
						p++;
					else if (*p == '"')
						quoted = !quoted;
					else if (!quoted && *p == '}')
						break;
				}
				if (*p == '}')
					p++;
			}
			char *end;
			double v = strtod(p, &end);
			if (end != p && isfinite(v)) {
				sum += v;
				found = true;
			}
		}
		line = next ? next + 1 : NULL;
	}
	if (found)
		*out = sum;
	return found;
}

void cli_check_auth_needed(const struct cli *o)
{
	if (o->metrics_port == 0)
		return;
	char *body, err[200];
	int t = o->timeout_ms < 1000 ? (int)o->timeout_ms : 1000;
	if (metrics_fetch(o->host, o->metrics_port, t, &body, err, sizeof err) < 0)
		return;
	double v = 0;
	if (metrics_sum(body, "net001_config_auth", &v) && v >= 1)
		fprintf(stderr, PROG ": warning: the server requires AUTH (its /metrics has "
		        "net001_config_auth 1): a listener that has not authenticated gets no "
		        "broadcasts; give --auth USER:TOKEN or NET001_AUTH\n");
	free(body);
}

/* ---- --stat --------------------------------------------------------------- */

struct stat_sample {
	int64_t t_ms;
	double conns, frames, errors, deliveries;
};

static int stat_take(const struct cli *o, struct stat_sample *s)
{
	char *body, err[300];
	int rc = metrics_fetch(o->host, o->metrics_port, (int)o->timeout_ms, &body,
	                       err, sizeof err);
	if (rc == -EINTR)
		return rc;
	if (rc < 0) {
		fprintf(stderr, PROG ": --stat: %s\n", err);
		return rc;
	}
	s->t_ms = cli_now_ms();
	s->conns = s->frames = s->errors = s->deliveries = 0;
	bool ok = metrics_sum(body, "net001_connections_active", &s->conns);
	ok = metrics_sum(body, "net001_frames_received_total", &s->frames) && ok;
	metrics_sum(body, "net001_errors_total", &s->errors);
	metrics_sum(body, "net001_broadcast_deliveries_total", &s->deliveries);
	free(body);
	if (!ok) {
		fprintf(stderr, PROG ": --stat: the page on port %u has no net001_connections_active "
		        "or net001_frames_received_total: not a net001 server?\n", o->metrics_port);
		return N1C_EPROTO;
	}
	return 0;
}

static void nap_until(int64_t t)
{
	while (!cli_interrupted) {
		int64_t left = t - cli_now_ms();
		if (left <= 0)
			return;
		cli_nap(left > 100 ? 100 : left);
	}
}

static int run_stat(const struct cli *o)
{
	double interval = o->interval_given && o->interval > 0 ? o->interval : 1.0;
	bool tty = isatty(STDOUT_FILENO);
	struct stat_sample a, b;
	int rc = stat_take(o, &a);
	if (rc < 0)
		return rc == -EINTR ? EXIT_OK : rc == N1C_EPROTO ? EXIT_SERVER : EXIT_CONN;
	int64_t start = a.t_ms;
	uint32_t reports = o->repeat_given ? o->repeat : 0; /* 0: until Ctrl-C */
	for (uint32_t n = 0; reports == 0 || n < reports; n++) {
		nap_until(start + (int64_t)((n + 1) * interval * 1000.0));
		if (cli_interrupted)
			break;
		rc = stat_take(o, &b);
		if (rc == -EINTR)
			break;
		if (rc < 0)
			return rc == N1C_EPROTO ? EXIT_SERVER : EXIT_CONN;
		double dt = (double)(b.t_ms - a.t_ms) / 1000.0;
		if (dt <= 0)
			dt = 1e-3;
		double msgs = (b.frames - a.frames) / dt, errs = (b.errors - a.errors) / dt;
		double dels = (b.deliveries - a.deliveries) / dt;
		if (o->json) {
			printf("{\"type\":\"stat\",\"connections\":%.0f,\"msgs_per_s\":%.1f,"
			       "\"errors_per_s\":%.1f,\"deliveries_per_s\":%.1f,"
			       "\"frames_total\":%.0f,\"errors_total\":%.0f,\"deliveries_total\":%.0f,"
			       "\"interval_s\":%.3f}\n",
			       b.conns, msgs, errs, dels, b.frames, b.errors, b.deliveries, dt);
		} else {
			if (n == 0 || (tty && n % 20 == 0))
				printf("%11s %12s %10s %13s\n", "connections", "msg/s", "errors/s",
				       "deliveries/s");
			printf("%11.0f %12.0f %10.0f %13.0f\n", b.conns, msgs, errs, dels);
		}
		fflush(stdout);
		a = b;
	}
	return EXIT_OK;
}

/* ---- --latency, --latency-history ------------------------------------------ */

struct lat {
	double min, max, sum;
	uint64_t n;
};

static void lat_print(const struct cli *o, const struct lat *l, bool history,
                      double range_s, bool in_place)
{
	double avg = l->n ? l->sum / (double)l->n : 0;
	if (o->json) {
		printf("{\"type\":\"latency\",\"min_ms\":%.3f,\"max_ms\":%.3f,\"avg_ms\":%.3f,"
		       "\"samples\":%llu", l->min, l->max, avg, (unsigned long long)l->n);
		if (history)
			printf(",\"range_s\":%.2f", range_s);
		printf("}\n");
	} else {
		if (in_place)
			printf("\r\x1b[K");
		printf("min: %.3f ms, max: %.3f ms, avg: %.3f ms (%llu samples)", l->min, l->max,
		       avg, (unsigned long long)l->n);
		if (history)
			printf(" -- %.2f seconds range", range_s);
		if (!in_place)
			putchar('\n');
	}
	fflush(stdout);
}

static int run_latency(const struct cli *o, bool history)
{
	double interval = o->interval_given && o->interval > 0 ? o->interval
	                                                       : history ? 15.0 : 1.0;
	/* On a terminal, --latency keeps one line up to date. */
	bool in_place = !history && !o->json && isatty(STDOUT_FILENO);
	struct n1c *c;
	int rc = cli_open(o, &c);
	if (rc != EXIT_OK)
		return rc;
	struct lat l = { 0 };
	int64_t start = cli_now_ms(), range_start = start, last_draw = 0;
	uint32_t reports = 0;
	while (!cli_interrupted) {
		uint64_t rtt;
		int r = n1c_ping(c, &rtt);
		if (r == -EINTR)
			break;
		if (r < 0) {
			if (in_place && l.n)
				putchar('\n');
			rc = cli_fail(c, "latency", r);
			break;
		}
		double ms = (double)rtt / 1e6;
		if (l.n == 0 || ms < l.min)
			l.min = ms;
		if (l.n == 0 || ms > l.max)
			l.max = ms;
		l.sum += ms;
		l.n++;
		int64_t now = cli_now_ms();
		if (now >= start + (int64_t)((reports + 1) * interval * 1000.0)) {
			reports++;
			lat_print(o, &l, history, (double)(now - range_start) / 1000.0, in_place);
			last_draw = now;
			if (history) {
				memset(&l, 0, sizeof l);
				range_start = now;
			}
			if (o->repeat_given && o->repeat && reports >= o->repeat)
				break;
		} else if (in_place && now - last_draw >= 100) {
			lat_print(o, &l, false, 0, true);
			last_draw = now;
		}
		cli_nap(LATENCY_SAMPLE_MS);
	}
	if (in_place) {
		if (l.n && cli_interrupted)
			lat_print(o, &l, false, 0, true);
		if (l.n)
			putchar('\n');
		fflush(stdout);
	}
	n1c_close(c);
	return rc;
}

int cli_watch(const struct cli *o)
{
	if (o->stat)
		return run_stat(o);
	return run_latency(o, o->latency_history);
}
