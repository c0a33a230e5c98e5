/*
 * log.c - see log.h.
 */
#include "core/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Written by main() before any thread starts. */
static bool debug_on;
static enum log_format format = LOG_FORMAT_TEXT;
static _Thread_local int thread_core = -1;

void log_set_debug(bool on)
{
	debug_on = on;
}

bool log_debug_enabled(void)
{
	return debug_on;
}

void log_set_format(enum log_format f)
{
	format = f;
}

enum log_format log_get_format(void)
{
	return format;
}

void log_set_thread_core(int core)
{
	thread_core = core;
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

#define MSG_MAX  1024 /* the message (text: the whole line) */
#define JSON_MAX 4096 /* a JSON line: the message escaped, and the fields */

/* ---- a bounded JSON writer -------------------------------------------------
 *
 * Every write either fits whole or leaves the line as it was, so what is
 * written is always a prefix of valid JSON that the closing "}\n" ends;
 * a string that does not fit is cut between characters. TAIL bytes stay
 * free for that closing.
 */
#define TAIL 2

struct jw {
	char *p;
	size_t len, cap;
};

static bool jw_raw(struct jw *w, const char *s, size_t n)
{
	if (w->len + n + TAIL > w->cap)
		return false;
	memcpy(w->p + w->len, s, n);
	w->len += n;
	return true;
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t k;
	uint32_t cp;

	if (c >= 0xC2 && c <= 0xDF) {
		k = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		k = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		k = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	/* Overlong forms, surrogates, past U+10FFFF. */
	if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return k;
}

/* A JSON string of s[0..n): as much of it as fits, then the quote. */
static bool jw_str(struct jw *w, const char *s, size_t n)
{
	/* Room for the quotes, or nothing at all. */
	if (w->len + 2 + TAIL > w->cap)
		return false;
	w->p[w->len++] = '"';
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		char esc[8];
		const char *out = esc;
		size_t k = 1, m;
		unsigned char c = u[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			m = 2;
		} else if (c < 0x20) {
			static const char hex[] = "0123456789abcdef";
			esc[0] = '\\';
			m = 2;
			switch (c) {
			case '\n': esc[1] = 'n'; break;
			case '\r': esc[1] = 'r'; break;
			case '\t': esc[1] = 't'; break;
			case '\b': esc[1] = 'b'; break;
			case '\f': esc[1] = 'f'; break;
			default:
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				m = 6;
			}
		} else if (c < 0x80) {
			out = (const char *)u + i;
			m = 1;
		} else if ((k = utf8_len(u + i, n - i)) != 0) {
			out = (const char *)u + i;
			m = k;
		} else {
			k = 1;
			out = "\\ufffd";
			m = 6;
		}
		/* Keep one byte for the closing quote. */
		if (w->len + m + 1 + TAIL > w->cap)
			break;
		memcpy(w->p + w->len, out, m);
		w->len += m;
		i += k;
	}
	w->p[w->len++] = '"';
	return true;
}

/* ,"key": -- keys are the program's own words, never escaped. */
static bool jw_key(struct jw *w, const char *key)
{
	size_t n = strlen(key);
	if (w->len + n + 4 + TAIL > w->cap)
		return false;
	w->p[w->len++] = ',';
	w->p[w->len++] = '"';
	memcpy(w->p + w->len, key, n);
	w->len += n;
	w->p[w->len++] = '"';
	w->p[w->len++] = ':';
	return true;
}

static bool jw_kv(struct jw *w, const struct log_kv *kv)
{
	char num[24];
	int n;

	switch (kv->type) {
	case LOG_KV_STR:
		if (!kv->v.s)
			return true;
		return jw_key(w, kv->key) && jw_str(w, kv->v.s, strlen(kv->v.s));
	case LOG_KV_UINT:
		n = snprintf(num, sizeof num, "%" PRIu64, kv->v.u);
		return jw_key(w, kv->key) && jw_raw(w, num, (size_t)n);
	case LOG_KV_INT:
		n = snprintf(num, sizeof num, "%" PRId64, kv->v.i);
		return jw_key(w, kv->key) && jw_raw(w, num, (size_t)n);
	case LOG_KV_BOOL:
		return jw_key(w, kv->key) &&
		       jw_raw(w, kv->v.b ? "true" : "false", kv->v.b ? 4 : 5);
	}
	return true;
}

/* ---- lines ----------------------------------------------------------------- */

struct line {
	enum log_level lvl;
	const char *event;          /* NULL: "message" */
	const struct log_kv *kv;
	size_t nkv;
	uint32_t suppressed;
};

static void write_line(const char *p, size_t n)
{
	/* One write: lines from several threads stay whole. */
	ssize_t w = write(STDERR_FILENO, p, n);
	(void)w;
}

static int stamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	return snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	                tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void emit_text(const struct line *ln, const char *fmt, va_list ap)
{
	char line[MSG_MAX];
	int n = stamp(line, sizeof line);
	if (n < 0)
		return;
	n += snprintf(line + n, sizeof line - (size_t)n, " net001 %s: ", level_names[ln->lvl]);
	int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	if (ln->suppressed) {
		char suffix[64];
		int s = snprintf(suffix, sizeof suffix, " (%u similar lines suppressed)",
		                 ln->suppressed);
		if (len + (size_t)s > sizeof line - 2)
			s = (int)(sizeof line - 2 - len);
		memcpy(line + len, suffix, (size_t)s);
		len += (size_t)s;
	}
	line[len++] = '\n';
	write_line(line, len);
}

static void emit_json(const struct line *ln, const char *fmt, va_list ap)
{
	char msg[MSG_MAX], line[JSON_MAX], ts[96], head[192];
	struct jw w = { line, 0, sizeof line };

	int m = vsnprintf(msg, sizeof msg, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)m >= sizeof msg)
		m = (int)(sizeof msg - 1);
	stamp(ts, sizeof ts);
	int h = snprintf(head, sizeof head, "{\"time\":\"%s\",\"level\":\"%s\",\"core\":", ts,
	                 level_names[ln->lvl]);
	if (thread_core >= 0)
		h += snprintf(head + h, sizeof head - (size_t)h, "%d", thread_core);
	else
		h += snprintf(head + h, sizeof head - (size_t)h, "null");
	h += snprintf(head + h, sizeof head - (size_t)h, ",\"event\":");
	jw_raw(&w, head, (size_t)h);
	const char *ev = ln->event ? ln->event : "message";
	jw_str(&w, ev, strlen(ev));
	/* The message before the fields: a long field cuts itself, not it. */
	size_t mark = w.len;
	if (!jw_key(&w, "msg") || !jw_str(&w, msg, (size_t)m))
		w.len = mark;
	for (size_t i = 0; i < ln->nkv; i++) {
		mark = w.len;
		if (!jw_kv(&w, &ln->kv[i])) {
			w.len = mark;
			break;
		}
	}
	if (ln->suppressed) {
		struct log_kv s = LOG_UINT("suppressed", ln->suppressed);
		mark = w.len;
		if (!jw_kv(&w, &s))
			w.len = mark;
	}
	/* TAIL kept exactly this much room. */
	line[w.len++] = '}';
	line[w.len++] = '\n';
	write_line(line, w.len);
}

