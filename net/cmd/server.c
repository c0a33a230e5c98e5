/*
 * main.c - net001-server: parse flags and environment, load the auth file,
 * start the workers, then wait for signals on this (the main) thread:
 * SIGINT/SIGTERM drain and exit 0, SIGHUP reloads the auth file and the
 * TLS certificate. Under
 * systemd's Type=notify it says READY=1 once the workers and the exporter
 * serve, RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 on
 * SIGINT/SIGTERM (notify.h).
 *
 * Exit status: 0 after a clean shutdown, 1 when the server cannot start
 * (port taken, out of memory), 2 for a bad flag, variable or file, 3 when
 * io_uring is not allowed (a seccomp filter, the kernel.io_uring_disabled
 * sysctl): restarting does not help with 2 or 3.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/auth.h"
#include "net/cluster.h"
#include "net/server.h"
#include "net/worker.h" /* the shards of the workers */
#include "metrics/metrics_server.h"
#include "net/tls.h"
#include "net/cmd/notify.h"

#if HAVE_MIMALLOC
#include <mimalloc.h>
#endif

/*
 * SIGHUP: load the auth file and the TLS certificate and key again. What
 * loads is swapped in; what does not keeps the previous one and says why.
 * The old table and TLS context are freed once every core has passed a
 * point where it holds no pointer into them (open TLS sessions keep their
 * context: OpenSSL counts its references).
 */
