/*
 * tls.c - see tls.h.
 */
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The context new sessions start from: swapped by tls_ctx_reload(); a
 * session keeps the one it started with (OpenSSL counts the references). */
struct tls_ctx {
	_Atomic(SSL_CTX *) ssl;
};

struct tls_conn {
	SSL *ssl;
	BIO *in;   /* ciphertext from the peer; owned by ssl */
	BIO *out;  /* ciphertext for the peer; owned by ssl */
	bool notified;
};

/* A server context with this certificate chain and key, or NULL with one
 * line in err. */
static SSL_CTX *load(const char *cert, const char *key, char *err, size_t errlen)
{
	char why[160] = "out of memory";
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (!c) {
		ERR_error_string_n(ERR_get_error(), why, sizeof why);
		snprintf(err, errlen, "TLS setup: %s", why);
		goto fail;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	/* Idle connections give their record buffers back. */
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
		ERR_error_string_n(ERR_get_error(), why, sizeof why);
		snprintf(err, errlen, "--cert %s: %s", cert, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
		ERR_error_string_n(ERR_get_error(), why, sizeof why);
		snprintf(err, errlen, "--key %s: %s", key, why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(c) != 1) {
		snprintf(err, errlen, "--key %s does not match --cert %s", key, cert);
		goto fail;
	}
	return c;

fail:
	ERR_clear_error();
	SSL_CTX_free(c);
	return NULL;
}

int tls_ctx_new(const char *cert, const char *key, struct tls_ctx **out,
                char *err, size_t errlen)
{
	*out = NULL;
	struct tls_ctx *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "TLS setup: out of memory");
		return -ENOMEM;
	}
	SSL_CTX *ssl = load(cert, key, err, errlen);
	if (!ssl) {
		free(c);
		return -EINVAL;
	}
	atomic_init(&c->ssl, ssl);
	*out = c;
	return 0;
}

int tls_ctx_reload(struct tls_ctx *ctx, const char *cert, const char *key,
                   struct tls_retired **retired, char *err, size_t errlen)
{
	*retired = NULL;
	SSL_CTX *ssl = load(cert, key, err, errlen);
	if (!ssl)
		return -EINVAL;
	*retired = (struct tls_retired *)atomic_exchange_explicit(&ctx->ssl, ssl,
	                                                          memory_order_acq_rel);
	return 0;
}

void tls_ctx_retire(struct tls_retired *retired)
{
	SSL_CTX_free((SSL_CTX *)retired);
}

void tls_ctx_expiry(struct tls_ctx *ctx, char *buf, size_t len)
{
	SSL_CTX *ssl = atomic_load_explicit(&ctx->ssl, memory_order_acquire);
	X509 *x = SSL_CTX_get0_certificate(ssl);
	struct tm tm;
	if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1 ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "unknown");
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(atomic_load(&ctx->ssl));
	free(ctx);
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx)
{
	struct tls_conn *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->ssl = SSL_new(atomic_load_explicit(&ctx->ssl, memory_order_acquire));
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->in || !t->out) {
		BIO_free(t->in);
		BIO_free(t->out);
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	/* An empty memory BIO means "try again", not end of file. */
	BIO_set_mem_eof_return(t->in, -1);
	BIO_set_mem_eof_return(t->out, -1);
	SSL_set_bio(t->ssl, t->in, t->out);
	SSL_set_accept_state(t->ssl);
	return t;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* frees both BIOs */
	free(t);
}

int tls_feed(struct tls_conn *t, const void *p, size_t n)
{
	while (n) {
		int k = BIO_write(t->in, p, n > INT_MAX ? INT_MAX : (int)n);
		if (k <= 0)
			return -ENOMEM;
		p = (const uint8_t *)p + k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * OpenSSL sends no alert for bytes that are not TLS at all (a plaintext
 * client, an HTTP request): the handshake just fails. Such a peer still
 * gets a fatal handshake_failure alert, in a plaintext record as every
 * alert before the handshake is, so it learns why it is closed.
 */
static void handshake_alert(struct tls_conn *t)
{
	static const uint8_t alert[] = {
		21,         /* content type: alert */
		3, 1,       /* record version TLS 1.0, as before a version is agreed */
		0, 2,       /* length */
		2, 40,      /* fatal, handshake_failure */
	};
	if (!SSL_is_init_finished(t->ssl) && BIO_ctrl_pending(t->out) == 0)
		BIO_write(t->out, alert, sizeof alert);
}

int tls_read(struct tls_conn *t, void *dst, size_t cap)
{
	int k = SSL_read(t->ssl, dst, cap > INT_MAX ? INT_MAX : (int)cap);
	if (k > 0)
		return k;
	switch (SSL_get_error(t->ssl, k)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -EPIPE;
	default:
		ERR_clear_error();
		handshake_alert(t);
		return -EPROTO;
	}
}

int tls_write(struct tls_conn *t, const void *p, size_t n)
{
	while (n) {
		int k = SSL_write(t->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
		if (k <= 0) {
			/* Memory BIOs never push back: anything else is fatal. */
			ERR_clear_error();
			return -EPROTO;
		}
		p = (const uint8_t *)p + k;
		n -= (size_t)k;
	}
	return 0;
}

void tls_close_notify(struct tls_conn *t)
{
	if (t->notified || !SSL_is_init_finished(t->ssl))
		return;
	t->notified = true;
	SSL_shutdown(t->ssl);
	ERR_clear_error();
}

size_t tls_pending(const struct tls_conn *t)
{
	return BIO_ctrl_pending(t->out);
}

size_t tls_take(struct tls_conn *t, void *dst, size_t cap)
{
	int k = BIO_read(t->out, dst, cap > INT_MAX ? INT_MAX : (int)cap);
	return k > 0 ? (size_t)k : 0;
}

bool tls_ready(const struct tls_conn *t)
{
	return SSL_is_init_finished(t->ssl);
}