static void emit(const struct line *ln, const char *fmt, va_list ap)
{
	if (format == LOG_FORMAT_JSON)
		emit_json(ln, fmt, ap);
	else
		emit_text(ln, fmt, ap);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	struct line ln = { .lvl = lvl };
	va_list ap;
	va_start(ap, fmt);
	emit(&ln, fmt, ap);
	va_end(ap);
}

void log_event(enum log_level lvl, const char *event, const struct log_kv *kv,
               size_t nkv, const char *fmt, ...)
{
	struct line ln = { .lvl = lvl, .event = event, .kv = kv, .nkv = nkv };
	va_list ap;
	va_start(ap, fmt);
	emit(&ln, fmt, ap);
	va_end(ap);
}

bool log_limit_take(struct log_limit *l, uint64_t now_s, enum log_level lvl)
{
	if (lvl == LOG_DEBUG && !debug_on)
		return false;
	if (l->window_s != now_s) {
		l->window_s = now_s;
		l->used = 0;
	}
	if (l->used >= LOG_LIMIT_PER_SEC) {
		l->dropped++;
		return false;
	}
	l->used++;
	return true;
}

/* A line a limiter let through: it carries the count of those it held
 * back since the last one. */
static void emit_taken(struct log_limit *l, struct line *ln, const char *fmt, va_list ap)
{
	ln->suppressed = l->dropped;
	l->dropped = 0;
	emit(ln, fmt, ap);
}

void log_event_taken(struct log_limit *l, enum log_level lvl, const char *event,
                     const struct log_kv *kv, size_t nkv, const char *fmt, ...)
{
	struct line ln = { .lvl = lvl, .event = event, .kv = kv, .nkv = nkv };
	va_list ap;
	va_start(ap, fmt);
	emit_taken(l, &ln, fmt, ap);
	va_end(ap);
}

void log_limited(struct log_limit *l, uint64_t now_s, enum log_level lvl,
                 const char *fmt, ...)
{
	if (!log_limit_take(l, now_s, lvl))
		return;
	struct line ln = { .lvl = lvl };
	va_list ap;
	va_start(ap, fmt);
	emit_taken(l, &ln, fmt, ap);
	va_end(ap);
}

void log_event_limited(struct log_limit *l, uint64_t now_s, enum log_level lvl,
                       const char *event, const struct log_kv *kv, size_t nkv,
                       const char *fmt, ...)
{
	if (!log_limit_take(l, now_s, lvl))
		return;
	struct line ln = { .lvl = lvl, .event = event, .kv = kv, .nkv = nkv };
	va_list ap;
	va_start(ap, fmt);
	emit_taken(l, &ln, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *program, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (format == LOG_FORMAT_JSON) {
		struct line ln = { .lvl = LOG_ERROR, .event = "start_failed" };
		emit_json(&ln, fmt, ap);
	} else {
		char line[MSG_MAX];
		int n = snprintf(line, sizeof line, "%s: ", program);
		int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
		size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m;
		if (len > sizeof line - 1)
			len = sizeof line - 1;
		line[len++] = '\n';
		write_line(line, len);
	}
	va_end(ap);
}
