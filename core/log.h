/*
 * log.h - one-line logging to stderr.
 *
 * Any thread may call these. Messages are written with a single write(2),
 * so lines from different threads do not interleave. The data path must
 * use log_limited(), which lets through at most a few lines per second per
 * struct log_limit (one per core) and counts what it drops.
 */
#ifndef NET001_LOG_H
#define NET001_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set once by main() before threads start; read-only afterwards. */
void log_set_debug(bool on);
bool log_debug_enabled(void);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A per-core budget: at most LOG_LIMIT_PER_SEC lines a second. */
#define LOG_LIMIT_PER_SEC 10
struct log_limit {
	uint64_t window_s;   /* second the budget belongs to */
	uint32_t used;       /* lines printed in that second */
	uint32_t dropped;    /* lines suppressed since the last printed one */
};

/* now_s: the caller's cached clock in seconds. Owner thread only. */
void log_limited(struct log_limit *l, uint64_t now_s, enum log_level lvl,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_debug_enabled()) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
