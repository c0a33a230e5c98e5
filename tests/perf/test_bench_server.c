/*
 * net001-bench against real servers: net001-server (progress lines, CSV,
 * ERROR accounting against requests sent, the RATE_LIMITED hint, RSS
 * sampled each second, the flood), the flood against redis-server and
 * nats-server (from Debian: scripts/deps --test), and the flood's
 * receivers against a relay in this file that spoils time stamps.
 *
 * Paths from meson: NET001_BENCH, NET001_SERVER, NET001_REDIS_SERVER,
 * NET001_NATS_SERVER. Each run is short (about a second).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "ports.h"
#include "proto/frame.h"
#include "run.h"
#include "timing.h"

static struct srv server;
static pid_t other_pid; /* redis-server or nats-server */
static char ps[8], spid[16]; /* the server's port and pid, as arguments */

static void cleanup(void)
{
	srv_cleanup(&server);
	if (other_pid > 0) {
		kill(other_pid, SIGTERM);
		waitpid(other_pid, NULL, 0);
		other_pid = 0;
	}
}

TestSuite(bench_srv, .fini = cleanup, .timeout = 120);

static const char *env_path(const char *name)
{
	const char *p = getenv(name);
	cr_assert(p && *p, "%s is not set or empty: run through meson test after "
	          "scripts/deps --test", name);
	return p;
}

/* Run the bench with args (NULL-terminated); stdout and stderr kept. A
 * run is about a second: one still going after 60 s is killed (status -1). */
static void bench(struct run *o, const char *const *args)
{
	cr_assert_eq(run_spawn(o, env_path("NET001_BENCH"), args, NULL), 0);
	run_finish(o, 60000);
}

#define BENCH(o, ...) bench((o), (const char *const[]){ __VA_ARGS__, NULL })

static double num(const char *json, const char *key)
{
	char pat[80];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(json, pat);
	cr_assert_not_null(p, "no %s in %s", key, json);
	return strtod(p + strlen(pat), NULL);
}

static void start(const char *const *args)
{
	cr_assert_eq(srv_start(&server, args), 0);
	snprintf(ps, sizeof ps, "%u", server.port);
	snprintf(spid, sizeof spid, "%d", (int)server.pid);
}

#define UNLIMITED ((const char *const[]){ "--rate-limit", "0", "--global-rate-limit", "0", NULL })

Test(bench_srv, progress_lines_each_second)
{
	start(UNLIMITED);
	static struct run o;
	BENCH(&o, "--port", ps, "--connections", "4", "--pipeline", "4", "--duration", "2.5",
	      "--warmup", "0.2", "--progress");
	cr_assert_eq(o.status, 0, "%s\n%s", o.out, o.err);
	cr_assert_eq(str_count(o.err, "\n"), 2, "one line per whole second: %s", o.err);
	cr_assert(str_matches(o.err, "^net001-bench: +1\\.0 s +[1-9][0-9]+ msg/s  p99 [0-9.]+ us  "
	                  "errors 0$"), "%s", o.err);
	cr_assert(str_matches(o.err, "^net001-bench: +2\\.0 s "), "%s", o.err);

	/* Off a terminal, none unless asked. */
	BENCH(&o, "--port", ps, "--connections", "2", "--duration", "1.2", "--warmup", "0");
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert_str_eq(o.err, "");
}

