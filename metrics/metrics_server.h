/*
 * metrics_server.h - the metrics HTTP endpoint: GET /metrics (Prometheus
 * text 0.0.4), GET /healthz and the dashboard (GET / and GET /stats.json),
 * served by one thread of its own.
 *
 * Threads: metrics_server_start and metrics_server_stop are called by the
 * thread that owns the server (main); everything else runs on the exporter
 * thread the server creates, which never touches a worker's ring. Workers
 * only write their shards (metrics.h); the exporter reads them.
 *
 * Lifetimes: the shard array, the shards and *state are borrowed; they must
 * outlive the server (until metrics_server_stop returns). cfg->host and
 * cfg->info (with its strings) are only read during metrics_server_start. The struct metrics_server handed out is
 * owned by the caller until metrics_server_stop frees it.
 *
 * HTTP, deliberately small and strict (HTTP/1.0 and 1.1, no bodies):
 *   GET /metrics[?...]  200 text/plain; version=0.0.4; charset=utf-8
 *   GET /healthz[?...]  200 "ok" while *state == METRICS_STATE_ACCEPTING,
 *                       503 otherwise
 *   GET /               200 the dashboard: one self-contained HTML page
 *                       built into the binary (metrics/dashboard.html)
 *   GET /stats.json     200 application/json, what the dashboard polls
 *                       (metrics_render_json in metrics.h)
 *   other paths         404; other methods on those paths 405 + Allow: GET
 *   malformed request   400, then close (request line and headers must use
 *                       CRLF, origin-form target, HTTP/1.1 needs one Host,
 *                       no obs-fold, no Transfer-Encoding, at most one
 *                       decimal Content-Length); bytes that cannot start a
 *                       request line (TLS, binary) get 400 at once
 *   request with a body answered as usual, then close (the body is never
 *                       read; the lingering close drains it)
 *   head > 8 KiB        400, then close
 *   slow or silent      a request must be complete, and its response taken
 *                       by the client, within request_timeout_ms of the
 *                       connection becoming ready for it; else close (408 if
 *                       part of a request had arrived)
 *   HTTP/1.1            keep-alive unless "Connection: close"; pipelined
 *                       requests are answered in order. HTTP/1.0: close.
 *   too many clients    a connection past max_clients makes room: the
 *                       lingering connection nearest its deadline is
 *                       closed, else the one that has waited longest for a
 *                       request (idle keep-alive or slow; 503 first if part
 *                       of a request had come); one that has sent nothing
 *                       is passed over for 100 ms while others can go and
 *                       kept at least 25 ms (newcomers wait in the backlog
 *                       meanwhile). Only when every client is
 *                       being sent a response does the newcomer get 503 and
 *                       close. Slow or idle clients thus cannot keep a
 *                       /healthz probe out.
 * Closing after an error is a lingering close (shutdown for writing, then
 * read and discard until EOF or the timeout) so the reply is not lost to a
 * reset.
 */
#ifndef NET001_METRICS_SERVER_H
#define NET001_METRICS_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "metrics/metrics.h"

/*
 * Values of *metrics_server_config.state, written by the engine. Any value
 * other than STARTING and ACCEPTING reads as shutting down, so a state
 * enum laid out 0 = starting, 1 = running, 2+ = draining/stopped can be
 * passed as it is.
 */
enum metrics_server_state {
	METRICS_STATE_STARTING      = 0,  /* /healthz 503 "starting" */
	METRICS_STATE_ACCEPTING     = 1,  /* /healthz 200 "ok" */
	METRICS_STATE_SHUTTING_DOWN = 2,  /* /healthz 503 "shutting down" */
};

#define METRICS_HTTP_MAX_HEAD        8192
#define METRICS_DEFAULT_MAX_CLIENTS  64
#define METRICS_DEFAULT_TIMEOUT_MS   3000

struct metrics_server_config {
	/* Numeric IPv4/IPv6 address or host name to bind; NULL or "" is
	 * 0.0.0.0. */
	const char *host;
	/* TCP port; 0 lets the kernel pick (see metrics_server_port). */
	uint16_t port;
	/* One shard per worker core, in core order (shards[i] is core="i").
	 * Their counters are taken to start at 0 (the engine zeroes them
	 * before any worker runs): frames counted before the exporter
	 * started fall into net001_messages_per_second's first second. */
	struct metrics_shard *const *shards;
	unsigned nshards;
	/* Server state read by /healthz (relaxed loads); NULL means always
	 * accepting. */
	const _Atomic int *state;
	/* Build and limits for net001_build_info and net001_config_*; NULL
	 * leaves those families out. Copied at start. */
	const struct metrics_info *info;
	/* The cluster bridge's numbers (--cluster), or NULL; it must live
	 * until metrics_server_stop(). */
	const struct metrics_cluster *cluster;
	/* Told, from the exporter thread, when an error stops the exporter
	 * (one line, no newline); NULL writes it to stderr. The server hands
	 * it to its logger, so it comes out in the configured log format. */
	void (*on_error)(const char *msg);
	/* 0 picks METRICS_DEFAULT_MAX_CLIENTS / METRICS_DEFAULT_TIMEOUT_MS. */
	unsigned max_clients;
	unsigned request_timeout_ms;
};

struct metrics_server;

/*
 * Bind, listen and start the exporter thread. Errors come back before any
 * thread exists: -EADDRINUSE, -EACCES, -EADDRNOTAVAIL ... from bind,
 * -EINVAL for a bad config or a host that does not resolve, -ENOMEM.
 * On success *out is set and 0 returned.
 */
int metrics_server_start(const struct metrics_server_config *cfg,
                         struct metrics_server **out);

/* The port actually bound (useful with cfg->port == 0). */
uint16_t metrics_server_port(const struct metrics_server *srv);

/*
 * Stop the exporter thread, close every socket and free srv. Clients in the
 * middle of a response are cut off. NULL is a no-op.
 */
void metrics_server_stop(struct metrics_server *srv);

#endif
