/*
 * bench.c - net001-bench: load generator and reply checker for NET-001
 * servers (and raw echo baselines), and the broadcast flood against
 * net001, Redis and NATS.
 *
 * main() parses the options, starts one worker per --threads (benchrun.c;
 * flood.c for --flood), waits until all have connected, then runs the
 * time line
 *
 *   t_start ---warmup---> t_measure ---duration---> t_end
 *
 * sampling its own CPU (getrusage) and, with --server-pid, the server's
 * CPU at t_measure and t_end and its RSS before connecting and every
 * second of the warmup and the window. Each second of the window it may print a progress
 * line on stderr from the workers' published counts (benchlive.h). After
 * the workers join, their counters and latency histograms are merged and
 * reported, as text, one JSON object or CSV.
 *
 * Exit status: 0 clean; 1 when any reply mismatched, any ERROR frame
 * came back, a connection failed or closed early, or no message was
 * counted; 2 for a bad command line.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "perf/benchopt.h"
#include "perf/benchrun.h"
#include "perf/flood.h"
#include "perf/lathist.h"
#include "perf/procstat.h"
#include "proto/frame.h"
#include "proto/msg.h"

#define RSS_SERIES_MAX 3600

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
	/* RSS each second of the warmup and the window, and at its end: the
	 * first RSS_SERIES_MAX samples kept, min, max and last of all. */
	uint64_t rss[RSS_SERIES_MAX];
	unsigned nrss;
	uint64_t rss_n, rss_min, rss_max, rss_last;
	uint64_t mismatches;
	uint64_t error_frames;
	uint64_t error_frames_other;
	uint64_t msgs;
	char fail_why[128];
	int status;
};

/* The workers of either engine. */
struct engine {
	bool flood;
	unsigned n;
	struct benchrun_worker *bw;
	struct flood_worker *fw;
};

static struct bench_live *live_of(struct engine *e, unsigned i)
{
	return e->flood ? &e->fw[i].live : &e->bw[i].live;
}

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

static void note_rss(struct report *r, uint64_t kb)
{
	if (r->nrss < RSS_SERIES_MAX)
		r->rss[r->nrss++] = kb;
	if (r->rss_n == 0 || kb < r->rss_min)
		r->rss_min = kb;
	if (kb > r->rss_max)
		r->rss_max = kb;
	r->rss_last = kb;
	r->rss_n++;
}

