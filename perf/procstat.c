/*
 * procstat.c - /proc readers for net001-bench. See procstat.h.
 */
#include "perf/procstat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metrics/metrics.h"

int procstat_cpu_ns(pid_t pid, uint64_t *ns)
{
	struct metrics_proc_stat st;
	int ret = metrics_proc_stat(pid, &st);
	if (ret < 0)
		return ret;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	*ns = (st.utime + st.stime) * (1000000000ull / (uint64_t)hz);
	return 0;
}

int procstat_rss_kb(pid_t pid, uint64_t *kb)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	ssize_t ret = metrics_proc_read(path, buf, sizeof buf);
	if (ret < 0)
		return (int)ret;
	const char *p = strstr(buf, "\nVmRSS:");
	if (!p)
		return -ENOENT; /* a zombie has no VmRSS */
	if (sscanf(p + 7, "%" SCNu64, kb) != 1)
		return -EINVAL;
	return 0;
}
