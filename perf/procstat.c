/*
 * procstat.c - /proc readers for net001-bench. See procstat.h.
 */
#include "procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_text(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int err = -errno;
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd);
	return 0;
}

int procstat_parse_stat(const char *text, uint64_t *ticks)
{
	const char *p = strrchr(text, ')');
	if (!p)
		return -EINVAL;
	p++;
	/* After ')': field 3 (state) is the first; utime is field 14 and
	 * stime field 15, so skip 11 fields after the state. */
	for (int field = 3; field < 14; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EINVAL;
		while (*p && *p != ' ')
			p++;
	}
	char *end;
	errno = 0;
	unsigned long long ut = strtoull(p, &end, 10);
	if (end == p || errno)
		return -EINVAL;
	p = end;
	unsigned long long st = strtoull(p, &end, 10);
	if (end == p || errno)
		return -EINVAL;
	*ticks = (uint64_t)ut + (uint64_t)st;
	return 0;
}

int procstat_cpu_ns(pid_t pid, uint64_t *ns)
{
	char path[64], buf[1024];
	uint64_t ticks;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int ret = read_text(path, buf, sizeof buf);
	if (ret < 0)
		return ret;
	ret = procstat_parse_stat(buf, &ticks);
	if (ret < 0)
		return ret;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	*ns = ticks * (1000000000ull / (uint64_t)hz);
	return 0;
}

int procstat_rss_kb(pid_t pid, uint64_t *kb)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	int ret = read_text(path, buf, sizeof buf);
	if (ret < 0)
		return ret;
	const char *p = strstr(buf, "\nVmRSS:");
	if (!p)
		return -ENOENT; /* a zombie has no VmRSS */
	if (sscanf(p + 7, "%" SCNu64, kb) != 1)
		return -EINVAL;
	return 0;
}