static void add_rss(struct report *r, pid_t pid)
{
	uint64_t kb;
	if (pid && procstat_rss_kb(pid, &kb) == 0)
		note_rss(r, kb);
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
	for (uint32_t i = 0; i < o->nreceivers_at; i++) {
		sh->raddr[i] = sh->addr;
		uint16_t nport = htons(o->receivers_at[i]);
		if (sh->addr.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&sh->raddr[i])->sin6_port = nport;
		else
			((struct sockaddr_in *)&sh->raddr[i])->sin_port = nport;
	}
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

static bool is_broadcast(const struct benchopt *o)
{
	return o->type == BENCH_BROADCAST;
}

/* ---- text ------------------------------------------------------------------ */

static void print_codes(const uint64_t *codes)
{
	for (unsigned k = 0; k <= ERR_MAX; k++)
		if (codes[k])
			printf("  %s %" PRIu64, k ? msg_error_name(k) : "UNKNOWN", codes[k]);
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
	} else if (o->flood) {
		printf("net001-bench: broadcast flood on %s, %u publisher%s, %u receivers, "
		       "payload %u B, %u thread%s, %.1f s (+%.1f s warmup)\n",
		       benchopt_target_name(o->target), o->connections,
		       o->connections == 1 ? "" : "s", o->receivers, o->payload, o->threads,
		       o->threads == 1 ? "" : "s", w, o->warmup);
		if (o->rate > 0)
			printf("target rate      %.0f broadcasts/s, open loop\n", o->rate);
		printf("deliveries       %" PRIu64 "  (%.1f/s)   payload %.2f MB/s\n", r->msgs,
		       r->msgs / w, (double)c->payload_bytes / w / 1e6);
		printf("broadcasts sent  %" PRIu64 "  (%.1f/s) in %" PRIu64 " writes\n", c->sent,
		       c->sent / w, c->sends);
		if (o->receivers) {
			double want = (double)c->sent_total * o->receivers;
			printf("delivered        %" PRIu64 " of %" PRIu64 " x %u sent in the whole run "
			       "(%.1f%%; the rest still queued at the end, or lost)\n",
			       c->deliveries, c->sent_total, o->receivers,
			       want > 0 ? 100.0 * (double)c->deliveries / want : 0.0);
			printf("checked          CRC and payload of %" PRIu64 " of them (1 in %u; "
			       "framing, length and time stamp of all)\n", c->checked, o->check_every);
		}
	} else {
		printf("net001-bench: %s%s, %u connections x %u in flight",
		       benchopt_type_name(o->type), o->raw_echo ? " (raw echo)" : "",
		       o->connections, o->pipeline);
		if (is_broadcast(o))
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
		if (is_broadcast(o))
			printf("broadcasts sent  %" PRIu64 "  (%.1f/s), deliveries %.1f/s\n",
			       c->sent, c->sent / w, c->msgs / w);
	}
	if (r->hist.count) {
		const struct lathist *h = &r->hist;
		printf("latency us       p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (mean %.1f, n=%" PRIu64 ")\n",
		       us(lathist_quantile(h, 0.5)), us(lathist_quantile(h, 0.9)),
		       us(lathist_quantile(h, 0.99)), us(lathist_quantile(h, 0.999)),
		       us(h->max), us(h->sum / h->count), h->count);
	}
	if (c->late)
		printf("window full      %" PRIu64 " times (open loop fell behind)\n", c->late);
	printf("mismatches       %" PRIu64, r->mismatches);
	for (int k = 0; k < MM_KINDS; k++)
		if (c->mismatch[k])
			printf("  %s %" PRIu64, mm_names[k], c->mismatch[k]);
	printf("\nERROR frames     %" PRIu64, r->error_frames);
	print_codes(c->errors);
	if (r->error_frames_other) {
		printf("\n  not counted    %" PRIu64 " (answers to setup or warmup requests, or "
		       "about the connection):", r->error_frames_other);
		print_codes(c->errors_other);
	}
	printf("\nconnections      failed %" PRIu64 ", closed early %" PRIu64, c->connect_failed,
	       c->closed);
	if (c->first_connect_err) {
		printf(" (first failure: %s", strerror(-c->first_connect_err));
		if (r->fail_why[0])
			printf(": %s", r->fail_why);
		printf(")");
	}
	const char *per = is_broadcast(o) ? "delivery" : "msg";
	printf("\nclient CPU       %.1f%% of one core", 100.0 * r->client_cpu_s / w);
	if (r->msgs)
		printf(", %.3f us/%s", r->client_cpu_s * 1e6 / (double)r->msgs, per);
	printf("\n");
	if (o->server_pid) {
		if (r->start.ok && r->end.ok) {
			double cpu = (double)(r->end.cpu_ns - r->start.cpu_ns) / 1e9;
			printf("server CPU       %.1f%% of one core", 100.0 * cpu / w);
			if (r->msgs)
				printf(", %.3f us/%s", cpu * 1e6 / (double)r->msgs, per);
			printf("\nserver RSS kB    before %" PRIu64 ", window start %" PRIu64
			       ", end %" PRIu64, r->before.rss_kb, r->start.rss_kb, r->end.rss_kb);
			if (o->connect_only && c->open_at_end)
				printf("  (%.0f bytes/connection)",
				       ((double)r->end.rss_kb - (double)r->before.rss_kb) * 1024.0 /
				       (double)c->open_at_end);
			if (r->rss_n)
				printf("\n  each second    min %" PRIu64 ", max %" PRIu64 ", last %" PRIu64
				       " (%" PRIu64 " samples)", r->rss_min, r->rss_max, r->rss_last,
				       r->rss_n);
			printf("\n");
		} else {
			printf("server           pid %d could not be read\n", (int)o->server_pid);
		}
	}
	if (r->status)
		printf("result           FAIL\n");
}

