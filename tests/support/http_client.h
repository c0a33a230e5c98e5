/*
 * http_client.h - a tiny blocking HTTP/1.1 client for tests of the metrics
 * endpoint: one loopback connection at a time, Content-Length framed
 * responses, pipelining through the connection's read buffer.
 *
 * Test code; a struct http_conn belongs to one thread. Everything it
 * returns is owned by the caller: free a struct http_resp with
 * http_resp_free(), a struct http_conn with http_conn_close().
 */
#ifndef NET001_TEST_HTTP_CLIENT_H
#define NET001_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A blocking loopback connection with a 10 s receive timeout and a buffer
 * for bytes read past one response. */
struct http_conn {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
};
int http_conn_open(struct http_conn *c, uint16_t port);
/* The same with SO_RCVBUF set to rcvbuf (0: default) before connecting. */
int http_conn_open_rcvbuf(struct http_conn *c, uint16_t port, int rcvbuf);
void http_conn_close(struct http_conn *c);
/* Write all of s. Returns 0 or -errno. */
int http_conn_send(struct http_conn *c, const char *s, size_t n);

struct http_resp {
	int status;          /* -1 if no complete response arrived */
	char *head;          /* status line and headers, NUL-terminated */
	char *body;          /* Content-Length bytes, NUL-terminated */
	size_t body_len;
};
/* Read one response (Content-Length framed). Returns 0, or -1 on EOF or
 * error before it was complete. */
int http_read_response(struct http_conn *c, struct http_resp *r);
void http_resp_free(struct http_resp *r);
/* Value of header name (case-insensitive) copied into dst; false if absent. */
bool http_resp_header(const struct http_resp *r, const char *name, char *dst,
                      size_t cap);

/* True when the peer has closed: recv returns 0 or a reset (waits up to
 * the receive timeout). Bytes still unread are skipped. */
bool http_conn_wait_eof(struct http_conn *c);

/*
 * Send raw[0, len) (a whole request, or bytes that are not one) on a
 * fresh connection and read one response. With closed non-NULL, *closed
 * says whether the server then closed the connection. Returns the status,
 * -1 on failure.
 */
int http_request(uint16_t port, const void *raw, size_t len, struct http_resp *r,
                 bool *closed);

/* One request on a fresh connection: METHOD path HTTP/1.1 with Host and
 * Connection: close; after the response, waits for the server to close
 * (up to the receive timeout) like any client that asked for that.
 * Returns the status, -1 on failure. */
int http_method(uint16_t port, const char *method, const char *path,
                struct http_resp *r);

/* http_method() with GET. */
int http_get(uint16_t port, const char *path, struct http_resp *r);

/* GET /metrics: the body (malloc'd, NUL-terminated; the caller frees it),
 * or NULL unless a 200 came. */
char *http_scrape(uint16_t port);

#endif
