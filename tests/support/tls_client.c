/*
 * tls_client.c - see tls_client.h.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "proto/frame.h"
#include "tls_client.h"

int tlsc_make_cert(const char *tag, char *cert, char *key)
{
	int r = -1;
	snprintf(cert, 64, "/tmp/net001-%s-%d.crt", tag, (int)getpid());
	snprintf(key, 64, "/tmp/net001-%s-%d.key", tag, (int)getpid());
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	if (!pkey || !x)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
	                           -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto out;
	FILE *f = fopen(cert, "w");
	if (!f)
		goto out;
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key, "w");
	if (!f)
		goto out;
	PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	r = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pkey);
	return r;
}

int tlsc_connect(struct tlsc *t, uint16_t port, int timeout_ms)
{
	t->fd = tc_connect(port);
	t->ctx = SSL_CTX_new(TLS_client_method());
	t->ssl = NULL;
	if (t->fd < 0 || !t->ctx)
		return -1;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl)
		return -1;
	SSL_set_fd(t->ssl, t->fd);
	if (SSL_connect(t->ssl) != 1) {
		ERR_clear_error();
		SSL_free(t->ssl);
		t->ssl = NULL;
		return -1;
	}
	return 0;
}

bool tlsc_peer_is(const struct tlsc *t, const char *cert_path)
{
	FILE *f = fopen(cert_path, "r");
	X509 *want = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	X509 *got = t->ssl ? SSL_get1_peer_certificate(t->ssl) : NULL;
	bool same = want && got && X509_cmp(want, got) == 0;
	if (f)
		fclose(f);
	X509_free(want);
	X509_free(got);
	return same;
}

void tlsc_close(struct tlsc *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	t->ssl = NULL;
	t->ctx = NULL;
	t->fd = -1;
}

int tlsc_send(struct tlsc *t, const void *p, size_t n)
{
	if (SSL_write(t->ssl, p, (int)n) != (int)n) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int tlsc_send_frame(struct tlsc *t, uint8_t type, const void *payload, size_t len)
{
	uint8_t *buf = malloc(FRAME_OVERHEAD + len);
	if (!buf)
		return -1;
	size_t n = frame_encode(buf, type, payload, (uint16_t)len);
	int r = tlsc_send(t, buf, n);
	free(buf);
	return r;
}

/* Exactly n bytes; false on close, error or timeout. */
static bool read_full(struct tlsc *t, uint8_t *p, size_t n)
{
	while (n) {
		int k = SSL_read(t->ssl, p, (int)n);
		if (k <= 0) {
			ERR_clear_error();
			return false;
		}
		p += k;
		n -= (size_t)k;
	}
	return true;
}

bool tlsc_read_frame(struct tlsc *t, struct tc_frame *f)
{
	uint8_t hdr[8], crc[4];
	if (!read_full(t, hdr, 8) || frame_get_u32(hdr) != FRAME_MAGIC)
		return false;
	f->type = hdr[5];
	f->len = frame_get_u16(hdr + 6);
	if (!read_full(t, f->payload, f->len) || !read_full(t, crc, 4))
		return false;
	return frame_crc(frame_crc(0, hdr, 8), f->payload, f->len) == frame_get_u32(crc);
}
