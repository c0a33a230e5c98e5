/*
 * auth tests: the file format (comments, blank lines, CRLF, every kind of
 * bad line), token checks, SHA-256 against published digests, a large
 * table, and concurrent readers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/auth.h"
#include "proto/authdigest.h"

/* SHA-256 digests computed independently (sha256sum; FIPS 180-2 for "abc"). */
#define SHA_S3CRET  "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"
#define SHA_HUNTER2 "f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7"
#define SHA_EMPTY   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_HUNTER2_UPPER "F52FBD32B2B3B86FF88EF6C490628285F482AF15DDCB29541F94BCF526A3F6C7"

static char path[64];

static void cleanup(void)
{
	if (path[0])
		unlink(path);
	path[0] = '\0';
}

/* One temporary file per test at a time: the previous one is removed. */
static void write_file(const char *content, size_t len)
{
	cleanup();
	strcpy(path, "/tmp/net001-auth-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, content, len), (ssize_t)len);
	close(fd);
}

TestSuite(auth, .fini = cleanup);

static bool check(const struct auth_table *t, const char *user, const char *token)
{
	return auth_check(t, (const uint8_t *)user, strlen(user),
	                  (const uint8_t *)token, strlen(token));
}

static struct auth_table *load_ok(const char *content)
{
	struct auth_table *t = NULL;
	char err[256] = "";
	write_file(content, strlen(content));
	int rc = auth_load(path, &t, err, sizeof err);
	cr_assert_eq(rc, 0, "auth_load: %d %s", rc, err);
	cr_assert_not_null(t);
	return t;
}

/* A load that must fail with rc and a one-line message naming the file,
 * the line (if line > 0) and containing want. */
static void load_bad(const char *content, size_t len, int want_rc, unsigned line,
                     const char *want)
{
	struct auth_table *t = (struct auth_table *)(uintptr_t)1;
	char err[256], where[96];

	write_file(content, len);
	int rc = auth_load(path, &t, err, sizeof err);
	cr_assert_eq(rc, want_rc, "rc %d, want %d (%s)", rc, want_rc, err);
	cr_assert_null(t, "*out must be NULL after an error");
	cr_assert_null(strchr(err, '\n'), "message has a newline: %s", err);
	if (line)
		snprintf(where, sizeof where, "%s:%u: ", path, line);
	else
		snprintf(where, sizeof where, "%s", path);
	cr_assert_not_null(strstr(err, where), "message '%s' lacks '%s'", err, where);
	cr_assert_not_null(strstr(err, want), "message '%s' lacks '%s'", err, want);
}

#define LOAD_BAD(content, line, want) \
	load_bad(content, strlen(content), -EINVAL, line, want)

Test(auth, hash_hex_known_digests)
{
	char out[AUTHDIGEST_HEX_LEN + 1];
	cr_assert_eq(authdigest_hex("s3cret", 6, out), 0);
	cr_assert_str_eq(out, SHA_S3CRET);
	cr_assert_eq(authdigest_hex("hunter2", 7, out), 0);
	cr_assert_str_eq(out, SHA_HUNTER2);
	cr_assert_eq(authdigest_hex("", 0, out), 0);
	cr_assert_str_eq(out, SHA_EMPTY);
	cr_assert_eq(authdigest_hex("abc", 3, out), 0);
	cr_assert_str_eq(out, SHA_ABC);
}

Test(auth, good_file)
{
	struct auth_table *t = load_ok("alice:" SHA_S3CRET "\n"
	                               "bob:" SHA_HUNTER2_UPPER "\n");
	cr_assert_eq(auth_count(t), 2);

	cr_assert(check(t, "alice", "s3cret"));
	cr_assert(check(t, "bob", "hunter2"), "upper-case hex must load");

	cr_assert_not(check(t, "alice", "hunter2"), "another user's token");
	cr_assert_not(check(t, "bob", "s3cret"));
	cr_assert_not(check(t, "alice", "s3cre"), "prefix of the token");
	cr_assert_not(check(t, "alice", "s3cret "), "token plus a byte");
	cr_assert_not(check(t, "alice", "S3CRET"));
	cr_assert_not(check(t, "carol", "s3cret"), "unknown user");
	cr_assert_not(check(t, "alic", "s3cret"), "prefix of a user");
	cr_assert_not(check(t, "Alice", "s3cret"), "names are case-sensitive");
	cr_assert_not(auth_check(t, (const uint8_t *)"alice\0", 6,
	                         (const uint8_t *)"s3cret", 6), "name plus NUL");
	cr_assert_not(auth_check(t, (const uint8_t *)"", 0,
	                         (const uint8_t *)"s3cret", 6), "empty name");
	auth_free(t);
}

Test(auth, comments_blank_lines_and_spaces)
{
	struct auth_table *t = load_ok("# users of the test server\n"
	                               "\n"
	                               "   \n"
	                               "\t\n"
	                               "   # indented comment\n"
	                               "  alice:" SHA_S3CRET "\n"
	                               "\tbob:" SHA_HUNTER2 "   \t\n"
	                               "#carol:" SHA_ABC "\n"
	                               "\n");
	cr_assert_eq(auth_count(t), 2);
	cr_assert(check(t, "alice", "s3cret"), "leading spaces are not part of the name");
	cr_assert(check(t, "bob", "hunter2"), "trailing blanks are ignored");
	cr_assert_not(check(t, "#carol", "abc"), "commented-out user");
	cr_assert_not(check(t, "carol", "abc"));
	auth_free(t);
}

Test(auth, crlf_and_no_final_newline)
{
	struct auth_table *t = load_ok("# windows file\r\n"
	                               "\r\n"
	                               "alice:" SHA_S3CRET "\r\n"
	                               "bob:" SHA_HUNTER2 "  \r\n"
	                               "abc:" SHA_ABC);
	cr_assert_eq(auth_count(t), 3);
	cr_assert(check(t, "alice", "s3cret"));
	cr_assert(check(t, "bob", "hunter2"));
	cr_assert(check(t, "abc", "abc"), "last line without a newline");
	auth_free(t);
}

Test(auth, utf8_bom)
{
	struct auth_table *t = load_ok("\xef\xbb\xbf" "alice:" SHA_S3CRET "\r\n"
	                               "bob:" SHA_HUNTER2 "\r\n");
	cr_assert_eq(auth_count(t), 2);
	cr_assert(check(t, "alice", "s3cret"), "the BOM is not part of the name");
	auth_free(t);
	/* Only at the start of the file: later, the bytes are the name's. */
	t = load_ok("alice:" SHA_S3CRET "\n\xef\xbb\xbf" "bob:" SHA_HUNTER2 "\n");
	cr_assert_not(check(t, "bob", "hunter2"));
	cr_assert(check(t, "\xef\xbb\xbf" "bob", "hunter2"));
	auth_free(t);
}

Test(auth, name_limits_and_odd_bytes)
{
	char name64[65], content[512];
	memset(name64, 'n', 64);
	name64[64] = '\0';
	snprintf(content, sizeof content,
	         "%s:" SHA_S3CRET "\n"
	         "a:" SHA_ABC "\n"
	         "j\xc3\xbcrgen:" SHA_HUNTER2 "\n"    /* UTF-8 */
	         "with space:" SHA_EMPTY "\n", name64);
	struct auth_table *t = load_ok(content);
	cr_assert_eq(auth_count(t), 4);
	cr_assert(check(t, name64, "s3cret"), "64-byte name");
	cr_assert(check(t, "a", "abc"), "1-byte name");
	cr_assert(check(t, "j\xc3\xbcrgen", "hunter2"));
	cr_assert(check(t, "with space", ""), "empty token hashes too");
	/* 65-byte name can never match. */
	char name65[66];
	memset(name65, 'n', 65);
	name65[65] = '\0';
	cr_assert_not(check(t, name65, "s3cret"));
	auth_free(t);
}

Test(auth, empty_file)
{
	struct auth_table *t = load_ok("# nobody yet\n\n");
	cr_assert_eq(auth_count(t), 0);
	cr_assert_not(check(t, "alice", "s3cret"));
	auth_free(t);
}

Test(auth, null_table_refuses)
{
	cr_assert_not(check(NULL, "alice", "s3cret"));
	cr_assert_eq(auth_count(NULL), 0);
	auth_free(NULL);
}

Test(auth, bad_hex)
{
	LOAD_BAD("alice:" SHA_S3CRET "\n"
	         "bob:f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6cg\n",
	         2, "non-hex character at column 68");
	LOAD_BAD("bob:x52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7\n",
	         1, "non-hex character at column 5");
	LOAD_BAD("bob:f52fbd32b2b3b86ff88ef6c490628285 482af15ddcb29541f94bcf526a3f6c7\n",
	         1, "non-hex");
}

Test(auth, short_and_long_hex)
{
	LOAD_BAD("\n\nalice:1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba\n",
	         3, "64 hex digits, found 63");
	LOAD_BAD("alice:" SHA_S3CRET "0\n", 1, "64 hex digits, found 65");
	LOAD_BAD("alice:\n", 1, "found 0");
	LOAD_BAD("alice:" SHA_S3CRET " # note\n", 1, "64 hex digits");
	LOAD_BAD("alice: " SHA_S3CRET "\n", 1, "64 hex digits");
	LOAD_BAD("alice:" SHA_S3CRET ":" SHA_S3CRET "\n", 1, "64 hex digits");
}

Test(auth, missing_colon)
{
	LOAD_BAD("# header\nalice " SHA_S3CRET "\n", 2, "no ':'");
	LOAD_BAD("alice\n", 1, "no ':'");
}

Test(auth, empty_username)
{
	LOAD_BAD(":" SHA_S3CRET "\n", 1, "empty username");
	LOAD_BAD("   :" SHA_S3CRET "\n", 1, "empty username");
}

Test(auth, username_65_bytes)
{
	char content[256], name[66];
	memset(name, 'n', 65);
	name[65] = '\0';
	snprintf(content, sizeof content, "ok:" SHA_ABC "\n%s:" SHA_S3CRET "\n", name);
	LOAD_BAD(content, 2, "username is 65 bytes, at most 64");
}

Test(auth, control_character_in_name)
{
	LOAD_BAD("al\x01ice:" SHA_S3CRET "\n", 1, "control character");
	/* An embedded NUL does not cut the line short. */
	static const char nul[] = "al\0ice:" SHA_S3CRET "\n";
	load_bad(nul, sizeof nul - 1, -EINVAL, 1, "control character");
}

Test(auth, duplicate_user)
{
	LOAD_BAD("alice:" SHA_S3CRET "\n"
	         "bob:" SHA_HUNTER2 "\n"
	         "alice:" SHA_ABC "\n",
	         3, "duplicate user 'alice' (first on line 1)");
}

Test(auth, missing_file)
{
	struct auth_table *t = (struct auth_table *)(uintptr_t)1;
	char err[256];
	cr_assert_eq(auth_load("/nonexistent/net001-users", &t, err, sizeof err), -ENOENT);
	cr_assert_null(t);
	cr_assert_str_eq(err, "/nonexistent/net001-users: No such file or directory");
}

Test(auth, directory)
{
	struct auth_table *t = NULL;
	char err[256];
	cr_assert_eq(auth_load("/tmp", &t, err, sizeof err), -EISDIR);
	cr_assert_null(t);
	cr_assert_not_null(strstr(err, "/tmp: "), "%s", err);
}

Test(auth, null_error_buffer)
{
	struct auth_table *t = NULL;
	write_file(":x\n", 3);
	cr_assert_eq(auth_load(path, &t, NULL, 0), -EINVAL);
	cr_assert_null(t);
}

/* Enough users that the table grows several times and probes collide. */
#define MANY 5000

static struct auth_table *load_many(void)
{
	size_t cap = (size_t)MANY * 100, n = 0;
	char *content = malloc(cap);
	cr_assert_not_null(content);
	for (int i = 0; i < MANY; i++) {
		char user[32], token[32], hex[65];
		snprintf(user, sizeof user, "user%d", i);
		snprintf(token, sizeof token, "token-%d", i * 7919);
		cr_assert_eq(authdigest_hex(token, strlen(token), hex), 0);
		n += (size_t)snprintf(content + n, cap - n, "%s:%s\n", user, hex);
	}
	struct auth_table *t = load_ok(content);
	free(content);
	cr_assert_eq(auth_count(t), MANY);
	return t;
}

Test(auth, many_users)
{
	struct auth_table *t = load_many();
	for (int i = 0; i < MANY; i++) {
		char user[32], token[32];
		snprintf(user, sizeof user, "user%d", i);
		snprintf(token, sizeof token, "token-%d", i * 7919);
		cr_assert(check(t, user, token), "%s", user);
		snprintf(token, sizeof token, "token-%d", i * 7919 + 1);
		cr_assert_not(check(t, user, token), "%s with a wrong token", user);
		snprintf(user, sizeof user, "user%d", i + MANY);
		cr_assert_not(check(t, user, token), "%s unknown", user);
	}
	auth_free(t);
}

struct reader {
	const struct auth_table *t;
	int first;
	int ok, bad;
};

static void *read_many(void *arg)
{
	struct reader *r = arg;
	for (int k = 0; k < 4000; k++) {
		int i = (r->first + k) % MANY;
		char user[32], token[32];
		snprintf(user, sizeof user, "user%d", i);
		snprintf(token, sizeof token, "token-%d", i * 7919 + (k & 1));
		if (check(r->t, user, token) == !(k & 1))
			r->ok++;
		else
			r->bad++;
	}
	return NULL;
}

Test(auth, concurrent_readers)
{
	struct auth_table *t = load_many();
	pthread_t th[4];
	struct reader r[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){ .t = t, .first = i * 1000 };
		cr_assert_eq(pthread_create(&th[i], NULL, read_many, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(r[i].bad, 0, "thread %d: %d wrong answers", i, r[i].bad);
		cr_assert_eq(r[i].ok, 4000);
	}
	auth_free(t);
}
