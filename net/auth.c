/*
 * auth.c - auth file loader and constant-time token check. See auth.h.
 *
 * The table is one allocation: a header and a power-of-two array of
 * entries, at most half full, probed linearly from FNV-1a(username). A
 * check allocates nothing of ours (EVP_Digest may use OpenSSL's own
 * scratch), and the SHA-256 implementation is fetched once per table, not
 * per call.
 */
#include "net/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errbuf.h"

struct auth_entry {
	uint64_t hash;
	uint32_t line;                  /* where it was defined, for duplicates */
	uint8_t name_len;               /* 0 = empty slot (names are 1..64) */
	uint8_t name[AUTH_USER_MAX];
	uint8_t digest[AUTH_DIGEST_LEN];
};

struct auth_table {
	EVP_MD *md;                     /* SHA-256, fetched once; thread-safe to share */
	size_t count;
	size_t mask;                    /* slots - 1 */
	uint8_t dummy[AUTH_DIGEST_LEN]; /* compared against for unknown users */
	struct auth_entry slots[];
};

static uint64_t name_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3u;
	}
	return h;
}

static const struct auth_entry *lookup(const struct auth_table *t,
                                       const uint8_t *user, size_t len)
{
	if (len == 0 || len > AUTH_USER_MAX)
		return NULL;
	uint64_t h = name_hash(user, len);
	/* At most half full, so an empty slot always ends the probe. */
	for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
		const struct auth_entry *e = &t->slots[i];
		if (e->name_len == 0)
			return NULL;
		if (e->hash == h && e->name_len == len && memcmp(e->name, user, len) == 0)
			return e;
	}
}