static void reload(struct server *srv, const struct config *cfg)
{
	char err[256];
	struct auth_table *t = NULL;
	struct tls_retired *old_tls = NULL;
	bool tls_done = false;

	if (!cfg->auth_file) {
		log_event(LOG_INFO, "auth_reload_skipped", LOG_NO_FIELDS, "SIGHUP: no --auth-file%s",
		          srv->tls ? "" : ", nothing to reload");
	} else if (auth_load(cfg->auth_file, &t, err, sizeof err) < 0) {
		log_event(LOG_ERROR, "auth_reload_failed",
		          LOG_FIELDS(LOG_STR("file", cfg->auth_file), LOG_STR("error", err)),
		          "SIGHUP: %s; keeping the previous table", err);
		t = NULL;
	}
	if (srv->tls) {
		if (tls_ctx_reload(srv->tls, cfg->cert, cfg->key, &old_tls, err, sizeof err) < 0)
			log_event(LOG_ERROR, "tls_reload_failed",
			          LOG_FIELDS(LOG_STR("cert", cfg->cert), LOG_STR("key", cfg->key),
			                     LOG_STR("error", err)),
			          "SIGHUP: %s; keeping the previous certificate", err);
		else
			tls_done = true;
	}
	if (!t && !tls_done)
		return;
	struct auth_table *old = t ? atomic_exchange(&srv->auth, t) : NULL;
	uint64_t gen = atomic_fetch_add(&srv->auth_gen, 1) + 1;
	server_kick(srv);
	for (uint32_t i = 0; i < srv->ncores; i++) {
		while (atomic_load_explicit(&srv->cores[i]->seen_gen, memory_order_acquire) < gen) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	auth_free(old);
	tls_ctx_retire(old_tls);
	if (t)
		log_event(LOG_INFO, "auth_reload",
		          LOG_FIELDS(LOG_STR("file", cfg->auth_file), LOG_UINT("users", auth_count(t))),
		          "SIGHUP: reloaded %s (%zu users)", cfg->auth_file, auth_count(t));
	if (tls_done) {
		char until[40];
		tls_ctx_expiry(srv->tls, until, sizeof until);
		log_event(LOG_INFO, "tls_reload",
		          LOG_FIELDS(LOG_STR("cert", cfg->cert), LOG_STR("not_after", until)),
		          "SIGHUP: reloaded the certificate %s (valid until %s) for new "
		          "connections", cfg->cert, until);
	}
}

/* The exporter's address: --metrics-host, else --host. */
static const char *mhost_of(const struct config *cfg)
{
	return cfg->metrics_host[0] ? cfg->metrics_host : cfg->host;
}

/* The metrics exporter stopped on an error: in the server's log format. */
static void metrics_error(const char *msg)
{
	log_event(LOG_ERROR, "metrics_stopped", LOG_NO_FIELDS, "%s", msg);
}

/* sd_notify: a failure is said once (the service manager then times the
 * start out, which is its own clear message). */
static void notify(const char *state)
{
	static bool warned;
	int r = notify_send(state);
	if (r < 0 && !warned) {
		warned = true;
		log_event(LOG_WARN, "notify_failed",
		          LOG_FIELDS(LOG_STR("socket", getenv("NOTIFY_SOCKET")),
		                     LOG_STR("error", strerror(-r))),
		          "NOTIFY_SOCKET %s: %s", getenv("NOTIFY_SOCKET"), strerror(-r));
	}
}

/* RELOADING=1 carries the time of the request (systemd.service(5)). */
static void notify_reloading(void)
{
	char buf[64];
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	notify(buf);
}

/*
 * mimalloc keeps freed pages for reuse unless told otherwise; the server
 * wants memory after a burst back with the system (its pools already keep
 * what steady traffic reuses). Reset freed pages and decommit without
 * delay, unless the environment chose otherwise.
 */
static void tune_allocator(void)
{
#if HAVE_MIMALLOC
	if (!getenv("MIMALLOC_PAGE_RESET"))
		mi_option_set(mi_option_page_reset, 1);
	if (!getenv("MIMALLOC_DECOMMIT_DELAY"))
		mi_option_set(mi_option_decommit_delay, 0);
#endif
}

int main(int argc, char **argv)
{
	struct config cfg;
	char err[256];
	int r = config_parse(&cfg, argc, argv, err, sizeof err);

	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "net001-server: %s\n", err);
		return 2;
	}
	log_set_debug(cfg.debug);
	log_set_format((enum log_format)cfg.log_format);
	tune_allocator();

	struct server srv;
	memset(&srv, 0, sizeof srv);
	if (cfg.tls && tls_ctx_new(cfg.cert, cfg.key, &srv.tls, err, sizeof err) < 0) {
		log_fatal("net001-server", "%s", err);
		config_free(&cfg);
		return 2;
	}
	if (cfg.auth_file) {
		struct auth_table *t = NULL;
		if (auth_load(cfg.auth_file, &t, err, sizeof err) < 0) {
			log_fatal("net001-server", "%s", err);
			tls_ctx_free(srv.tls);
			config_free(&cfg);
			return 2;
		}
		atomic_store(&srv.auth, t);
	}

	/* Workers inherit this mask: signals reach only this thread. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* --cluster: the rings between the workers and the bridge exist
	 * before the workers; NATS is connected once they serve. */
	if (cluster_check_tls(&cfg, err, sizeof err) < 0) {
		log_fatal("net001-server", "%s", err);
		auth_free(atomic_load(&srv.auth));
		tls_ctx_free(srv.tls);
		config_free(&cfg);
		return 2;
	}
	if (cfg.cluster && cluster_new(&cfg, cfg.threads, &srv.cluster, err, sizeof err) < 0) {
		log_fatal("net001-server", "%s", err);
		auth_free(atomic_load(&srv.auth));
		tls_ctx_free(srv.tls);
		config_free(&cfg);
		return 1;
	}
	if (server_start(&srv, &cfg, err, sizeof err) < 0 ||
	    (srv.cluster && cluster_start(srv.cluster, &srv, err, sizeof err) < 0)) {
		log_fatal("net001-server", "%s", err);
		cluster_stop(srv.cluster);
		if (atomic_load(&srv.state) == SERVER_RUNNING)
			server_stop(&srv);
		server_free(&srv);
		cluster_free(srv.cluster);
		auth_free(atomic_load(&srv.auth));
		tls_ctx_free(srv.tls);
		config_free(&cfg);
		return atomic_load(&srv.uring_refused) ? 3 : 1;
	}
	/* The exporter keeps a pointer to this array: it lives until exit. */
	struct metrics_shard **shards = calloc(srv.ncores, sizeof *shards);
	struct metrics_server *ms = NULL;
	for (uint32_t i = 0; shards && i < srv.ncores; i++)
		shards[i] = &srv.cores[i]->m;
	if (cfg.metrics_port) {
		/* net001_build_info and the net001_config_* gauges. */
		const struct metrics_info info = {
			.version = NET001_VERSION,
			.allocator = HAVE_MIMALLOC ? "mimalloc" : "libc",
			.tls_built = HAVE_TLS,
			.tls_enabled = srv.tls != NULL,
			.auth_enabled = cfg.auth_file != NULL,
			.max_connections = cfg.max_connections,
			.rate_limit = cfg.rate_limit,
			.global_rate_limit = cfg.global_rate_limit,
			.max_output_bytes = cfg.max_output,
			.max_payload_bytes = cfg.max_payload,
			.idle_timeout_seconds = cfg.idle_timeout,
			.threads = srv.ncores,
			.buffer_ring_size = NET001_BUF_COUNT,
		};
		struct metrics_server_config mc = {
			.host = mhost_of(&cfg),
			.port = (uint16_t)cfg.metrics_port,
			.shards = shards,
			.nshards = srv.ncores,
			.state = &srv.state,
			.info = &info,
			.cluster = srv.cluster ? cluster_metrics(srv.cluster) : NULL,
			.on_error = metrics_error,
		};
		r = shards ? metrics_server_start(&mc, &ms) : -ENOMEM;
		if (r < 0) {
			log_fatal("net001-server", "metrics on %s:%u: %s", mhost_of(&cfg),
			          cfg.metrics_port, strerror(-r));
			cluster_stop(srv.cluster);
			server_stop(&srv);
			server_free(&srv);
			cluster_free(srv.cluster);
			free(shards);
			auth_free(atomic_load(&srv.auth));
			tls_ctx_free(srv.tls);
			config_free(&cfg);
			return 1;
		}
	}
	const char *mhost = mhost_of(&cfg);
	char metrics[96] = "off";
	if (cfg.metrics_port && cfg.metrics_host[0])
		snprintf(metrics, sizeof metrics, "on %s port %u", mhost, cfg.metrics_port);
	else if (cfg.metrics_port)
		snprintf(metrics, sizeof metrics, "on port %u", cfg.metrics_port);
	log_event(LOG_INFO, "listening",
	          LOG_FIELDS(LOG_STR("version", NET001_VERSION), LOG_STR("host", cfg.host),
	                     LOG_UINT("port", cfg.port), LOG_UINT("threads", srv.ncores),
	                     LOG_UINT("max_connections", cfg.max_connections),
	                     LOG_UINT("descriptors_per_core", srv.table_size),
	                     LOG_BOOL("auth", cfg.auth_file != NULL),
	                     LOG_BOOL("tls", srv.tls != NULL),
	                     LOG_STR("node_id", srv.cluster ? cluster_node_id(srv.cluster) : ""),
	                     LOG_UINT("metrics_port", cfg.metrics_port),
	                     LOG_STR("metrics_host", mhost)),
	          "net001 %s listening on %s:%u: %u threads, max %u connections, %u direct "
	          "descriptors per core%s%s%s%s; metrics %s", NET001_VERSION, cfg.host, cfg.port,
	          srv.ncores, cfg.max_connections, srv.table_size,
	          cfg.auth_file ? ", auth on" : "", srv.tls ? ", TLS" : "",
	          srv.cluster ? ", cluster node " : "",
	          srv.cluster ? cluster_node_id(srv.cluster) : "", metrics);