/* ---- JSON and CSV: one list of fields ------------------------------------------ */

struct fields {
	bool csv;
	unsigned n;
	char key[128][40];
	char val[128][48];
};

__attribute__((format(printf, 3, 4)))
static void field(struct fields *f, const char *key, const char *fmt, ...)
{
	if (f->n >= 128)
		return;
	snprintf(f->key[f->n], sizeof f->key[0], "%s", key);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->val[f->n], sizeof f->val[0], fmt, ap);
	va_end(ap);
	f->n++;
}

static void collect(const struct report *r, struct fields *f)
{
	const struct benchopt *o = r->o;
	const struct bench_counts *c = &r->c;
	const struct lathist *h = &r->hist;
	double w = r->window_s;
	char k[40];

	field(f, "type", "\"%s\"", benchopt_type_name(o->type));
	field(f, "target", "\"%s\"", benchopt_target_name(o->target));
	field(f, "flood", "%s", o->flood ? "true" : "false");
	field(f, "connect_only", "%s", o->connect_only ? "true" : "false");
	field(f, "raw_echo", "%s", o->raw_echo ? "true" : "false");
	field(f, "connections", "%u", o->connections);
	field(f, "receivers", "%u", o->receivers);
	field(f, "threads", "%u", o->threads);
	field(f, "pipeline", "%u", o->pipeline);
	field(f, "payload", "%u", o->payload);
	field(f, "rate", "%.0f", o->rate);
	/* The paced bench checks every reply. */
	field(f, "check_every", "%u", o->flood ? o->check_every : 1);
	field(f, "duration_s", "%.3f", w);
	field(f, "warmup_s", "%.3f", o->warmup);
	field(f, "messages", "%" PRIu64, r->msgs);
	field(f, "msgs_per_s", "%.1f", r->msgs / w);
	field(f, "mb_per_s", "%.3f", (double)c->payload_bytes / w / 1e6);
	field(f, "sent", "%" PRIu64, c->sent);
	field(f, "sent_total", "%" PRIu64, c->sent_total);
	field(f, "frames_per_send", "%.2f", c->sends ? (double)c->sent / (double)c->sends : 0.0);
	field(f, "deliveries", "%" PRIu64, c->deliveries);
	field(f, "checked", "%" PRIu64, c->checked);
	field(f, "deliveries_per_s", "%.1f", is_broadcast(o) ? c->msgs / w : 0.0);
	field(f, "window_full", "%" PRIu64, c->late);
	field(f, "lat_count", "%" PRIu64, h->count);
	field(f, "lat_p50_us", "%.2f", us(lathist_quantile(h, 0.5)));
	field(f, "lat_p90_us", "%.2f", us(lathist_quantile(h, 0.9)));
	field(f, "lat_p99_us", "%.2f", us(lathist_quantile(h, 0.99)));
	field(f, "lat_p999_us", "%.2f", us(lathist_quantile(h, 0.999)));
	field(f, "lat_max_us", "%.2f", us(h->max));
	field(f, "lat_mean_us", "%.2f", h->count ? us(h->sum / h->count) : 0.0);
	field(f, "mismatches", "%" PRIu64, r->mismatches);
	for (int i = 0; i < MM_KINDS; i++) {
		snprintf(k, sizeof k, "mismatch_%s", mm_names[i]);
		field(f, k, "%" PRIu64, c->mismatch[i]);
	}
	field(f, "error_frames", "%" PRIu64, r->error_frames);
	field(f, "error_frames_other", "%" PRIu64, r->error_frames_other);
	/* JSON names the codes that came; CSV has a column for each. */
	for (unsigned i = 0; i <= ERR_MAX; i++) {
		const char *label = i ? msg_error_label(i) : "unknown";
		if (f->csv || c->errors[i]) {
			snprintf(k, sizeof k, "error_%s", label);
			field(f, k, "%" PRIu64, c->errors[i]);
		}
		if (f->csv || c->errors_other[i]) {
			snprintf(k, sizeof k, "other_error_%s", label);
			field(f, k, "%" PRIu64, c->errors_other[i]);
		}
	}
	field(f, "connect_failed", "%" PRIu64, c->connect_failed);
	field(f, "closed_early", "%" PRIu64, c->closed);
	field(f, "open_at_end", "%" PRIu64, c->open_at_end);
	field(f, "client_cpu_pct", "%.1f", 100.0 * r->client_cpu_s / w);
	field(f, "client_cpu_us_per_msg", "%.4f",
	      r->msgs ? r->client_cpu_s * 1e6 / (double)r->msgs : 0.0);
	bool server = o->server_pid && r->start.ok && r->end.ok;
	if (server || f->csv) {
		double cpu = server ? (double)(r->end.cpu_ns - r->start.cpu_ns) / 1e9 : 0;
		field(f, "server_cpu_pct", "%.1f", 100.0 * cpu / w);
		field(f, "server_cpu_us_per_msg", "%.4f", r->msgs ? cpu * 1e6 / (double)r->msgs : 0.0);
		field(f, "server_rss_before_kb", "%" PRIu64, r->before.rss_kb);
		field(f, "server_rss_start_kb", "%" PRIu64, r->start.rss_kb);
		field(f, "server_rss_end_kb", "%" PRIu64, r->end.rss_kb);
		field(f, "server_rss_min_kb", "%" PRIu64, r->rss_min);
		field(f, "server_rss_max_kb", "%" PRIu64, r->rss_max);
		field(f, "server_rss_last_kb", "%" PRIu64, r->rss_last);
		if (o->connect_only && c->open_at_end)
			field(f, "server_bytes_per_conn", "%.0f",
			      ((double)r->end.rss_kb - (double)r->before.rss_kb) * 1024.0 /
			      (double)c->open_at_end);
	}
	field(f, "status", "%d", r->status);
}

