/*
 * http_req.h - the metrics exporter's HTTP/1.x request-head parser: pure
 * functions over the bytes received so far, apart from the socket code so
 * the unit tests and a fuzz target can drive them directly.
 *
 * Accepted: METHOD SP origin-form SP HTTP/1.0 or HTTP/1.1, header fields
 * without obs-fold, CRLF line ends only (a bare LF is malformed), Host
 * required for HTTP/1.1, at most one Host and one Content-Length (plain
 * decimal), no Transfer-Encoding. Empty lines before the request line are
 * skipped (RFC 9112 2.2).
 */
#ifndef NET001_HTTP_REQ_H
#define NET001_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

struct http_req {
	bool get;
	const char *path;        /* target up to '?', into the client's buffer */
	size_t path_len;
	int minor;               /* HTTP/1.minor */
	bool close;              /* the connection ends after this response */
	bool host;
	bool content_length;
};

/*
 * Parse the request head at b[0, len). Returns its length including the
 * final CRLF CRLF (*r filled), 0 if incomplete, -1 if malformed. The
 * answer is consistent as bytes arrive: every proper prefix of a head
 * that parses is incomplete (0), bytes after a head do not change its
 * answer, and once malformed, more bytes never make it otherwise. So a
 * client speaking something else (TLS, NET-001 frames) is refused at its
 * first impossible byte, not at the timeout.
 */
long http_req_parse(const char *b, size_t len, struct http_req *r);

#endif
