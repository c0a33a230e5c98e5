/*
 * procstat.h - another process's CPU time and resident memory, read from
 * /proc (with the reader of metrics/metrics.h), for net001-bench
 * --server-pid.
 *
 * Any thread may call these; they keep no state.
 */
#ifndef NET001_PROCSTAT_H
#define NET001_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

/*
 * CPU time of process pid (all its threads): utime + stime from
 * /proc/PID/stat, in nanoseconds (the kernel counts in clock ticks, so
 * the resolution is 1/sysconf(_SC_CLK_TCK) s). Returns 0 or -errno.
 */
int procstat_cpu_ns(pid_t pid, uint64_t *ns);

/* VmRSS from /proc/PID/status in kB. Returns 0 or -errno. */
int procstat_rss_kb(pid_t pid, uint64_t *kb);

#endif
