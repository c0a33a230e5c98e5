/*
 * tls_client.h - a blocking TLS client for the integration tests (OpenSSL,
 * no certificate check), and a self-signed certificate for the server.
 *
 * Test code. A struct tlsc is owned by the thread that made it until
 * tlsc_close(); the certificate files belong to the caller, who removes
 * them.
 */
#ifndef NET001_TEST_TLS_CLIENT_H
#define NET001_TEST_TLS_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* A P-256 key and a self-signed certificate for CN=localhost, written to
 * /tmp/net001-<tag>-<pid>.{crt,key}; the paths go to cert and key (64
 * bytes each). 0, or -1. */
int tlsc_make_cert(const char *tag, char *cert, char *key);

struct tlsc {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;   /* NULL when the handshake failed */
};

/* Connect to 127.0.0.1:port and finish the handshake; reads time out
 * after timeout_ms. Returns 0 (t->ssl set), or -1 with t->ssl NULL (the
 * socket stays open for tlsc_close). */
int tlsc_connect(struct tlsc *t, uint16_t port, int timeout_ms);
void tlsc_close(struct tlsc *t);
/* Whether the server showed the certificate in the PEM file cert_path. */
bool tlsc_peer_is(const struct tlsc *t, const char *cert_path);
/* Write all n bytes; 0, or -1 (error or send timeout). */
int tlsc_send(struct tlsc *t, const void *p, size_t n);
int tlsc_send_frame(struct tlsc *t, uint8_t type, const void *payload, size_t len);
/* One whole frame with a good CRC; false on close, error or timeout. */
bool tlsc_read_frame(struct tlsc *t, struct tc_frame *f);

#endif