static void print_json(const struct report *r)
{
	static struct fields f;
	memset(&f, 0, sizeof f);
	collect(r, &f);
	putchar('{');
	for (unsigned i = 0; i < f.n; i++) {
		/* The RSS series goes before status, which stays last. */
		if (strcmp(f.key[i], "status") == 0 && r->nrss) {
			printf(",\"server_rss_series_kb\":[");
			for (unsigned j = 0; j < r->nrss; j++)
				printf("%s%" PRIu64, j ? "," : "", r->rss[j]);
			printf("]");
		}
		printf("%s\"%s\":%s", i ? "," : "", f.key[i], f.val[i]);
	}
	printf("}\n");
}

static void print_csv(const struct report *r)
{
	static struct fields f;
	memset(&f, 0, sizeof f);
	f.csv = true;
	collect(r, &f);
	for (unsigned i = 0; i < f.n; i++)
		printf("%s%s", i ? "," : "", f.key[i]);
	putchar('\n');
	for (unsigned i = 0; i < f.n; i++) {
		const char *v = f.val[i];
		size_t len = strlen(v);
		/* Strings lose their JSON quotes (they hold no commas). */
		if (len >= 2 && v[0] == '"')
			printf("%s%.*s", i ? "," : "", (int)len - 2, v + 1);
		else
			printf("%s%s", i ? "," : "", v);
	}
	putchar('\n');
}

/* ---- progress ------------------------------------------------------------------ */

struct progress {
	bool on;
	bool tty;
	uint64_t last_msgs;
	uint64_t last_t;
	bool drawn;
};

