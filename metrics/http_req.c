/*
 * http_req.c - the request-head parser (http_req.h).
 */
#include "metrics/http_req.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return true;
	return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool name_is(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && strncasecmp(p, lit, n) == 0;
}

/* METHOD SP origin-form SP HTTP/1.x; the line excludes its CRLF. */
static bool parse_request_line(const char *p, size_t n, struct http_req *r)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ' ')
		return false;
	r->get = i == 3 && memcmp(p, "GET", 3) == 0;
	size_t t = ++i;
	while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
		i++;
	if (i == t || i >= n || p[i] != ' ' || p[t] != '/')
		return false;
	r->path = p + t;
	r->path_len = i - t;
	const char *q = memchr(r->path, '?', r->path_len);
	if (q)
		r->path_len = (size_t)(q - r->path);
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 ||
	    (p[i + 7] != '0' && p[i + 7] != '1'))
		return false;
	r->minor = p[i + 7] - '0';
	return true;
}

/* Whether the comma-separated list v[0, n) holds token tok. */
static bool list_has(const char *v, size_t n, const char *tok)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i > s && name_is(v + s, i - s, tok))
			return true;
	}
	return false;
}

/* name ":" OWS value OWS. Returns false for a malformed field. */
static bool parse_header(const char *p, size_t n, struct http_req *r)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	/* No whitespace between name and colon (RFC 9112 5.1), which also
	 * refuses obs-fold continuation lines. */
	if (i == 0 || i >= n || p[i] != ':')
		return false;
	const char *name = p;
	size_t name_len = i++;
	for (size_t k = i; k < n; k++) {
		unsigned char ch = (unsigned char)p[k];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	size_t end = n;
	while (end > i && (p[end - 1] == ' ' || p[end - 1] == '\t'))
		end--;
	const char *v = p + i;
	size_t vn = end - i;

	if (name_is(name, name_len, "host")) {
		if (r->host)
			return false;
		r->host = true;
	} else if (name_is(name, name_len, "content-length")) {
		/* One plain decimal, so no two parties can disagree on the
		 * framing. A body is never read: it is answered, then the
		 * connection closes (the lingering close swallows the body). */
		if (r->content_length || vn == 0)
			return false;
		for (size_t k = 0; k < vn; k++) {
			if (v[k] < '0' || v[k] > '9')
				return false;
			if (v[k] != '0')
				r->close = true;
		}
		r->content_length = true;
	} else if (name_is(name, name_len, "transfer-encoding")) {
		/* A body whose end we would have to decode: refuse. */
		return false;
	} else if (name_is(name, name_len, "connection")) {
		if (list_has(v, vn, "close"))
			r->close = true;
	}
	return true;
}

/* Whether an unfinished first line can still become a request line, so
 * a client speaking something else (TLS, NET-001 frames) is answered at
 * once instead of at the timeout. */
static bool partial_line_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '\r' || (ch >= 0x20 && ch < 0x7f))
			continue;
		return false;
	}
	size_t i = 0;
	while (i < n && p[i] == '\r')
		i++;
	return i == n || is_tchar((unsigned char)p[i]);
}

long http_req_parse(const char *b, size_t len, struct http_req *r)
{
	memset(r, 0, sizeof(*r));
	size_t pos = 0;
	bool have_line = false;
	for (;;) {
		const char *eol = memchr(b + pos, '\n', len - pos);
		if (!eol)
			return have_line || partial_line_ok(b + pos, len - pos) ? 0 : -1;
		size_t end = (size_t)(eol - b);
		if (end == pos || b[end - 1] != '\r')
			return -1;       /* bare LF */
		const char *line = b + pos;
		size_t n = end - 1 - pos;
		pos = end + 1;
		if (!have_line) {
			if (n == 0)
				continue;
			if (memchr(line, '\r', n) || !parse_request_line(line, n, r))
				return -1;
			have_line = true;
			continue;
		}
		if (n == 0)
			break;
		if (memchr(line, '\r', n) || !parse_header(line, n, r))
			return -1;
	}
	if (r->minor == 1 && !r->host)
		return -1;
	if (r->minor == 0)
		r->close = true;
	return (long)pos;
}
