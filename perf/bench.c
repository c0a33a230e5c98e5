/*
 * bench.c - net001-bench: load generator and reply checker for NET-001
 * servers (and raw echo baselines).
 *
 * main() parses the options, starts one benchrun worker per --threads,
 * waits until all have connected, then runs the time line
 *
 *   t_start ---warmup---> t_measure ---duration---> t_end
 *
 * sampling its own CPU (getrusage) and, with --server-pid, the server's
 * CPU and RSS at t_measure and t_end. After the workers join, their
 * counters and latency histograms are merged and reported, as text or
 * one JSON object.
 *
 * Exit status: 0 clean; 1 when any reply mismatched, any ERROR frame
 * came back, a connection failed or closed early, or no message was
 * counted; 2 for a bad command line.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "perf/benchopt.h"
#include "perf/benchrun.h"
#include "proto/frame.h"
#include "perf/lathist.h"
#include "proto/msg.h"
#include "perf/procstat.h"

static const char *const mm_names[MM_KINDS] = {
	"magic", "version", "type", "length", "crc", "payload", "unexpected", "auth",
};

struct server_sample {
	bool ok;
	uint64_t cpu_ns;
	uint64_t rss_kb;
};

struct report {
	const struct benchopt *o;
	struct bench_counts c;
	struct lathist hist;
	double window_s;
	double client_cpu_s;
	struct server_sample before, start, end;
	uint64_t mismatches;
	uint64_t error_frames;
	uint64_t msgs;
	int status;
};

static void sleep_until(uint64_t t)
{
	for (;;) {
		uint64_t now = benchrun_now();
		if (now >= t)
			return;
		uint64_t d = t - now;
		struct timespec ts = { (time_t)(d / 1000000000ull), (long)(d % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
}

static double rusage_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static struct server_sample sample_server(pid_t pid)
{
	struct server_sample s = { 0 };
	if (pid && procstat_cpu_ns(pid, &s.cpu_ns) == 0 &&
	    procstat_rss_kb(pid, &s.rss_kb) == 0)
		s.ok = true;
	return s;
}

static int resolve(const struct benchopt *o, struct benchrun_shared *sh)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char port[8];
	snprintf(port, sizeof port, "%u", o->port);
	int ret = getaddrinfo(o->host, port, &hints, &res);
	if (ret != 0) {
		fprintf(stderr, "net001-bench: --host %s: %s\n", o->host, gai_strerror(ret));
		return -EINVAL;
	}
	memcpy(&sh->addr, res->ai_addr, res->ai_addrlen);
	sh->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Enough descriptors for every connection; as root the hard limit can
 * be raised too. */