static void progress_line(struct progress *p, struct engine *e, const struct benchrun_shared *sh,
                          const struct report *r, uint64_t now)
{
	struct bench_counts c;
	static struct lathist h;
	memset(&c, 0, sizeof c);
	memset(&h, 0, sizeof h);
	for (unsigned i = 0; i < e->n; i++)
		bench_live_read(live_of(e, i), &c, &h);
	double dt = (double)(now - p->last_t) / 1e9;
	double rate = dt > 0 ? (double)(c.msgs - p->last_msgs) / dt : 0;
	p->last_msgs = c.msgs;
	p->last_t = now;
	uint64_t errs = 0, other = 0, mm = 0;
	for (int k = 0; k <= ERR_MAX; k++) {
		errs += c.errors[k];
		other += c.errors_other[k];
	}
	for (int k = 0; k < MM_KINDS; k++)
		mm += c.mismatch[k];
	char line[256];
	int n = snprintf(line, sizeof line, "net001-bench: %5.1f s  %10.0f %s  p99 %.1f us  errors %" PRIu64,
	                 (double)(now - sh->t_measure) / 1e9, rate,
	                 is_broadcast(sh->opt) ? "deliveries/s" : "msg/s",
	                 h.count ? us(lathist_quantile(&h, 0.99)) : 0.0, errs + other);
	if (mm)
		n += snprintf(line + n, sizeof line - (size_t)n, "  mismatches %" PRIu64, mm);
	if (c.closed || c.connect_failed)
		n += snprintf(line + n, sizeof line - (size_t)n, "  closed %" PRIu64,
		              c.closed + c.connect_failed);
	if (r->rss_n)
		n += snprintf(line + n, sizeof line - (size_t)n, "  server RSS %" PRIu64 " kB",
		              r->rss_last);
	if (p->tty)
		fprintf(stderr, "\r\x1b[K%s", line);
	else
		fprintf(stderr, "%s\n", line);
	p->drawn = true;
	fflush(stderr);
}

static void progress_done(struct progress *p)
{
	if (p->on && p->tty && p->drawn)
		fprintf(stderr, "\n");
}

/* ---- main -------------------------------------------------------------------- */

static int engine_init(struct engine *e, struct benchrun_shared *sh, unsigned i)
{
	return e->flood ? flood_worker_init(&e->fw[i], sh, i)
	                : benchrun_worker_init(&e->bw[i], sh, i);
}

static int engine_start(struct engine *e, unsigned i)
{
	return e->flood ? pthread_create(&e->fw[i].tid, NULL, flood_worker_main, &e->fw[i])
	                : pthread_create(&e->bw[i].tid, NULL, benchrun_worker_main, &e->bw[i]);
}

static void engine_join(struct engine *e, unsigned i)
{
	pthread_join(e->flood ? e->fw[i].tid : e->bw[i].tid, NULL);
}

static const char *engine_err(struct engine *e, unsigned i)
{
	if (e->flood)
		return e->fw[i].err < 0 ? e->fw[i].errmsg : NULL;
	return e->bw[i].err < 0 ? e->bw[i].errmsg : NULL;
}

static void engine_merge(struct engine *e, unsigned i, struct report *r)
{
	const struct bench_counts *c = e->flood ? &e->fw[i].c : &e->bw[i].c;
	const struct lathist *h = e->flood ? &e->fw[i].hist : &e->bw[i].hist;
	bench_counts_add(&r->c, c);
	lathist_merge(&r->hist, h);
	if (e->flood && !r->fail_why[0] && e->fw[i].why[0])
		snprintf(r->fail_why, sizeof r->fail_why, "%s", e->fw[i].why);
}

static void engine_free(struct engine *e, unsigned i)
{
	if (e->flood)
		flood_worker_free(&e->fw[i]);
	else
		benchrun_worker_free(&e->bw[i]);
}

/* When RATE_LIMITED is the only thing that went wrong, say how to lift it. */
static void rate_limit_hint(const struct report *r)
{
	const struct bench_counts *c = &r->c;
	uint64_t limited = c->errors[ERR_RATE_LIMITED] + c->errors_other[ERR_RATE_LIMITED];
	if (!limited || limited != r->error_frames + r->error_frames_other || r->mismatches ||
	    c->connect_failed || c->closed || r->o->target != TARGET_NET001)
		return;
	fprintf(stderr, "net001-bench: every failure was RATE_LIMITED (%" PRIu64 "): the server's "
	        "rate limits held the load back; to measure it unthrottled, start the server "
	        "with --rate-limit 0 --global-rate-limit 0\n", limited);
}