Test(bench_srv, csv_header_and_row)
{
	start(UNLIMITED);
	static struct run o;
	BENCH(&o, "--port", ps, "--type", "echo", "--connections", "2", "--duration", "0.5",
	      "--warmup", "0", "--csv", "--server-pid", "0");
	cr_assert_eq(o.status, 2, "--server-pid 0 is refused: %s", o.err);
	BENCH(&o, "--port", ps, "--type", "echo", "--connections", "2", "--duration", "0.5",
	      "--warmup", "0", "--csv", "--server-pid", spid);
	cr_assert_eq(o.status, 0, "%s %s", o.out, o.err);
	char *nl = strchr(o.out, '\n');
	cr_assert_not_null(nl);
	*nl = '\0';
	const char *head = o.out, *row = nl + 1;
	cr_assert_eq(str_count(row, "\n"), 1, "one row: %s", row);
	cr_assert_eq(str_count(head, ","), str_count(row, ","), "as many values as names:\n%s\n%s",
	             head, row);
	cr_assert(strncmp(head, "type,target,flood,", 18) == 0, "%s", head);
	cr_assert(strncmp(row, "echo,net001,false,", 18) == 0, "%s", row);
	cr_assert_not_null(strstr(head, ",error_rate_limited,"), "every code has a column");
	cr_assert_not_null(strstr(head, ",server_rss_max_kb,"));
	cr_assert(str_matches(row, ",0\n$"), "status last, 0: %s", row);

	BENCH(&o, "--port", ps, "--csv", "--json");
	cr_assert_eq(o.status, 2);
	cr_assert_not_null(strstr(o.err, "--json and --csv exclude each other"), "%s", o.err);
}

Test(bench_srv, errors_never_exceed_requests_sent)
{
	/* 200 frames/s per connection: most requests are refused. Whatever
	 * the type, the window's ERRORs answer requests sent in it. */
	const char *const args[] = { "--rate-limit", "200", "--global-rate-limit", "0", NULL };
	start(args);
	static const char *const types[] = { "ping", "echo", "data", "broadcast" };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		static struct run o;
		bool bc = strcmp(types[i], "broadcast") == 0;
		BENCH(&o, "--port", ps, "--type", types[i], "--connections", "3", "--pipeline", "8",
		      "--duration", "0.6", "--warmup", "0.3", "--json",
		      bc ? "--receivers" : NULL, "2");
		cr_assert_eq(o.status, 1, "%s: %s %s", types[i], o.out, o.err);
		double sent = num(o.out, "sent"), errors = num(o.out, "error_frames");
		cr_assert_gt(errors, 0, "%s: %s", types[i], o.out);
		cr_assert_leq(errors, sent, "%s: %s", types[i], o.out);
		cr_assert_eq(num(o.out, "error_rate_limited"), errors, "%s", o.out);
		cr_assert_gt(num(o.out, "error_frames_other"), 0, "warmup's refusals apart: %s", o.out);
		/* Only RATE_LIMITED went wrong: the hint, one line. */
		cr_assert(str_matches(o.err, "^net001-bench: every failure was RATE_LIMITED \\([0-9]+\\): "
		                  ".*start the server with --rate-limit 0 --global-rate-limit 0$"),
		          "%s: %s", types[i], o.err);
		cr_assert_eq(str_count(o.err, "\n"), 1, "%s", o.err);
	}
}

Test(bench_srv, no_hint_when_something_else_failed)
{
	/* A closed port: connections fail, no RATE_LIMITED hint. */
	static struct run o;
	BENCH(&o, "--port", "1", "--connections", "2", "--duration", "0.2", "--warmup", "0");
	cr_assert_eq(o.status, 1);
	cr_assert_null(strstr(o.err, "RATE_LIMITED"), "%s", o.err);
}

