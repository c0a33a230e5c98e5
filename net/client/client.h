/*
 * client.h - libnet001: a blocking NET-001 client (one TCP connection).
 *
 * For tools, tests and the bench, not for the server's hot path: plain
 * sockets, poll() for timeouts, one request in flight at a time.
 *
 * Threads: a struct n1c belongs to one thread at a time; different clients
 * may be used by different threads at once (there is no global state).
 *
 * Errors: every function returning int returns >= 0 on success or a
 * negative code: one of enum n1c_err below, or -errno from a system call
 * (-EINTR when a signal interrupts a wait, -ENOMEM, ...). n1c_strerror()
 * names any of them.
 *
 * Lifetimes: the struct n1c is owned by the caller from n1c_connect() until
 * n1c_close(). A struct n1c_frame filled by n1c_recv() or n1c_echo(), and
 * the text from n1c_server_error(), point into the client's own memory and
 * are valid only until the next call on that client that does I/O (any
 * n1c_* call except n1c_server_error(), n1c_dropped(), n1c_fd() and
 * n1c_set_timeout()).
 *
 * Frames that are not the answer a request waits for (a BROADCAST arriving
 * while n1c_ping() waits for its PONG, an ERROR caused by an earlier
 * n1c_broadcast() or n1c_data()) are copied into a per-client queue of at
 * most N1C_QUEUE_MAX frames and returned, in arrival order, by the next
 * n1c_recv() calls. When the queue is full the oldest frame is dropped and
 * counted (n1c_dropped()).
 *
 * Which ERROR belongs to which frame: the server answers in order, and an
 * ERROR replaces the answer of the frame it is about. BROADCAST and DATA
 * have no answer, so an ERROR for them (AUTH_REQUIRED, RATE_LIMITED) can
 * arrive while a later request waits. While BROADCAST or DATA frames sent
 * since the last answer are outstanding, one such ERROR per outstanding
 * frame is taken as theirs and queued; any further ERROR is the request's
 * own answer and fails it with N1C_ESERVER. An ERROR whose code closes the
 * connection always fails the waiting call at once.
 *
 * Late answers: a request that gives up (timeout, signal) may still get
 * its answer later. The client remembers that, and the next answer of that
 * type which does not match a request (a PONG with another timestamp, an
 * ECHO_REPLY with another payload, and the first AUTH_REPLY) is dropped.
 */
#ifndef NET001_CLIENT_H
#define NET001_CLIENT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/msg.h"

/* Frames kept for n1c_recv() while a request waits for its answer. */
#define N1C_QUEUE_MAX 64

/*
 * Client error codes. The ones that have a natural errno use it, so a
 * caller that only knows -errno still reads them right; the others lie
 * below every errno value.
 */
enum n1c_err {
	N1C_ETIMEOUT       = -ETIMEDOUT,    /* no answer (or no connect) in time */
	N1C_ECLOSED        = -ECONNRESET,   /* peer closed: EOF, reset, broken pipe */
	N1C_EREFUSED       = -ECONNREFUSED, /* nothing listens at host:port */
	N1C_EPROTO         = -EPROTO,       /* bad frame (magic, version, CRC) or a
	                                       reply that does not fit the request */
	N1C_ETOOBIG        = -EMSGSIZE,     /* payload above 65535 bytes, or AUTH
	                                       user/token above 64/256 bytes */
	N1C_EINVAL         = -EINVAL,       /* bad argument (empty user, port 0 ...) */
	N1C_ERESOLVE       = -1001,         /* host name not known */
	N1C_ERESOLVE_AGAIN = -1002,         /* name lookup failed for now (DNS down) */
	N1C_ESERVER        = -1003,         /* the server sent an ERROR frame:
	                                       see n1c_server_error() */
	N1C_ETLS           = -1004,         /* TLS handshake or record failure
	                                       (certificate not trusted, ...) */
};

/* One connection. Opaque; see the lifetime rules above. */
struct n1c;

/* A received frame: type and a view of its payload (lifetime above). */
struct n1c_frame {
	const uint8_t *payload;
	uint16_t len;
	uint8_t type; /* enum frame_type */
};

/*
 * Resolve host (a name, or an IPv4 or IPv6 literal) and connect to port,
 * trying each address in turn, all within timeout_ms (the name lookup
 * itself is not bounded by it). The socket gets TCP_NODELAY. timeout_ms
 * (> 0, or -1 for none) also becomes the default time a request waits for
 * its answer (n1c_set_timeout()).
 *
 * Returns 0 and *out, or N1C_ERESOLVE, N1C_ERESOLVE_AGAIN, N1C_EREFUSED,
 * N1C_ETIMEOUT, N1C_EINVAL or another -errno (-ENETUNREACH ...) from the
 * last address tried, with *out = NULL.
 */