int main(int argc, char **argv)
{
	struct benchopt o;
	char err[BENCHOPT_ERR_MAX];
	struct benchrun_shared sh;
	struct engine e = { 0 };
	uint8_t *pattern = NULL;
	struct report *r = NULL;
	unsigned started = 0, inited = 0;
	int status = 1;
	struct progress prog = { .tty = isatty(STDERR_FILENO) };

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

	e.flood = o.flood;
	e.n = o.threads;
	pattern = malloc(FRAME_MAX_PAYLOAD);
	if (e.flood)
		e.fw = calloc(o.threads, sizeof *e.fw);
	else
		e.bw = calloc(o.threads, sizeof *e.bw);
	r = calloc(1, sizeof *r);
	if (!pattern || (!e.fw && !e.bw) || !r) {
		fprintf(stderr, "net001-bench: out of memory\n");
		goto out;
	}
	prog.on = o.progress || (prog.tty && !o.no_progress);
	benchrun_fill_pattern(pattern, FRAME_MAX_PAYLOAD);
	sh.pattern = pattern;
	r->o = &o;
	r->before = sample_server(o.server_pid);
	sh.t_connect = benchrun_now();

	for (; inited < o.threads; inited++) {
		if (engine_init(&e, &sh, inited) < 0) {
			fprintf(stderr, "net001-bench: out of memory for connections\n");
			goto join;
		}
	}
	for (; started < o.threads; started++) {
		ret = engine_start(&e, started);
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
		const char *msg = engine_err(&e, i);
		if (msg) {
			fprintf(stderr, "net001-bench: %s\n", msg);
			sh.t_end = 0;
			atomic_store(&sh.go, 1);
			goto join;
		}
	}

	sh.t_start = benchrun_now();
	sh.t_measure = sh.t_start + (uint64_t)(o.warmup * 1e9);
	sh.t_end = sh.t_measure + (uint64_t)(o.duration * 1e9);
	atomic_store_explicit(&sh.go, 1, memory_order_release);

	/* The server's RSS each second of the warmup too: a flood's peak
	 * may come early. */
	for (uint64_t tick = sh.t_start + 1000000000ull; tick < sh.t_measure;
	     tick += 1000000000ull) {
		sleep_until(tick);
		add_rss(r, o.server_pid);
	}
	sleep_until(sh.t_measure);
	double cpu0 = rusage_cpu_s();
	r->start = sample_server(o.server_pid);
	prog.last_t = sh.t_measure;
	/* Each second of the window: the server's RSS, and the progress line. */
	for (uint64_t tick = sh.t_measure + 1000000000ull; tick < sh.t_end;
	     tick += 1000000000ull) {
		sleep_until(tick);
		add_rss(r, o.server_pid);
		if (prog.on)
			progress_line(&prog, &e, &sh, r, tick);
	}
	sleep_until(sh.t_end);
	r->end = sample_server(o.server_pid);
	if (r->end.ok)
		note_rss(r, r->end.rss_kb);
	r->client_cpu_s = rusage_cpu_s() - cpu0;
	r->window_s = (double)(sh.t_end - sh.t_measure) / 1e9;
	status = 0;

join:
	for (unsigned i = 0; i < started; i++)
		engine_join(&e, i);
	progress_done(&prog);
	if (status == 0) {
		for (unsigned i = 0; i < o.threads; i++)
			engine_merge(&e, i, r);
		struct bench_counts *c = &r->c;
		for (int k = 0; k < MM_KINDS; k++)
			r->mismatches += c->mismatch[k];
		for (int k = 0; k <= ERR_MAX; k++) {
			r->error_frames += c->errors[k];
			r->error_frames_other += c->errors_other[k];
		}
		r->msgs = c->msgs;
		if (is_broadcast(&o) && o.receivers == 0)
			r->msgs = c->sent;
		if (o.connect_only)
			r->msgs = 0;
		bool empty = o.connect_only ? c->open_at_end == 0 : r->msgs == 0;
		if (r->mismatches || r->error_frames || r->error_frames_other ||
		    c->connect_failed || c->closed || empty)
			status = 1;
		r->status = status;
		if (o.json)
			print_json(r);
		else if (o.csv)
			print_csv(r);
		else
			print_text(r);
		fflush(stdout);
		rate_limit_hint(r);
	}
	for (unsigned i = 0; i < inited; i++)
		engine_free(&e, i);
out:
	free(r);
	free(e.bw);
	free(e.fw);
	free(pattern);
	return status;
}
