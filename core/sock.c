/*
 * sock.c - resolve and listen. See sock.h.
 */
#include "core/sock.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/errbuf.h"

static const struct sock_opts default_opts = { .backlog = 128 };

/* "HOST:PORT", with an IPv6 literal in brackets. */
static void host_port(char *dst, size_t cap, const char *host, uint16_t port)
{
	const char *h = host && *host ? host : "0.0.0.0";
	bool v6 = strchr(h, ':') != NULL;
	snprintf(dst, cap, "%s%s%s:%u", v6 ? "[" : "", h, v6 ? "]" : "", (unsigned)port);
}

static int gai_errno(int g)
{
	switch (g) {
	case EAI_AGAIN:  return -EAGAIN;
	case EAI_MEMORY: return -ENOMEM;
	case EAI_SYSTEM: return errno ? -errno : -EINVAL;
	default:         return -EINVAL; /* NONAME, NODATA, FAMILY, ... */
	}
}

/* getaddrinfo for a passive TCP socket: *res, or -errno with a message. */
static int lookup(const char *host, uint16_t port, struct addrinfo **res,
                  char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	char service[8];
	snprintf(service, sizeof service, "%u", (unsigned)port);
	if (!host || !*host)
		host = "0.0.0.0";
	errno = 0;
	int g = getaddrinfo(host, service, &hints, res);
	if (g != 0) {
		int r = gai_errno(g);
		errbuf_set(err, errlen, "address %s: %s", host,
		           g == EAI_SYSTEM ? strerror(-r) : gai_strerror(g));
		return r;
	}
	return 0;
}

int sock_resolve(const char *host, uint16_t port, struct sock_addr *out,
                 char *err, size_t errlen)
{
	struct addrinfo *res = NULL;
	int r = lookup(host, port, &res, err, errlen);
	if (r < 0)
		return r;
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int sock_listen_at(const struct sock_addr *a, const struct sock_opts *o,
                   const char *host, char *err, size_t errlen)
{
	if (!o)
		o = &default_opts;
	int one = 1;
	int fd = socket(a->ss.ss_family,
	                SOCK_STREAM | SOCK_CLOEXEC | (o->nonblock ? SOCK_NONBLOCK : 0), 0);
	int r = 0;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    (o->nodelay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    (o->backlog > 0 && listen(fd, o->backlog) < 0))
		r = -errno;
	if (r == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	uint16_t port = 0;
	if (a->ss.ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	else if (a->ss.ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	char hp[300];
	host_port(hp, sizeof hp, host, port);
	errbuf_set(err, errlen, "listen on %s: %s", hp, strerror(-r));
	return r;
}

int sock_listen(const char *host, uint16_t port, const struct sock_opts *o,
                char *err, size_t errlen)
{
	struct addrinfo *res = NULL;
	int r = lookup(host, port, &res, err, errlen);
	if (r < 0)
		return r;
	r = -EADDRNOTAVAIL;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct sock_addr a = { .len = ai->ai_addrlen };
		memcpy(&a.ss, ai->ai_addr, ai->ai_addrlen);
		r = sock_listen_at(&a, o, host, err, errlen);
		if (r >= 0)
			break;
	}
	freeaddrinfo(res);
	return r;
}

int sock_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}
