/*
 * listener.h - listening sockets for the workers. Called from main() only.
 */
#ifndef NET001_LISTENER_H
#define NET001_LISTENER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Open n SO_REUSEPORT listening sockets on host:port into fds[]. Fails
 * with -EADDRINUSE if anything already holds the port. On error nothing
 * stays open and err holds one line. Returns 0 or -errno.
 */
int listener_open_all(const char *host, uint16_t port, int *fds, uint32_t n,
                      char *err, size_t errlen);

#endif
