/*
 * authdigest.h - the digest of an auth file line (PROTOCOL.md section 4,
 * "username:sha256hex(token)"): SHA-256 of a token in lower-case hex. The
 * one copy, used by the server's auth file loader (net/auth.c) and by
 * net001-cli hash-token.
 *
 * Not part of the codec: it is its own small library (libcrypto), linked
 * by the server and the CLI only, so libnet001 needs OpenSSL for TLS alone.
 *
 * Any thread; no state.
 */
#ifndef NET001_AUTHDIGEST_H
#define NET001_AUTHDIGEST_H

#include <stddef.h>

#define AUTHDIGEST_LEN     32 /* SHA-256 bytes */
#define AUTHDIGEST_HEX_LEN 64

/*
 * SHA-256 of token[0..len) as 64 lower-case hex digits and a NUL in out.
 * Returns 0, or -ENOMEM when libcrypto could not compute it (then out is
 * "", which no digest is).
 */
int authdigest_hex(const void *token, size_t len, char out[AUTHDIGEST_HEX_LEN + 1]);

#endif