Test(bench_srv, server_rss_each_second)
{
	start(UNLIMITED);
	static struct run o;
	BENCH(&o, "--port", ps, "--connections", "4", "--duration", "2.2", "--warmup", "0.1",
	      "--server-pid", spid, "--json");
	cr_assert_eq(o.status, 0, "%s %s", o.out, o.err);
	/* Between the other fields and status, commas on both sides. */
	cr_assert_not_null(strstr(o.out, "_kb\":"), "%s", o.out);
	cr_assert(str_matches(o.out, "[0-9],\"server_rss_series_kb\":\\[[0-9,]*\\],\"status\":0}$"),
	          "%s", o.out);
	cr_assert_null(strstr(o.out, ",,"), "%s", o.out);
	/* Two whole seconds, then the end of the window. */
	cr_assert(str_matches(o.out, "\"server_rss_series_kb\":\\[[1-9][0-9]*,[1-9][0-9]*,[1-9][0-9]*\\]"),
	          "%s", o.out);
	double mn = num(o.out, "server_rss_min_kb"), mx = num(o.out, "server_rss_max_kb");
	double last = num(o.out, "server_rss_last_kb");
	cr_assert(mn > 0 && mn <= last && last <= mx, "%s", o.out);
	cr_assert_gt(num(o.out, "server_cpu_us_per_msg"), 0);

	BENCH(&o, "--port", ps, "--connections", "4", "--duration", "1.1", "--warmup", "0",
	      "--server-pid", spid);
	cr_assert_eq(o.status, 0, "%s", o.out);
	cr_assert(str_matches(o.out, "^  each second    min [0-9]+, max [0-9]+, last [0-9]+ \\(2 samples\\)$"),
	          "%s", o.out);
}

/* The flood's common checks on one JSON report. */
static void flood_sane(const char *json, const char *target, double receivers)
{
	cr_assert_not_null(strstr(json, "\"type\":\"broadcast\""), "%s", json);
	char want[40];
	snprintf(want, sizeof want, "\"target\":\"%s\"", target);
	cr_assert_not_null(strstr(json, want), "%s", json);
	cr_assert_not_null(strstr(json, "\"flood\":true"), "%s", json);
	cr_assert_eq(num(json, "mismatches"), 0, "%s", json);
	cr_assert_gt(num(json, "deliveries"), 0, "%s", json);
	cr_assert_gt(num(json, "sent"), 0, "%s", json);
	/* Counted where they arrive: never more than sent times receivers. */
	cr_assert_leq(num(json, "deliveries"), num(json, "sent_total") * receivers, "%s", json);
	cr_assert_leq(num(json, "messages"), num(json, "deliveries"), "%s", json);
	cr_assert_leq(num(json, "error_frames"), num(json, "sent"), "%s", json);
	/* CRC and payload of one in --check-every (default 16), counting
	 * from each receiver's first. */
	double every = strstr(json, "\"check_every\":1,") ? 1 : 16;
	cr_assert_geq(num(json, "checked"), num(json, "deliveries") / every, "%s", json);
	cr_assert_leq(num(json, "checked"), num(json, "deliveries") / every + receivers, "%s", json);
	/* Latency from the stamp in the payload, for what arrived in the window. */
	cr_assert_eq(num(json, "lat_count"), num(json, "messages"), "%s", json);
	cr_assert_gt(num(json, "lat_p50_us"), 0, "%s", json);
	cr_assert_geq(num(json, "lat_p99_us"), num(json, "lat_p50_us"), "%s", json);
	cr_assert_not_null(strstr(json, "\"server_rss_series_kb\":["), "%s", json);
}

