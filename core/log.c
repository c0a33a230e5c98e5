/*
 * log.c - see log.h.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool debug_on; /* written by main() before any thread starts */

void log_set_debug(bool on)
{
	debug_on = on;
}

bool log_debug_enabled(void)
{
	return debug_on;
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static void log_vmsg(enum log_level lvl, const char *suffix, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ net001 %s: ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl]);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	if (suffix) {
		size_t s = strlen(suffix);
		if (len + s > sizeof line - 2)
			s = sizeof line - 2 - len;
		memcpy(line + len, suffix, s);
		len += s;
	}
	line[len++] = '\n';
	/* One write: lines from several threads stay whole. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, NULL, fmt, ap);
	va_end(ap);
}

void log_limited(struct log_limit *l, uint64_t now_s, enum log_level lvl,
                 const char *fmt, ...)
{
	if (lvl == LOG_DEBUG && !debug_on)
		return;
	if (l->window_s != now_s) {
		l->window_s = now_s;
		l->used = 0;
	}
	if (l->used >= LOG_LIMIT_PER_SEC) {
		l->dropped++;
		return;
	}
	l->used++;

	char suffix[64] = "";
	if (l->dropped) {
		snprintf(suffix, sizeof suffix, " (%u similar lines suppressed)", l->dropped);
		l->dropped = 0;
	}
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, suffix[0] ? suffix : NULL, fmt, ap);
	va_end(ap);
}
