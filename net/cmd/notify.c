/*
 * notify.c - see notify.h.
 */
#include "net/cmd/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t n;

	if (!path || !*path)
		return 0;
	/* A path, or '@' for the abstract namespace (a leading NUL byte).
	 * Newer systemd also speaks over vsock ("vsock:CID:PORT"): not here. */
	if (path[0] != '/' && path[0] != '@')
		return -EAFNOSUPPORT;
	n = strlen(path);
	if (n > sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	/* The address length counts the abstract name exactly (no NUL). */
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                            (path[0] == '/' && n < sizeof sa.sun_path ? 1 : 0));

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	int e = w < 0 ? -errno : 1;
	close(fd);
	return e;
}