Test(bench_srv, flood_against_net001)
{
	start(UNLIMITED);
	static struct run o;
	BENCH(&o, "--port", ps, "--flood", "--receivers", "3", "--threads", "2", "--duration", "1",
	      "--warmup", "0", "--server-pid", spid, "--json");
	cr_assert(o.status == 0 || o.status == 1, "%s %s", o.out, o.err);
	flood_sane(o.out, "net001", 3);
	cr_assert_eq(num(o.out, "connections"), 1, "one publisher by default");
	/* A receiver the server cut (SLOW_CONSUMER, past --max-output) is
	 * counted as closed early and fails the run; the server stays up. */
	double closed = num(o.out, "closed_early");
	cr_assert_eq(o.status, closed > 0 ? 1 : 0, "%s", o.out);
	if (closed > 0)
		cr_assert_eq(num(o.out, "other_error_slow_consumer"), closed, "%s", o.out);
	/* (A PING now could meet the rest of the flood on its way: broadcasts
	 * reach every connection.) */
	cr_assert_eq(kill(server.pid, 0), 0, "the server still runs");
	cr_assert(port_listening(server.port), "and accepts");

	/* Text: deliveries, and the share of what was sent. A fresh server:
	 * the last one may still be fanning out what the flood left queued. */
	srv_stop(&server, 10000);
	start(UNLIMITED);
	BENCH(&o, "--port", ps, "--flood", "--receivers", "1", "--pipeline", "1", "--duration", "0.5",
	      "--warmup", "0", "--server-pid", spid);
	cr_assert(str_matches(o.out, "^net001-bench: broadcast flood on net001, 1 publisher, 1 receivers"),
	          "%s", o.out);
	cr_assert(str_matches(o.out, "^deliveries +[1-9][0-9]*  \\([0-9.]+/s\\)"), "%s", o.out);
	cr_assert(str_matches(o.out, "^delivered +[0-9]+ of [0-9]+ x 1 sent in the whole run"), "%s",
	          o.out);
	cr_assert(str_matches(o.out, "^checked +CRC and payload of [1-9][0-9]* of them \\(1 in 16; "),
	          "%s", o.out);
	cr_assert(str_matches(o.out, "^server CPU .* us/delivery$"), "%s", o.out);
}

/* --flood --rate: open loop on a schedule, not as fast as the socket takes. */
Test(bench_srv, flood_at_a_rate)
{
	start(UNLIMITED);
	static struct run o;
	BENCH(&o, "--port", ps, "--flood", "--rate", "2000", "--connections", "2", "--receivers",
	      "3", "--duration", "1", "--warmup", "0.2", "--server-pid", spid, "--check-every", "1",
	      "--json");
	cr_assert_eq(o.status, 0, "%s %s", o.out, o.err);
	flood_sane(o.out, "net001", 3);
	cr_assert_eq(num(o.out, "checked"), num(o.out, "deliveries"), "every one: %s", o.out);
	cr_assert_eq(num(o.out, "rate"), 2000, "%s", o.out);
	/* The schedule, not the socket, sets the pace: 2,000 in the 1 s window
	 * (a late bench catches up, so fewer means it never could; a bench
	 * late at the window's start writes what fell due just before it
	 * inside it: up to 20 ms of that, 40 more). */
	double sent = num(o.out, "sent");
	cr_assert(sent >= 1000 && sent <= 2042, "sent %.0f in 1 s at 2000/s: %s", sent, o.out);
	cr_assert_leq(num(o.out, "sent_total"), 2000 * 1.2 + 2, "%s", o.out);
	/* Each publisher's broadcast reaches the 3 receivers and the other
	 * publisher (not counted); nearly all of them by the end. */
	cr_assert_geq(num(o.out, "deliveries"), num(o.out, "sent_total") * 3 * 0.9, "%s", o.out);
}

/* Start a server of another kind on a free port; argv's "PORT" is
 * replaced by the port. Waits until it accepts connections. */
static uint16_t start_other(const char *bin, const char *const *args)
{
	static unsigned seed;
	if (!seed)
		seed = (unsigned)getpid() ^ (unsigned)mono_ms();
	for (int attempt = 0; attempt < 20; attempt++) {
		uint16_t port = (uint16_t)(10000 + rand_r(&seed) % 21000);
		if (port_listening(port))
			continue;
		char pstr[8];
		snprintf(pstr, sizeof pstr, "%u", port);
		const char *argv[32] = { bin };
		int n = 1;
		for (; *args && n < 31; args++)
			argv[n++] = strcmp(*args, "PORT") == 0 ? pstr : *args;
		argv[n] = NULL;
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			int nul = open("/dev/null", O_WRONLY);
			dup2(nul, 1);
			dup2(nul, 2);
			execv(bin, (char *const *)argv);
			_exit(127);
		}
		other_pid = pid;
		for (int i = 0; i < 100; i++) {
			if (port_listening(port))
				return port;
			if (waitpid(pid, NULL, WNOHANG) == pid)
				break;
			sleep_ms(50);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		other_pid = 0;
	}
	cr_assert_fail("%s did not start", bin);
	return 0;
}