#if HAVE_MIMALLOC
	if (log_debug_enabled())
		log_event(LOG_DEBUG, "allocator",
		          LOG_FIELDS(LOG_STR("allocator", "mimalloc"), LOG_INT("version", mi_version())),
		          "allocator: mimalloc %d", mi_version());
#endif
	{
		char status[128];
		snprintf(status, sizeof status, "READY=1\nSTATUS=listening on %s:%u", cfg.host,
		         cfg.port);
		notify(status);
	}

	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig == SIGHUP) {
			notify_reloading();
			reload(&srv, &cfg);
			notify("READY=1");
			continue;
		}
		if (sig == SIGINT || sig == SIGTERM) {
			const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
			notify("STOPPING=1");
			log_event(LOG_INFO, "shutdown", LOG_FIELDS(LOG_STR("signal", name)),
			          "%s: shutting down", name);
			break;
		}
	}
	/* The bridge first: it wakes workers' rings, which go with them. */
	cluster_stop(srv.cluster);
	server_stop(&srv);
	metrics_server_stop(ms);
	server_free(&srv);
	cluster_free(srv.cluster);
	free(shards);
	auth_free(atomic_load(&srv.auth));
	tls_ctx_free(srv.tls);
	config_free(&cfg);
	log_event(LOG_INFO, "stopped", LOG_NO_FIELDS, "stopped");
	return 0;
}
