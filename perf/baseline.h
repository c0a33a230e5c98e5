/*
 * baseline.h - what the two raw echo baselines (baseline-epoll,
 * baseline-uring) share: their command line, process setup and listening
 * socket. The event loops stay in their own files.
 *
 * Called from the baseline's main thread before its loop starts; nothing
 * here keeps state. name is the program name that prefixes every message
 * (stdout for --help, stderr for errors). The host in struct baseline_opt
 * points into argv (or at the caller's default) and lives as long as it.
 */
#ifndef NET001_BASELINE_H
#define NET001_BASELINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct baseline_opt {
	const char *host;   /* default set by the caller */
	uint16_t port;      /* default set by the caller */
	uint64_t corrupt;   /* flip a byte in every Nth reply; 0: honest */
	bool help;          /* --help was given and the usage printed */
};

/*
 * Parse [--host ADDR] [--port N] [--corrupt N] [--help] into *o, which
 * holds the defaults on entry; what describes the server for --help.
 * Returns 0 (check o->help), or -EINVAL after printing the error.
 */
int baseline_parse(struct baseline_opt *o, int argc, char **argv,
                   const char *name, const char *what);

/*
 * Raise the open-file limit to its hard limit (many client connections)
 * and block SIGINT and SIGTERM, which the caller then reads from a
 * signalfd made from *mask.
 */
void baseline_prepare(sigset_t *mask);

/*
 * A listening TCP socket on host:port (core/sock.h: SO_REUSEADDR, backlog
 * 4096, non-blocking if asked). Returns the fd, or -errno after printing
 * the error.
 */
int baseline_listen(const char *name, const char *host, uint16_t port,
                    bool nonblock);

#endif
