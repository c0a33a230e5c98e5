/*
 * sock.h - listening TCP sockets: resolve a host, create the socket with
 * the options its caller needs, bind, listen. The one copy, used by the
 * server's per-core listeners (net/listener.c) and the raw echo baselines
 * (perf/baseline.c). The metrics exporter lies below core/ and cannot
 * include it: main() can make the exporter's socket here and hand over
 * the descriptor.
 *
 * Errors are -errno with one line in err (when err is not NULL):
 *   "address HOST: <reason>"              the lookup failed
 *   "listen on HOST:PORT: <strerror>"     socket, bind or listen failed
 * (an IPv6 literal HOST is written in brackets).
 *
 * Any thread; no state. Descriptors returned belong to the caller.
 */
#ifndef NET001_SOCK_H
#define NET001_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A resolved address to bind to. */
struct sock_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* What a listening socket gets besides SO_REUSEADDR and SOCK_CLOEXEC,
 * which it always gets (a restart must not wait out TIME_WAIT). */
struct sock_opts {
	int backlog;    /* listen() backlog; 0: bind only, no listen (a port
	                 * probe, or a port where connects are refused) */
	bool reuseport; /* SO_REUSEPORT: one socket per core on one port */
	bool nonblock;  /* SOCK_NONBLOCK (epoll loops) */
	bool nodelay;   /* TCP_NODELAY, inherited by accepted sockets */
};

/*
 * Resolve host for binding: an IPv4 or IPv6 literal or a name (NULL or ""
 * means every address, IPv4 0.0.0.0). The first address the lookup gives
 * goes into *out with port. Returns 0, -EINVAL (unknown host, or not a
 * valid address), -EAGAIN (lookup failed for now), -ENOMEM or another
 * -errno.
 */
int sock_resolve(const char *host, uint16_t port, struct sock_addr *out,
                 char *err, size_t errlen);

/*
 * A socket bound to a with the options o (NULL: backlog 128, nothing
 * else). host names the address in the message. Returns the descriptor or
 * -errno (-EADDRINUSE when the port is taken).
 */
int sock_listen_at(const struct sock_addr *a, const struct sock_opts *o,
                   const char *host, char *err, size_t errlen);

/*
 * sock_resolve() then sock_listen_at(), trying each address the lookup
 * gives until one binds (a name with IPv6 and IPv4 addresses). Returns the
 * descriptor or -errno, the error of the last address tried.
 */
int sock_listen(const char *host, uint16_t port, const struct sock_opts *o,
                char *err, size_t errlen);

/* The local port of a bound socket (after port 0), or -errno. */
int sock_local_port(int fd);

#endif