static int hex_value(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static const EVP_MD *sha256(const struct auth_table *t)
{
	return t && t->md ? t->md : EVP_sha256();
}

/* Growable list of parsed lines, turned into the table at the end. */
struct entry_list {
	struct auth_entry *v;
	size_t n, cap;
};

static int list_add(struct entry_list *l, const struct auth_entry *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct auth_entry *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *e;
	return 0;
}

/*
 * One line without its newline. Returns 1 with *e filled for a user line,
 * 0 for a blank or comment line, -EINVAL with err set for a bad line.
 */
static int parse_line(const char *path, unsigned lineno, char *p, size_t n,
                      struct auth_entry *e, char *err, size_t errlen)
{
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
		n--;
	while (n && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	if (n == 0 || *p == '#')
		return 0;

	const char *colon = memchr(p, ':', n);
	if (!colon) {
		errbuf_set(err, errlen, "%s:%u: expected 'username:sha256hex', no ':' found",
		           path, lineno);
		return -EINVAL;
	}
	size_t ulen = (size_t)(colon - p);
	if (ulen == 0) {
		errbuf_set(err, errlen, "%s:%u: empty username", path, lineno);
		return -EINVAL;
	}
	if (ulen > AUTH_USER_MAX) {
		errbuf_set(err, errlen, "%s:%u: username is %zu bytes, at most %d allowed",
		           path, lineno, ulen, AUTH_USER_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < ulen; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch < 0x20 || ch == 0x7f) {
			errbuf_set(err, errlen, "%s:%u: control character in username",
			           path, lineno);
			return -EINVAL;
		}
	}

	const char *hex = colon + 1;
	size_t hlen = n - ulen - 1;
	if (hlen != 2 * AUTH_DIGEST_LEN) {
		errbuf_set(err, errlen, "%s:%u: digest must be %d hex digits, found %zu characters",
		           path, lineno, 2 * AUTH_DIGEST_LEN, hlen);
		return -EINVAL;
	}
	for (size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
		int hi = hex_value((unsigned char)hex[2 * i]);
		int lo = hex_value((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			size_t col = (size_t)(hex - p) + 2 * i + (hi < 0 ? 0 : 1);
			errbuf_set(err, errlen, "%s:%u: digest has a non-hex character at "
			           "column %zu", path, lineno, col + 1);
			return -EINVAL;
		}
		e->digest[i] = (uint8_t)(hi << 4 | lo);
	}

	e->name_len = (uint8_t)ulen;
	memset(e->name, 0, sizeof e->name);
	memcpy(e->name, p, ulen);
	e->hash = name_hash(e->name, ulen);
	e->line = lineno;
	return 1;
}

static int read_file(const char *path, struct entry_list *l, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t got;
	int rc = 0;

	if (!f) {
		rc = -errno;
		errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	errno = 0;
	while ((got = getline(&line, &cap, f)) >= 0) {
		struct auth_entry e;
		size_t n = (size_t)got;

		char *p = line;

		lineno++;
		if (n && p[n - 1] == '\n')
			n--;
		/* Editors on some systems start a UTF-8 file with a BOM; it
		 * would otherwise become part of the first user's name. */
		if (lineno == 1 && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
			p += 3;
			n -= 3;
		}
		rc = parse_line(path, lineno, p, n, &e, err, errlen);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			rc = list_add(l, &e);
			if (rc < 0) {
				errbuf_set(err, errlen, "%s: out of memory", path);
				goto out;
			}
		}
		rc = 0;
		errno = 0;
	}
	if (ferror(f)) {
		/* A read error, or EISDIR: fopen accepts a directory. */
		int e = errno ? errno : EIO;
		rc = -e;
		errbuf_set(err, errlen, "%s: %s", path, strerror(e));
	}
out:
	free(line);
	fclose(f);
	return rc;
}

int auth_load(const char *path, struct auth_table **out, char *err, size_t errlen)
{
	struct entry_list l = { 0 };
	struct auth_table *t = NULL;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	rc = read_file(path, &l, err, errlen);
	if (rc)
		goto fail;

	size_t slots = 8;
	while (slots < 2 * l.n)
		slots *= 2;
	t = calloc(1, sizeof *t + slots * sizeof t->slots[0]);
	if (!t) {
		rc = -ENOMEM;
		errbuf_set(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	t->mask = slots - 1;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	/* An explicit fetch: EVP_sha256() would look the provider up again
	 * on every digest. */
	t->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!t->md) {
		rc = -ENOMEM;
		errbuf_set(err, errlen, "%s: SHA-256 unavailable in libcrypto", path);
		goto fail;
	}
#endif

	for (size_t k = 0; k < l.n; k++) {
		const struct auth_entry *e = &l.v[k];
		size_t i = (size_t)e->hash & t->mask;

		for (;; i = (i + 1) & t->mask) {
			struct auth_entry *s = &t->slots[i];
			if (s->name_len == 0) {
				*s = *e;
				t->count++;
				break;
			}
			if (s->hash == e->hash && s->name_len == e->name_len &&
			    memcmp(s->name, e->name, e->name_len) == 0) {
				errbuf_set(err, errlen, "%s:%u: duplicate user '%.*s' (first on line %u)",
				           path, e->line, (int)e->name_len, (const char *)e->name,
				           s->line);
				rc = -EINVAL;
				goto fail;
			}
		}
	}
	free(l.v);
	*out = t;
	return 0;

fail:
	auth_free(t);
	free(l.v);
	return rc;
}

bool auth_check(const struct auth_table *t, const uint8_t *user, size_t user_len,
                const uint8_t *token, size_t token_len)
{
	uint8_t got[EVP_MAX_MD_SIZE];
	unsigned got_len = 0;

	if (!t)
		return false;
	const struct auth_entry *e = lookup(t, user, user_len);
	const uint8_t *want = e ? e->digest : t->dummy;

	/* Hash and compare whether or not the user exists, so an unknown
	 * name costs the same as a wrong token. */
	int hashed = EVP_Digest(token, token_len, got, &got_len, sha256(t), NULL);
	int diff = CRYPTO_memcmp(got, want, AUTH_DIGEST_LEN);
	return (e != NULL) & (hashed == 1) & (got_len == AUTH_DIGEST_LEN) & (diff == 0);
}

size_t auth_count(const struct auth_table *t)
{
	return t ? t->count : 0;
}

void auth_free(struct auth_table *t)
{
	if (!t)
		return;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MD_free(t->md);
#endif
	OPENSSL_cleanse(t->slots, (t->mask + 1) * sizeof t->slots[0]);
	free(t);
}
