/*
 * listener.c - the listening sockets: one per core, SO_REUSEPORT, so the
 * kernel spreads new connections over the cores. Called by main() before
 * the workers start. Resolving and the socket options: core/sock.h.
 */
#include "net/listener.h"

#include <unistd.h>

#include "core/sock.h"

int listener_open_all(const char *host, uint16_t port, int *fds, uint32_t n,
                      char *err, size_t errlen)
{
	struct sock_addr a;
	int r = sock_resolve(host, port, &a, err, errlen);
	if (r < 0)
		return r;

	/* SO_REUSEPORT would let us share a port some other server (of the
	 * same user) holds: bind once without it first, so a taken port is
	 * an error rather than a silent split of its traffic. */
	const struct sock_opts probe_opts = { .backlog = 0 };
	int probe = sock_listen_at(&a, &probe_opts, host, err, errlen);
	if (probe < 0)
		return probe;
	close(probe);

	/* Accepted sockets inherit TCP_NODELAY: replies leave without waiting. */
	const struct sock_opts opts = { .backlog = 65535, .reuseport = true, .nodelay = true };
	for (uint32_t i = 0; i < n; i++) {
		fds[i] = sock_listen_at(&a, &opts, host, err, errlen);
		if (fds[i] < 0) {
			r = fds[i];
			while (i--)
				close(fds[i]);
			return r;
		}
	}
	return 0;
}
