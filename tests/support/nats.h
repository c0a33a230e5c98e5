/*
 * nats.h - a real nats-server for tests (Debian's, started on a free
 * loopback port and stopped again), and a raw client connection to it
 * that publishes whatever bytes a test wants on a subject.
 *
 * Test code; one struct nats per broker, used by one thread.
 */
#ifndef NET001_TEST_NATS_H
#define NET001_TEST_NATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct nats {
	pid_t pid;
	uint16_t port, cport;
	char log[64];
	/* More arguments, such as --user/--pass, -c FILE or --tls ...
	 * (NULL-terminated; the strings are the caller's and are read again
	 * at each nats_run, so a restart can change them). */
	const char *args[9];
};

/*
 * Start nats-server on port (0: a free one, retried while ports are taken)
 * with its output in n->log; with cport, also a cluster listener there and,
 * with route_to, a route to that cluster port. 0 once it listens, -1 (with
 * a line on stderr naming the log) if it never did.
 */
int nats_run(struct nats *n, uint16_t port, uint16_t cport, uint16_t route_to);

/* SIGKILL it (no-op if not running); the log stays. */
void nats_kill9(struct nats *n);

/* SIGTERM, then SIGKILL after 2 s; removes the log and clears *n. */
void nats_cleanup(struct nats *n);

/* A plain TCP connection to the broker that has sent CONNECT (no echo
 * settings, not verbose): the descriptor, or -1. */
int nats_raw(uint16_t port);

/* PUB n bytes on subject over a nats_raw() connection: 0, or -1 if the
 * connection would not take them. */
int nats_raw_pub(int fd, const char *subject, const void *p, size_t n);

#endif
