/*
 * core/sock.h: resolving (literals, names, bad hosts), the options a
 * listening socket gets, a taken port, bind-only sockets, and the one-line
 * messages. Real sockets on loopback; ports from tests/support/ports.h.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sock.h"
#include "ports.h"

static int opt(int fd, int level, int name)
{
	int v = 0;
	socklen_t l = sizeof v;
	cr_assert_eq(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

/* Connect to host:port; true if the connection is accepted. */
static bool can_connect(int family, uint16_t port)
{
	struct sock_addr a = { 0 };
	char err[128];
	cr_assert_eq(sock_resolve(family == AF_INET6 ? "::1" : "127.0.0.1", port, &a,
	                          err, sizeof err), 0, "%s", err);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	bool ok = connect(fd, (struct sockaddr *)&a.ss, a.len) == 0;
	close(fd);
	return ok;
}

/* A free port to listen on. */
static uint16_t free_port(void)
{
	uint16_t port;
	int fd = port_bind_random(AF_INET, 0, &port);
	cr_assert_geq(fd, 0);
	close(fd);
	return port;
}

Test(sock, resolve_literals_and_names)
{
	struct sock_addr a;
	char err[128];

	cr_assert_eq(sock_resolve("127.0.0.1", 5000, &a, err, sizeof err), 0);
	cr_assert_eq(a.ss.ss_family, AF_INET);
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a.ss;
	cr_assert_eq(ntohs(s4->sin_port), 5000);
	cr_assert_eq(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
	cr_assert_eq(a.len, sizeof *s4);

	cr_assert_eq(sock_resolve("::1", 6000, &a, err, sizeof err), 0);
	cr_assert_eq(a.ss.ss_family, AF_INET6);
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a.ss;
	cr_assert_eq(ntohs(s6->sin6_port), 6000);
	cr_assert(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));

	/* Nothing given: every IPv4 address. */
	cr_assert_eq(sock_resolve(NULL, 7000, &a, err, sizeof err), 0);
	cr_assert_eq(a.ss.ss_family, AF_INET);
	cr_assert_eq(((const struct sockaddr_in *)&a.ss)->sin_addr.s_addr, htonl(INADDR_ANY));
	cr_assert_eq(sock_resolve("", 7000, &a, err, sizeof err), 0);

	/* A name. */
	cr_assert_eq(sock_resolve("localhost", 7000, &a, err, sizeof err), 0, "%s", err);
	cr_assert(a.ss.ss_family == AF_INET || a.ss.ss_family == AF_INET6);
}

Test(sock, bad_hosts_are_einval_with_a_message)
{
	struct sock_addr a;
	char err[128] = "";
	static const char *const bad[] = { "999.1.2.3", "no-such-host.invalid", "::zz" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		cr_assert_eq(sock_resolve(bad[i], 5000, &a, err, sizeof err), -EINVAL, "%s", bad[i]);
		char want[64];
		snprintf(want, sizeof want, "address %s: ", bad[i]);
		cr_assert_eq(strncmp(err, want, strlen(want)), 0, "message: %s", err);
		cr_assert_gt(strlen(err), strlen(want), "says why: %s", err);
		cr_assert_lt(sock_listen(bad[i], 5000, NULL, NULL, 0), 0, "no message buffer is fine");
	}
}

Test(sock, listens_with_the_options_asked_for)
{
	uint16_t port = free_port();
	char err[128];
	const struct sock_opts o = { .backlog = 16, .nonblock = true, .nodelay = true,
	                             .reuseport = true };
	int fd = sock_listen("127.0.0.1", port, &o, err, sizeof err);
	cr_assert_geq(fd, 0, "%s", err);
	cr_assert_eq(sock_local_port(fd), port);
	cr_assert(opt(fd, SOL_SOCKET, SO_ACCEPTCONN), "listening");
	cr_assert(opt(fd, SOL_SOCKET, SO_REUSEADDR));
	cr_assert(opt(fd, SOL_SOCKET, SO_REUSEPORT));
	cr_assert(opt(fd, IPPROTO_TCP, TCP_NODELAY));
	cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	cr_assert(can_connect(AF_INET, port));
	/* Accepted sockets inherit TCP_NODELAY. */
	int c = accept(fd, NULL, NULL);
	cr_assert_geq(c, 0);
	cr_assert(opt(c, IPPROTO_TCP, TCP_NODELAY));
	close(c);

	/* With SO_REUSEPORT a second one shares the port. */
	int fd2 = sock_listen("127.0.0.1", port, &o, err, sizeof err);
	cr_assert_geq(fd2, 0, "%s", err);
	close(fd2);
	close(fd);
}

Test(sock, defaults_are_blocking_without_reuseport)
{
	uint16_t port = free_port();
	int fd = sock_listen("127.0.0.1", port, NULL, NULL, 0);
	cr_assert_geq(fd, 0);
	cr_assert(opt(fd, SOL_SOCKET, SO_ACCEPTCONN));
	cr_assert(opt(fd, SOL_SOCKET, SO_REUSEADDR), "always: restarts skip TIME_WAIT");
	cr_assert_not(opt(fd, SOL_SOCKET, SO_REUSEPORT));
	cr_assert_not(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
}

Test(sock, taken_port_is_eaddrinuse_with_a_message)
{
	uint16_t port = free_port();
	int fd = sock_listen("127.0.0.1", port, NULL, NULL, 0);
	cr_assert_geq(fd, 0);
	char err[128], want[96];
	cr_assert_eq(sock_listen("127.0.0.1", port, NULL, err, sizeof err), -EADDRINUSE);
	snprintf(want, sizeof want, "listen on 127.0.0.1:%u: Address already in use", port);
	cr_assert_str_eq(err, want);
	/* Even with SO_REUSEPORT: the first socket did not set it. */
	const struct sock_opts rp = { .backlog = 8, .reuseport = true };
	cr_assert_eq(sock_listen("127.0.0.1", port, &rp, NULL, 0), -EADDRINUSE);
	close(fd);
}

Test(sock, ipv6_literal_in_brackets)
{
	uint16_t port;
	int fd = port_bind_random(AF_INET6, 8, &port);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert(can_connect(AF_INET6, port));
	char err[128], want[96];
	cr_assert_eq(sock_listen("::1", port, NULL, err, sizeof err), -EADDRINUSE);
	snprintf(want, sizeof want, "listen on [::1]:%u: Address already in use", port);
	cr_assert_str_eq(err, want);
	close(fd);
}

Test(sock, bind_only_refuses_connections)
{
	uint16_t port = free_port();
	struct sock_addr a;
	cr_assert_eq(sock_resolve("127.0.0.1", port, &a, NULL, 0), 0);
	const struct sock_opts bind_only = { .backlog = 0 };
	int fd = sock_listen_at(&a, &bind_only, "127.0.0.1", NULL, 0);
	cr_assert_geq(fd, 0);
	cr_assert_not(opt(fd, SOL_SOCKET, SO_ACCEPTCONN));
	cr_assert_eq(sock_local_port(fd), port);
	cr_assert_not(can_connect(AF_INET, port), "nothing listens");
	close(fd);
	cr_assert_eq(sock_local_port(-1), -EBADF);
}
