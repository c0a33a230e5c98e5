/*
 * exposition.c - see exposition.h.
 */
#include "exposition.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_client.h"

const struct metric_family metric_families[METRIC_FAMILIES] = {
	{ "net001_connections_active", "gauge" },
	{ "net001_connections_accepted_total", "counter" },
	{ "net001_connections_rejected_total", "counter" },
	{ "net001_frames_received_total", "counter" },
	{ "net001_frames_sent_total", "counter" },
	{ "net001_bytes_received_total", "counter" },
	{ "net001_bytes_sent_total", "counter" },
	{ "net001_errors_total", "counter" },
	{ "net001_messages_per_second", "gauge" },
	{ "net001_request_latency_seconds", "histogram" },
	{ "net001_broadcast_deliveries_total", "counter" },
	{ "net001_broadcast_fanout_seconds", "histogram" },
	{ "net001_slow_consumer_closes_total", "counter" },
	{ "net001_broadcast_queue_full_total", "counter" },
	{ "net001_recv_enobufs_total", "counter" },
	{ "net001_cq_overflows_total", "counter" },
	{ "net001_buffer_ring_free", "gauge" },
	{ "process_resident_memory_bytes", "gauge" },
	{ "process_virtual_memory_bytes", "gauge" },
	{ "process_cpu_seconds_total", "counter" },
	{ "process_open_fds", "gauge" },
	{ "process_max_fds", "gauge" },
	{ "process_start_time_seconds", "gauge" },
};

static const char *find_line(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;
	while (p && *p) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return p + n + 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

bool sample(const char *text, const char *series, double *out)
{
	const char *v = find_line(text, series);
	if (!v)
		return false;
	char *end;
	*out = strtod(v, &end);
	return end != v && (*end == '\n' || *end == '\0');
}

bool sample_u64(const char *text, const char *series, uint64_t *out)
{
	const char *v = find_line(text, series);
	if (!v)
		return false;
	char *end;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return errno == 0 && end != v && (*end == '\n' || *end == '\0');
}

/* Lines of text that start with s, and with exact also end where it does. */
static unsigned count(const char *text, const char *s, bool exact)
{
	size_t n = strlen(s);
	unsigned c = 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, s, n) == 0 && (!exact || p[n] == '\n' || p[n] == '\0'))
			c++;
	return c;
}

bool scrape_u64(uint16_t port, const char *series, uint64_t *out)
{
	char *text = http_scrape(port);
	bool ok = text && sample_u64(text, series, out);
	free(text);
	return ok;
}

unsigned count_lines(const char *text, const char *line)
{
	return count(text, line, true);
}

unsigned count_prefix(const char *text, const char *prefix)
{
	return count(text, prefix, false);
}

bool promtool_path(char *out, size_t cap)
{
	const char *env = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s", env ? env : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, cap, "%s/promtool", d);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

int promtool_check(const char *tool, const char *text, size_t len,
                   char *report, size_t cap)
{
	char in[] = "/tmp/net001-promtool-in-XXXXXX";
	char out[] = "/tmp/net001-promtool-out-XXXXXX";
	int st = -1;

	report[0] = '\0';
	int in_fd = mkstemp(in);
	if (in_fd < 0)
		return -1;
	int out_fd = mkstemp(out);
	if (out_fd < 0)
		goto out_in;
	if (write(in_fd, text, len) != (ssize_t)len)
		goto out_both;

	pid_t pid = fork();
	if (pid < 0)
		goto out_both;
	if (pid == 0) {
		if (lseek(in_fd, 0, SEEK_SET) < 0 || dup2(in_fd, STDIN_FILENO) < 0 ||
		    dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
			_exit(126);
		execl(tool, "promtool", "check", "metrics", (char *)NULL);
		_exit(127);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			goto out_both;
	st = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	ssize_t n = pread(out_fd, report, cap - 1, 0);
	report[n > 0 ? n : 0] = '\0';
out_both:
	close(out_fd);
	unlink(out);
out_in:
	close(in_fd);
	unlink(in);
	return st;
}