static int raise_nofile(uint64_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return 0;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void print_text(const struct report *r)
{
	const struct benchopt *o = r->o;
	const struct bench_counts *c = &r->c;
	double w = r->window_s;

	if (o->connect_only) {
		printf("net001-bench: connect-only, %u connections held %.1f s\n",
		       o->connections, w);
		printf("open at end      %" PRIu64 " of %u\n", c->open_at_end, o->connections);
	} else {
		printf("net001-bench: %s%s, %u connections x %u in flight", 
		       benchopt_type_name(o->type), o->raw_echo ? " (raw echo)" : "",
		       o->connections, o->pipeline);
		if (o->type == BENCH_BROADCAST)
			printf(", %u receivers", o->receivers);
		printf(", payload %u B, %u thread%s, %s, %.1f s (+%.1f s warmup)\n",
		       o->payload, o->threads, o->threads == 1 ? "" : "s",
		       o->rate > 0 ? "open loop" : "closed loop", w, o->warmup);
		if (o->rate > 0)
			printf("target rate      %.0f msg/s\n", o->rate);
		printf("messages         %" PRIu64 "  (%.1f msg/s)   payload %.2f MB/s\n",
		       r->msgs, r->msgs / w, (double)c->payload_bytes / w / 1e6);
		if (c->sends)
			printf("sent             %" PRIu64 " in %" PRIu64 " sends (%.1f frames/send)\n",
			       c->sent, c->sends, (double)c->sent / (double)c->sends);
		if (o->type == BENCH_BROADCAST)
			printf("broadcasts sent  %" PRIu64 "  (%.1f/s), deliveries %.1f/s\n",
			       c->sent, c->sent / w, c->msgs / w);
		if (r->hist.count) {
			const struct lathist *h = &r->hist;
			printf("latency us       p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (mean %.1f, n=%" PRIu64 ")\n",
			       us(lathist_quantile(h, 0.5)), us(lathist_quantile(h, 0.9)),
			       us(lathist_quantile(h, 0.99)), us(lathist_quantile(h, 0.999)),
			       us(h->max), us(h->sum / h->count), h->count);
		}
		if (c->late)
			printf("window full      %" PRIu64 " times (open loop fell behind)\n", c->late);
	}
	printf("mismatches       %" PRIu64, r->mismatches);
	for (int k = 0; k < MM_KINDS; k++)
		if (c->mismatch[k])
			printf("  %s %" PRIu64, mm_names[k], c->mismatch[k]);
	printf("\nERROR frames     %" PRIu64, r->error_frames);
	for (unsigned k = 0; k <= ERR_MAX; k++)
		if (c->errors[k])
			printf("  %s %" PRIu64, k ? msg_error_name(k) : "UNKNOWN", c->errors[k]);
	printf("\nconnections      failed %" PRIu64 ", closed early %" PRIu64, c->connect_failed,
	       c->closed);
	if (c->first_connect_err)
		printf(" (first failure: %s)", strerror(-c->first_connect_err));
	printf("\nclient CPU       %.1f%% of one core", 100.0 * r->client_cpu_s / w);
	if (r->msgs)
		printf(", %.3f us/msg", r->client_cpu_s * 1e6 / (double)r->msgs);
	printf("\n");
	if (o->server_pid) {
		if (r->start.ok && r->end.ok) {
			double cpu = (double)(r->end.cpu_ns - r->start.cpu_ns) / 1e9;
			printf("server CPU       %.1f%% of one core", 100.0 * cpu / w);
			if (r->msgs)
				printf(", %.3f us/msg", cpu * 1e6 / (double)r->msgs);
			printf("\nserver RSS kB    before %" PRIu64 ", window start %" PRIu64
			       ", end %" PRIu64, r->before.rss_kb, r->start.rss_kb, r->end.rss_kb);
			if (o->connect_only && c->open_at_end)
				printf("  (%.0f bytes/connection)",
				       ((double)r->end.rss_kb - (double)r->before.rss_kb) * 1024.0 /
				       (double)c->open_at_end);
			printf("\n");
		} else {
			printf("server           pid %d could not be read\n", (int)o->server_pid);
		}
	}
	if (r->status)
		printf("result           FAIL\n");
}

static void print_json(const struct report *r)
{
	const struct benchopt *o = r->o;
	const struct bench_counts *c = &r->c;
	const struct lathist *h = &r->hist;
	double w = r->window_s;

	printf("{\"type\":\"%s\",\"connect_only\":%s,\"raw_echo\":%s,"
	       "\"connections\":%u,\"receivers\":%u,\"threads\":%u,\"pipeline\":%u,"
	       "\"payload\":%u,\"rate\":%.0f,\"duration_s\":%.3f,\"warmup_s\":%.3f,",
	       benchopt_type_name(o->type), o->connect_only ? "true" : "false",
	       o->raw_echo ? "true" : "false", o->connections, o->receivers, o->threads,
	       o->pipeline, o->payload, o->rate, w, o->warmup);
	printf("\"messages\":%" PRIu64 ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
	       "\"sent\":%" PRIu64 ",\"frames_per_send\":%.2f,\"deliveries\":%" PRIu64
	       ",\"window_full\":%" PRIu64 ",",
	       r->msgs, r->msgs / w, (double)c->payload_bytes / w / 1e6, c->sent,
	       c->sends ? (double)c->sent / (double)c->sends : 0.0, c->deliveries, c->late);
	printf("\"lat_count\":%" PRIu64 ",\"lat_p50_us\":%.2f,\"lat_p90_us\":%.2f,"
	       "\"lat_p99_us\":%.2f,\"lat_p999_us\":%.2f,\"lat_max_us\":%.2f,"
	       "\"lat_mean_us\":%.2f,",
	       h->count, us(lathist_quantile(h, 0.5)), us(lathist_quantile(h, 0.9)),
	       us(lathist_quantile(h, 0.99)), us(lathist_quantile(h, 0.999)), us(h->max),
	       h->count ? us(h->sum / h->count) : 0.0);
	printf("\"mismatches\":%" PRIu64 ",", r->mismatches);
	for (int k = 0; k < MM_KINDS; k++)
		printf("\"mismatch_%s\":%" PRIu64 ",", mm_names[k], c->mismatch[k]);
	printf("\"error_frames\":%" PRIu64 ",", r->error_frames);
	for (unsigned k = 0; k <= ERR_MAX; k++)
		if (c->errors[k])
			printf("\"error_%s\":%" PRIu64 ",", k ? msg_error_label(k) : "unknown",
			       c->errors[k]);
	printf("\"connect_failed\":%" PRIu64 ",\"closed_early\":%" PRIu64
	       ",\"open_at_end\":%" PRIu64 ",",
	       c->connect_failed, c->closed, c->open_at_end);
	printf("\"client_cpu_pct\":%.1f,\"client_cpu_us_per_msg\":%.4f,",
	       100.0 * r->client_cpu_s / w,
	       r->msgs ? r->client_cpu_s * 1e6 / (double)r->msgs : 0.0);
	if (o->server_pid && r->start.ok && r->end.ok) {
		double cpu = (double)(r->end.cpu_ns - r->start.cpu_ns) / 1e9;
		printf("\"server_cpu_pct\":%.1f,\"server_cpu_us_per_msg\":%.4f,"
		       "\"server_rss_before_kb\":%" PRIu64 ",\"server_rss_start_kb\":%" PRIu64
		       ",\"server_rss_end_kb\":%" PRIu64 ",",
		       100.0 * cpu / w, r->msgs ? cpu * 1e6 / (double)r->msgs : 0.0,
		       r->before.rss_kb, r->start.rss_kb, r->end.rss_kb);
		if (o->connect_only && c->open_at_end)
			printf("\"server_bytes_per_conn\":%.0f,",
			       ((double)r->end.rss_kb - (double)r->before.rss_kb) * 1024.0 /
			       (double)c->open_at_end);
	}
	printf("\"status\":%d}\n", r->status);
}

static void merge(struct report *r, const struct benchrun_worker *w)
{
	struct bench_counts *d = &r->c;
	const struct bench_counts *s = &w->c;
	d->msgs += s->msgs;
	d->payload_bytes += s->payload_bytes;
	d->sent += s->sent;
	d->sends += s->sends;
	d->deliveries += s->deliveries;
	d->late += s->late;
	for (int k = 0; k < MM_KINDS; k++)
		d->mismatch[k] += s->mismatch[k];
	for (int k = 0; k <= ERR_MAX; k++)
		d->errors[k] += s->errors[k];
	d->connect_failed += s->connect_failed;
	d->closed += s->closed;
	d->open_at_end += s->open_at_end;
	if (!d->first_connect_err)
		d->first_connect_err = s->first_connect_err;
	lathist_merge(&r->hist, &w->hist);
}

int main(int argc, char **argv)
{
	struct benchopt o;
	char err[BENCHOPT_ERR_MAX];
	struct benchrun_shared sh;
	struct benchrun_worker *workers = NULL;
	uint8_t *pattern = NULL;
	struct report *r = NULL;
	unsigned started = 0;
	int status = 1;

	if (benchopt_parse(&o, argc, argv, err) < 0) {
		fprintf(stderr, "net001-bench: %s\n", err);
		return 2;
	}
	if (o.help) {
		fputs(benchopt_usage(), stdout);
		return 0;
	}
	if (o.server_pid && kill(o.server_pid, 0) < 0 && errno == ESRCH) {
		fprintf(stderr, "net001-bench: --server-pid: no process %d\n", (int)o.server_pid);
		return 2;
	}

	memset(&sh, 0, sizeof sh);
	sh.opt = &o;
	if (resolve(&o, &sh) < 0)
		return 2;
	int ret = raise_nofile((uint64_t)o.connections + o.receivers + 64);
	if (ret < 0) {
		fprintf(stderr, "net001-bench: cannot raise the descriptor limit to %u: %s\n",
		        o.connections + o.receivers + 64, strerror(-ret));
		return 2;
	}
	/* A peer that resets is counted, not fatal. */
	signal(SIGPIPE, SIG_IGN);

	pattern = malloc(FRAME_MAX_PAYLOAD);
	workers = calloc(o.threads, sizeof *workers);
	r = calloc(1, sizeof *r);
	if (!pattern || !workers || !r) {
		fprintf(stderr, "net001-bench: out of memory\n");
		goto out;
	}
	benchrun_fill_pattern(pattern, FRAME_MAX_PAYLOAD);
	sh.pattern = pattern;
	r->o = &o;
	r->before = sample_server(o.server_pid);
	sh.t_connect = benchrun_now();

	for (unsigned i = 0; i < o.threads; i++) {
		if (benchrun_worker_init(&workers[i], &sh, i) < 0) {
			fprintf(stderr, "net001-bench: out of memory for connections\n");
			goto join;
		}
	}
	for (; started < o.threads; started++) {
		ret = pthread_create(&workers[started].tid, NULL, benchrun_worker_main,
		                     &workers[started]);
		if (ret != 0) {
			fprintf(stderr, "net001-bench: pthread_create: %s\n", strerror(ret));
			sh.t_end = 0;
			atomic_store(&sh.go, 1);
			goto join;
		}
	}
	while (atomic_load(&sh.ready) < o.threads)
		sleep_until(benchrun_now() + 1000000ull);

	for (unsigned i = 0; i < o.threads; i++) {
		if (workers[i].err < 0) {
			fprintf(stderr, "net001-bench: %s\n", workers[i].errmsg);
			sh.t_end = 0;
			atomic_store(&sh.go, 1);
			goto join;
		}
	}

	sh.t_start = benchrun_now();
	sh.t_measure = sh.t_start + (uint64_t)(o.warmup * 1e9);
	sh.t_end = sh.t_measure + (uint64_t)(o.duration * 1e9);
	atomic_store_explicit(&sh.go, 1, memory_order_release);

	sleep_until(sh.t_measure);
	double cpu0 = rusage_cpu_s();
	r->start = sample_server(o.server_pid);
	sleep_until(sh.t_end);
	r->end = sample_server(o.server_pid);
	r->client_cpu_s = rusage_cpu_s() - cpu0;
	r->window_s = (double)(sh.t_end - sh.t_measure) / 1e9;
	status = 0;

join:
	for (unsigned i = 0; i < started; i++)
		pthread_join(workers[i].tid, NULL);
	if (status == 0) {
		for (unsigned i = 0; i < o.threads; i++)
			merge(r, &workers[i]);
		struct bench_counts *c = &r->c;
		for (int k = 0; k < MM_KINDS; k++)
			r->mismatches += c->mismatch[k];
		for (int k = 0; k <= ERR_MAX; k++)
			r->error_frames += c->errors[k];
		r->msgs = c->msgs;
		if (o.type == BENCH_BROADCAST && o.receivers == 0)
			r->msgs = c->sent;
		if (o.connect_only)
			r->msgs = 0;
		bool empty = o.connect_only ? c->open_at_end == 0 : r->msgs == 0;
		if (r->mismatches || r->error_frames || c->connect_failed || c->closed ||
		    empty)
			status = 1;
		r->status = status;
		if (o.json)
			print_json(r);
		else
			print_text(r);
	}
	for (unsigned i = 0; i < o.threads; i++)
		benchrun_worker_free(&workers[i]);
out:
	free(r);
	free(workers);
	free(pattern);
	return status;
}