static void flood_other(const char *target, uint16_t port)
{
	char p[8], pid[16];
	snprintf(p, sizeof p, "%u", port);
	snprintf(pid, sizeof pid, "%d", (int)other_pid);
	static struct run o;
	BENCH(&o, "--target", target, "--port", p, "--receivers", "3", "--threads", "2",
	      "--duration", "1", "--warmup", "0.2", "--server-pid", pid, "--json");
	cr_assert_eq(o.status, 0, "%s %s", o.out, o.err);
	flood_sane(o.out, target, 3);
	cr_assert_eq(num(o.out, "closed_early"), 0, "%s", o.out);
	cr_assert_gt(num(o.out, "server_cpu_us_per_msg"), 0, "%s", o.out);

	/* Options that make no sense there. */
	BENCH(&o, "--target", target, "--port", p, "--type", "ping");
	cr_assert_eq(o.status, 2);
	cr_assert_not_null(strstr(o.err, "runs the broadcast flood"), "%s", o.err);
}

Test(bench_srv, flood_against_redis)
{
	const char *bin = env_path("NET001_REDIS_SERVER");
	uint16_t port = start_other(bin, (const char *const[]){
		"--port", "PORT", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", NULL });
	flood_other("redis", port);
}

Test(bench_srv, flood_against_nats)
{
	const char *bin = env_path("NET001_NATS_SERVER");
	uint16_t port = start_other(bin, (const char *const[]){ "-a", "127.0.0.1", "-p", "PORT", NULL });
	flood_other("nats", port);
}

Test(bench_srv, flood_target_not_there)
{
	/* Nothing listens: every connection fails, the reason is given. */
	static struct run o;
	BENCH(&o, "--target", "nats", "--port", "1", "--receivers", "2", "--duration", "0.2",
	      "--warmup", "0");
	cr_assert_eq(o.status, 1);
	cr_assert(str_matches(o.out, "^connections +failed 3, closed early 0 \\(first failure: "
	                  "Connection refused\\)$"), "%s", o.out);
}

Test(bench_srv, flood_against_the_wrong_server)
{
	/* RESP to a net001 server: it answers BAD_MAGIC and closes; the
	 * setup fails and says why. */
	start(UNLIMITED);
	static struct run o;
	BENCH(&o, "--target", "redis", "--port", ps, "--receivers", "1", "--duration", "0.2",
	      "--warmup", "0");
	cr_assert_eq(o.status, 1, "%s", o.out);
	cr_assert(str_matches(o.out, "^connections +failed 2, closed early 0 \\(first failure: .*: "
	                  "not a Redis server \\(bad RESP\\)\\)$"), "%s", o.out);
}

/* ---- a server that spoils time stamps ------------------------------------- */

/*
 * A NET-001 relay that answers PING and forwards every BROADCAST to the
 * other connections, with every tenth one's time stamp (the first 8
 * payload bytes) zeroed and its CRC made good again: frames that are
 * whole and well formed, but stamped before the bench connected.
 */
struct relay {
	int lfd;
	_Atomic bool stop;
	uint64_t spoiled; /* spoiled frames written to some connection */
};

static void *relay_run(void *arg)
{
	struct relay *r = arg;
	enum { MAXC = 8, CAP = 1 << 16 };
	struct pollfd pf[MAXC + 1] = { { .fd = r->lfd, .events = POLLIN } };
	static uint8_t in[MAXC][CAP];
	size_t have[MAXC] = { 0 };
	unsigned nc = 0;
	uint64_t seen = 0;
	while (!atomic_load(&r->stop)) {
		if (poll(pf, nc + 1, 50) <= 0)
			continue;
		if ((pf[0].revents & POLLIN) && nc < MAXC) {
			int fd = accept(r->lfd, NULL, NULL);
			if (fd >= 0)
				pf[1 + nc++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		}
		for (unsigned i = 0; i < nc; i++) {
			if (!(pf[1 + i].revents & (POLLIN | POLLHUP | POLLERR)) || pf[1 + i].fd < 0)
				continue;
			ssize_t k = recv(pf[1 + i].fd, in[i] + have[i], CAP - have[i], 0);
			if (k <= 0) {
				close(pf[1 + i].fd);
				pf[1 + i].fd = -1;
				continue;
			}
			have[i] += (size_t)k;
			size_t off = 0;
			struct frame_view f;
			int d;
			while ((d = frame_decode(NULL, in[i] + off, have[i] - off, &f)) > 0) {
				uint8_t *fr = in[i] + off;
				if (f.type == FRAME_PING) {
					fr[5] = FRAME_PONG;
					frame_put_u32(fr + FRAME_HEADER_SIZE + f.len,
					              frame_crc(0, fr, FRAME_HEADER_SIZE + f.len));
					tc_send(pf[1 + i].fd, fr, (size_t)d);
				} else if (f.type == FRAME_BROADCAST && f.len >= 8) {
					bool spoil = ++seen % 10 == 0;
					if (spoil) {
						memset(fr + FRAME_HEADER_SIZE, 0, 8);
						frame_put_u32(fr + FRAME_HEADER_SIZE + f.len,
						              frame_crc(0, fr, FRAME_HEADER_SIZE + f.len));
					}
					for (unsigned j = 0; j < nc; j++)
						if (j != i && pf[1 + j].fd >= 0 &&
						    tc_send(pf[1 + j].fd, fr, (size_t)d) == 0 && spoil)
							r->spoiled++;
				}
				off += (size_t)d;
			}
			memmove(in[i], in[i] + off, have[i] - off);
			have[i] -= off;
		}
	}
	for (unsigned i = 0; i < nc; i++)
		if (pf[1 + i].fd >= 0)
			close(pf[1 + i].fd);
	return NULL;
}

/* The receivers check every message's framing and stamp, also those the
 * tight loop for ordinary broadcasts takes: every spoiled stamp counts as
 * a payload mismatch and fails the run, none as a delivery. */
Test(bench_srv, flood_receivers_check_every_stamp)
{
	uint16_t port;
	struct relay r = { .lfd = port_bind_random(AF_INET, 16, &port) };
	cr_assert_geq(r.lfd, 0);
	pthread_t t;
	pthread_create(&t, NULL, relay_run, &r);
	char pstr[8];
	snprintf(pstr, sizeof pstr, "%u", port);
	static struct run o;
	BENCH(&o, "--port", pstr, "--flood", "--rate", "20000", "--receivers", "2",
	      "--duration", "0.5", "--warmup", "0", "--check-every", "1000000", "--json");
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	close(r.lfd);
	double deliveries = num(o.out, "deliveries"), bad = num(o.out, "mismatch_payload");
	fprintf(stderr, "relay: %llu spoiled frames written; bench: %.0f deliveries, %.0f "
	        "payload mismatches\n", (unsigned long long)r.spoiled, deliveries, bad);
	cr_assert_eq(o.status, 1, "a run with mismatches fails: %s", o.out);
	cr_assert_gt(deliveries, 900, "%s", o.out);
	/* One in ten was spoiled: nine good for each bad, give or take the
	 * frames in flight when the run ended. */
	cr_assert_geq(bad, deliveries / 9 * 0.8, "%s", o.out);
	cr_assert_leq(bad, deliveries / 9 * 1.2 + 2, "%s", o.out);
	cr_assert_leq(bad, (double)r.spoiled, "%s", o.out);
}
