/*
 * listener.c - the listening sockets: one per core, SO_REUSEPORT, so the
 * kernel spreads new connections over the cores. Called by main() before
 * the workers start.
 */
#include "net/listener.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss,
                   socklen_t *len, char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	}, *res = NULL;
	char portstr[8];

	snprintf(portstr, sizeof portstr, "%u", port);
	int r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "address %s: %s", host, gai_strerror(r));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int open_one(const struct sockaddr_storage *ss, socklen_t len, bool reuseport,
                    int backlog)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    bind(fd, (const struct sockaddr *)ss, len) < 0 ||
	    (backlog > 0 && listen(fd, backlog) < 0)) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* Accepted sockets inherit this: replies leave without waiting. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

int listener_open_all(const char *host, uint16_t port, int *fds, uint32_t n,
                      char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int r = resolve(host, port, &ss, &len, err, errlen);
	if (r < 0)
		return r;

	/* SO_REUSEPORT would let us share a port some other server (of the
	 * same user) holds: bind once without it first, so a taken port is
	 * an error rather than a silent split of its traffic. */
	int probe = open_one(&ss, len, false, 0);
	if (probe < 0) {
		snprintf(err, errlen, "listen on %s:%u: %s", host, port, strerror(-probe));
		return probe;
	}
	close(probe);

	for (uint32_t i = 0; i < n; i++) {
		fds[i] = open_one(&ss, len, true, 65535);
		if (fds[i] < 0) {
			r = fds[i];
			snprintf(err, errlen, "listen on %s:%u: %s", host, port, strerror(-r));
			while (i--)
				close(fds[i]);
			return r;
		}
	}
	return 0;
}