int n1c_connect(struct n1c **out, const char *host, uint16_t port, int timeout_ms);

/*
 * Turn a fresh connection (nothing sent yet) into TLS 1.2+: the handshake
 * runs within the client's timeout. The server's certificate is checked
 * against the CAs in ca_file (PEM), or the system's store when ca_file is
 * NULL, and against host when host is not NULL; verify false skips every
 * check (encryption without authentication: for tests only). From then on
 * every call works as before, over TLS. Returns 0, N1C_ETLS, N1C_ETIMEOUT
 * or N1C_ECLOSED; on failure the connection is unusable.
 */
int n1c_start_tls(struct n1c *c, const char *host, const char *ca_file, bool verify);

/* Close the socket (after a TLS close_notify) and free everything. NULL is
 * allowed. */
void n1c_close(struct n1c *c);

/* How long requests wait for an answer: ms > 0, or -1 for ever. */
void n1c_set_timeout(struct n1c *c, int timeout_ms);

/* The connected socket (for poll() by the caller); -1 once broken. */
int n1c_fd(const struct n1c *c);

/*
 * PING with the current CLOCK_MONOTONIC time in ns as its u64 payload; wait
 * for the PONG carrying it. Returns 0 with *rtt_ns (may be NULL) set, or
 * an error. A PONG with another payload, unless a late one is expected, is
 * N1C_EPROTO.
 */
int n1c_ping(struct n1c *c, uint64_t *rtt_ns);

/*
 * ECHO the payload p[0..len) and wait for the ECHO_REPLY, which must be
 * identical (else N1C_EPROTO). reply (may be NULL) gets a view of it.
 */
int n1c_echo(struct n1c *c, const void *p, size_t len, struct n1c_frame *reply);

/*
 * AUTH as user with token (C strings; 1..64 and 1..256 bytes). Returns 0
 * with *ok the server's verdict and session (may be NULL) its 16-byte
 * session id (zeros on failure). A refused AUTH is not an error: it is
 * 0 with *ok false.
 */
int n1c_auth(struct n1c *c, const char *user, const char *token, bool *ok,
             uint8_t session[MSG_SESSION_ID_LEN]);

/* Send BROADCAST / DATA with payload p[0..len). No answer is awaited. */
int n1c_broadcast(struct n1c *c, const void *p, size_t len);
int n1c_data(struct n1c *c, const void *p, size_t len);

/*
 * Send any frame type as is (tests, the bench's pipelined load). A frame
 * sent this way is not tracked as a request: read its answer with
 * n1c_recv(). Returns 0 or an error; N1C_ETOOBIG above 65535 bytes.
 */
int n1c_send(struct n1c *c, uint8_t type, const void *p, size_t len);

/*
 * Round trip that proves every frame sent before it was handled: a PING,
 * waited for like n1c_ping(); 0 when its PONG arrives with no ERROR before
 * it. An ERROR arriving first (for an earlier BROADCAST or DATA, or for
 * the PING) returns N1C_ESERVER at once with that error, which is not
 * queued; ERRORs for the other earlier frames, if any, arrive later and
 * are queued, and the PONG, if it comes, is dropped as a late answer.
 */
int n1c_sync(struct n1c *c);

/*
 * The next frame: the oldest queued one, else the next from the socket,
 * waiting up to timeout_ms (0: do not wait; -1: for ever). Returns 0 with
 * *f set (lifetime above), N1C_ETIMEOUT, or an error. Every frame type is
 * returned, ERROR included (as type FRAME_ERROR, not as N1C_ESERVER; its
 * code and text are also available from n1c_server_error()), except late
 * answers the client was told to expect and drops.
 */
int n1c_recv(struct n1c *c, int timeout_ms, struct n1c_frame *f);

/*
 * The last ERROR frame received: returns its code (0 if none) and sets
 * *text (may be NULL) to its message, NUL-terminated, truncated to 255
 * bytes. Valid until the next ERROR is received or n1c_close().
 */
unsigned n1c_server_error(const struct n1c *c, const char **text);

/* Frames dropped from a full queue since the connection was made. */
uint64_t n1c_dropped(const struct n1c *c);

/*
 * A constant English message for any code returned above (an enum n1c_err
 * or -errno); never NULL. Thread-safe.
 */
const char *n1c_strerror(int err);

#endif
