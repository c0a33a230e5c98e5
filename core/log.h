/*
 * log.h - one-line logging to stderr, as text or as JSON.
 *
 * Any thread may call these. Messages are written with a single write(2),
 * so lines from different threads do not interleave. The data path must
 * use the limited calls, which let through at most a few lines per second
 * per struct log_limit (one per core) and count what they drop. Nothing
 * here allocates: every line is built on the caller's stack.
 *
 * A line is an event: a name ("listening", "close", ...), the message a
 * person reads, and optional typed fields. The two formats:
 *
 *   text  2026-12-01T15:00:00.123Z net001 debug: core 0: slot 3 (127.0.0.1:51234) idle timeout
 *   json  {"time":"2026-12-01T15:00:00.123Z","level":"debug","core":0,"event":"close",
 *          "msg":"core 0: slot 3 (127.0.0.1:51234) idle timeout",
 *          "slot":3,"peer":"127.0.0.1:51234","reason":"idle_timeout"}
 *
 * JSON lines always hold time, level, core (the worker thread's number, or
 * null on other threads), event ("message" for the plain calls, which have
 * no event of their own) and msg (exactly what the text format prints
 * after the level), in that order; then the fields, and "suppressed" when
 * the rate limit dropped lines just before this one. Strings are escaped, invalid UTF-8
 * becomes U+FFFD, and an overlong line is cut inside a string, never
 * into invalid JSON. Field names are the caller's: plain lower-case words
 * other than those above.
 */
#ifndef NET001_LOG_H
#define NET001_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
/* The order of --log-format's choices. */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Set once by main() before threads start; read-only afterwards. */
void log_set_debug(bool on);
bool log_debug_enabled(void);
void log_set_format(enum log_format f);
enum log_format log_get_format(void);
/* The calling thread's worker number for the "core" field (-1: none, the
 * default). Each worker thread sets it once at start. */
void log_set_thread_core(int core);

/* ---- fields --------------------------------------------------------------- */

enum log_kv_type { LOG_KV_STR, LOG_KV_UINT, LOG_KV_INT, LOG_KV_BOOL };
struct log_kv {
	const char *key;
	enum log_kv_type type;
	union {
		const char *s; /* NULL: the field is left out */
		uint64_t u;
		int64_t i;
		bool b;
	} v;
};
#define LOG_STR(k, x)  { .key = (k), .type = LOG_KV_STR, .v.s = (x) }
#define LOG_UINT(k, x) { .key = (k), .type = LOG_KV_UINT, .v.u = (uint64_t)(x) }
#define LOG_INT(k, x)  { .key = (k), .type = LOG_KV_INT, .v.i = (int64_t)(x) }
#define LOG_BOOL(k, x) { .key = (k), .type = LOG_KV_BOOL, .v.b = (x) }
/* An array of fields and its length, for the kv and nkv arguments:
 * LOG_FIELDS(LOG_STR("host", h), LOG_UINT("port", p)). */
#define LOG_FIELDS(...) \
	((const struct log_kv[]){ __VA_ARGS__ }), \
	(sizeof((const struct log_kv[]){ __VA_ARGS__ }) / sizeof(struct log_kv))
#define LOG_NO_FIELDS NULL, 0

/* ---- lines ---------------------------------------------------------------- */

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An event: name, fields (kv[0..nkv)), then the message. */
void log_event(enum log_level lvl, const char *event, const struct log_kv *kv,
               size_t nkv, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

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
void log_event_limited(struct log_limit *l, uint64_t now_s, enum log_level lvl,
                       const char *event, const struct log_kv *kv, size_t nkv,
                       const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/*
 * The limit and the line apart, for callers with work to do before a line
 * (formatting an address): log_limit_take() says whether a line may go out
 * now (a debug line only with --debug; false counts it as suppressed), and
 * the line that it let through is then printed with log_event_taken(),
 * which reports and clears the count of lines suppressed before it.
 */
bool log_limit_take(struct log_limit *l, uint64_t now_s, enum log_level lvl);
void log_event_taken(struct log_limit *l, enum log_level lvl, const char *event,
                     const struct log_kv *kv, size_t nkv, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/*
 * A program's fatal start-up error: "PROGRAM: message" on stderr in the
 * text format (as before any logging), an error line with event
 * "start_failed" in the JSON format.
 */
void log_fatal(const char *program, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_debug_enabled()) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
