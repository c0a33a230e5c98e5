/*
 * ports.c - see ports.h.
 */
#include "ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/sock.h"

uint16_t port_random(void)
{
	uint32_t r = 0;
	while (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		;
	return (uint16_t)(PORT_RANDOM_MIN + r % (PORT_RANDOM_END - PORT_RANDOM_MIN));
}

static struct sock_addr loopback(int family, uint16_t port)
{
	struct sock_addr a;
	memset(&a, 0, sizeof a);
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = in6addr_loopback;
		a.len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.len = sizeof *s4;
	}
	return a;
}

bool port_free(uint16_t port)
{
	struct sock_addr a = loopback(AF_INET, port);
	const struct sock_opts bind_only = { .backlog = 0 };
	int fd = sock_listen_at(&a, &bind_only, "127.0.0.1", NULL, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int port_bind_random(int family, int backlog, uint16_t *port)
{
	const struct sock_opts o = { .backlog = backlog };
	for (int attempt = 0; attempt < 200; attempt++) {
		uint16_t p = port_random();
		struct sock_addr a = loopback(family, p);
		int fd = sock_listen_at(&a, &o, family == AF_INET6 ? "::1" : "127.0.0.1",
		                        NULL, 0);
		if (fd >= 0) {
			*port = p;
			return fd;
		}
		if (fd != -EADDRINUSE)
			return fd;
	}
	return -EADDRINUSE;
}
