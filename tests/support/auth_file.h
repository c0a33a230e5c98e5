/*
 * auth_file.h - auth files for tests (PROTOCOL.md section 4): known users
 * whose digests were computed apart from the code under test (Python's
 * hashlib.sha256), written to a per-process path under /tmp.
 *
 * Test code. A struct auth_file belongs to its test; nothing else keeps a
 * pointer to it.
 */
#ifndef NET001_TEST_AUTH_FILE_H
#define NET001_TEST_AUTH_FILE_H

#define AUTH_ALICE_TOKEN "s3cret"
#define AUTH_ALICE_HEX   "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"
#define AUTH_BOB_TOKEN   "hunter2"
#define AUTH_BOB_HEX     "f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7"

/* A NULL-terminated list of user, digest pairs. */
#define AUTH_USERS(...) ((const char *const[]){ __VA_ARGS__, NULL })

struct auth_file {
	char path[96]; /* "" until written */
};

/*
 * Write "# test users" and a line "user:digest" for each pair of users
 * (AUTH_USERS("alice", AUTH_ALICE_HEX, ...)) to /tmp/net001-auth-TAG-PID.
 * The file is replaced in one step (written aside, then renamed), so a
 * server reloading it on SIGHUP never reads half of it; writing again with
 * the same tag replaces it. Returns f->path, or NULL after printing why.
 */
const char *auth_file_write(struct auth_file *f, const char *tag,
                            const char *const *users);

/* The same with the whole content given as text (say, a broken line). */
const char *auth_file_write_text(struct auth_file *f, const char *tag,
                                 const char *text);

/* Remove the file, if one was written. */
void auth_file_remove(struct auth_file *f);

#endif
