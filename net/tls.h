/*
 * tls.h - TLS in user space (OpenSSL) over the engine's own rings.
 *
 * The kernel here has no TLS offload, so a TLS connection keeps its
 * socket I/O on io_uring exactly like a plain one and hands the bytes to
 * OpenSSL through memory BIOs: received ciphertext goes in with
 * tls_feed(), plaintext comes out with tls_read(); plaintext to send goes
 * in with tls_write(), and the records (and handshake messages, alerts)
 * to put on the wire come out with tls_take().
 *
 * tls_ctx_* is called by main() only; tls_conn_new() by any core, beside
 * a tls_ctx_reload(). A struct tls_conn belongs to its connection's core
 * thread; pointers it returns are not kept.
 */
#ifndef NET001_TLS_H
#define NET001_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_ctx;
struct tls_conn;

/* Load a PEM certificate chain and private key; TLS 1.2 and newer.
 * Returns 0, or -EINVAL with one line (no newline) in err. */
int tls_ctx_new(const char *cert, const char *key, struct tls_ctx **out,
                char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);

/*
 * Load the files again (a renewed certificate): sessions started from now
 * on use them; sessions already open keep theirs. The previous context
 * comes back in *retired, for tls_ctx_retire() once no core can still be
 * starting a session from it (tls_conn_new on another thread). On failure
 * (-EINVAL, one line in err) nothing changes and *retired is NULL.
 */
struct tls_retired;
int tls_ctx_reload(struct tls_ctx *ctx, const char *cert, const char *key,
                   struct tls_retired **retired, char *err, size_t errlen);
void tls_ctx_retire(struct tls_retired *retired);
/* The certificate's notAfter for the log ("2027-03-01T00:00:00Z"). */
void tls_ctx_expiry(struct tls_ctx *ctx, char *buf, size_t len);

/* A server-side session. NULL when out of memory. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx);
void tls_conn_free(struct tls_conn *t);

/* Ciphertext from the peer. 0, or -ENOMEM. */
int tls_feed(struct tls_conn *t, const void *p, size_t n);
/* Up to cap bytes of plaintext: > 0 bytes, 0 when it needs more input,
 * -EPIPE after the peer's close_notify, -EPROTO on a TLS failure (an alert
 * for the peer may be waiting in tls_take). Drives the handshake. */
int tls_read(struct tls_conn *t, void *dst, size_t cap);
/* Encrypt all n bytes of plaintext. 0, or -EPROTO (session unusable). */
int tls_write(struct tls_conn *t, const void *p, size_t n);
/* Queue a close_notify alert (once; no-op before the handshake ends). */
void tls_close_notify(struct tls_conn *t);
/* Bytes waiting to go on the wire, and taking up to cap of them. */
size_t tls_pending(const struct tls_conn *t);
size_t tls_take(struct tls_conn *t, void *dst, size_t cap);
/* Whether the handshake finished. */
bool tls_ready(const struct tls_conn *t);

#endif
