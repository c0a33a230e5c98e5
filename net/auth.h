/*
 * auth.h - the auth file and token checks (PROTOCOL.md section 4).
 *
 * File format: each line that is not blank and does not start with '#'
 * (after optional leading spaces or tabs) is
 *
 *     username:sha256hex(token)
 *
 * username is 1..64 bytes with no ':' and no control characters (the bytes
 * between the leading spaces and the first ':', taken as they are); the
 * digest is 64 hex digits, either case. Trailing spaces, tabs and a CR
 * (CRLF files) are ignored, as is a UTF-8 byte-order mark at the start of
 * the file. A user listed twice is an error. A file with no
 * users loads (every AUTH then fails). The digest of a token for such a
 * line: authdigest_hex() (proto/authdigest.h, also net001-cli hash-token).
 *
 * Threads: auth_load and auth_free from one thread (main, or the SIGHUP
 * reloader, which swaps in a new table and frees the old one only once no
 * worker can still hold it). A loaded table is immutable: any number of
 * threads may call auth_check/auth_count on it at once. auth_check keeps
 * no pointer to its arguments.
 */
#ifndef NET001_AUTH_H
#define NET001_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_USER_MAX   64
#define AUTH_DIGEST_LEN 32

struct auth_table;

/*
 * Load path into a new table (*out, owned by the caller until auth_free).
 * Returns 0; -errno when the file cannot be read; -EINVAL for a bad line;
 * -ENOMEM. On error *out is NULL and err holds one line (no newline)
 * naming the file and, for a bad line, its number: "FILE:LINE: what".
 */
int auth_load(const char *path, struct auth_table **out, char *err, size_t errlen);

/*
 * True if user is in the table and SHA-256(token) equals its digest. The
 * token is always hashed and a 32-byte digest always compared in constant
 * time (CRYPTO_memcmp), against a dummy for an unknown user, so the time
 * taken does not reveal how much of the digest matched. A NULL table
 * (authentication off) refuses everyone.
 */
bool auth_check(const struct auth_table *t, const uint8_t *user, size_t user_len,
                const uint8_t *token, size_t token_len);

/* Number of users; 0 for NULL. */
size_t auth_count(const struct auth_table *t);

/* Frees the table; NULL is fine. */
void auth_free(struct auth_table *t);


#endif
