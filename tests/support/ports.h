/*
 * ports.h - loopback TCP ports for tests: the one picker the suites share.
 *
 * Ports are random in [10000, 31000): below the kernel's ephemeral range
 * (32768 up), so they never meet the source ports of outgoing connections,
 * and each leaves room for port + 1000, the server's default metrics port.
 * A pick can still lose a race with another test process: callers retry on
 * EADDRINUSE (port_bind_random() does it itself).
 *
 * Test code, any thread; no state.
 */
#ifndef NET001_TEST_PORTS_H
#define NET001_TEST_PORTS_H

#include <stdbool.h>
#include <stdint.h>

#define PORT_RANDOM_MIN 10000
#define PORT_RANDOM_END 31000

/* A random port in [PORT_RANDOM_MIN, PORT_RANDOM_END) (getrandom()). */
uint16_t port_random(void);

/* Whether a socket can bind 127.0.0.1:port right now. */
bool port_free(uint16_t port);

/*
 * A socket bound to a random free loopback port: 127.0.0.1 for AF_INET,
 * ::1 for AF_INET6 (core/sock.h; SO_REUSEADDR). It listens when backlog
 * > 0; with backlog 0 it is only bound, a port where connects are refused.
 * Returns the descriptor with *port set, or -errno (after 200 ports in use,
 * -EADDRINUSE).
 */
int port_bind_random(int family, int backlog, uint16_t *port);

#endif
