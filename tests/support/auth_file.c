/*
 * auth_file.c - see auth_file.h.
 */
#include "auth_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *auth_file_write_text(struct auth_file *f, const char *tag,
                                 const char *text)
{
	char tmp[sizeof f->path + 8];
	snprintf(f->path, sizeof f->path, "/tmp/net001-auth-%s-%d", tag, (int)getpid());
	snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
	FILE *fp = fopen(tmp, "w");
	if (!fp) {
		fprintf(stderr, "auth_file: %s: %s\n", tmp, strerror(errno));
		return NULL;
	}
	bool ok = fputs(text, fp) >= 0;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, f->path) < 0) {
		fprintf(stderr, "auth_file: writing %s: %s\n", f->path, strerror(errno));
		unlink(tmp);
		return NULL;
	}
	return f->path;
}

const char *auth_file_write(struct auth_file *f, const char *tag,
                            const char *const *users)
{
	char text[4096];
	size_t n = (size_t)snprintf(text, sizeof text, "# test users\n");
	for (; users[0] && users[1]; users += 2) {
		int k = snprintf(text + n, sizeof text - n, "%s:%s\n", users[0], users[1]);
		if (k < 0 || (size_t)k >= sizeof text - n) {
			fprintf(stderr, "auth_file: too many users\n");
			return NULL;
		}
		n += (size_t)k;
	}
	return auth_file_write_text(f, tag, text);
}

void auth_file_remove(struct auth_file *f)
{
	if (f->path[0])
		unlink(f->path);
	f->path[0] = '\0';
}
