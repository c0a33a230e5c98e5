/*
 * harness.h - integration test support: start a real net001-server on a
 * free loopback port, talk NET-001 to it over real sockets, stop it.
 *
 * Test-process only. Each struct srv owns its child process and log file
 * until srv_stop(). Blocking sockets with timeouts throughout: a test that
 * hangs fails by Criterion's .timeout rather than by waiting forever.
 */
#ifndef NET001_HARNESS_H
#define NET001_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct srv {
	pid_t pid;
	uint16_t port;
	uint16_t metrics_port;
	char log_path[64];   /* the server's stderr */
};

/* Path of the server binary: $NET001_SERVER, else build/net001-server. */
const char *srv_binary(void);

/*
 * Start the server with extra arguments (NULL-terminated list, may be
 * NULL) on 127.0.0.1 and a free port from ports.h; --metrics-port is
 * port + 1000 unless args set it. Waits for its "listening on" log line.
 * Returns 0, or -1 after printing why to stderr.
 */
int srv_start(struct srv *s, const char *const *args);
/* Same, with environment additions "NAME=value" (NULL-terminated). */
int srv_start_env(struct srv *s, const char *const *args, const char *const *env);

/* SIGTERM, then wait up to timeout_ms. Returns the exit status, or -1 if
 * it had to be killed, or 128+signal if a signal ended it. */
int srv_stop(struct srv *s, int timeout_ms);
/* Wait for exit without signalling. Same return values. */
int srv_wait(struct srv *s, int timeout_ms);
/*
 * SIGSTOP the server and wait until every one of its threads is stopped
 * (the signal lands asynchronously). Returns 0, or -1 if the signal
 * cannot be sent or the threads are not all stopped within timeout_ms.
 * SIGCONT resumes it; srv_stop() works on a stopped server only after that.
 */
int srv_freeze(const struct srv *s, int timeout_ms);
/*
 * For a test's .fini, whatever state the test left s in: resume the server
 * (after srv_freeze), stop it if it still runs (10 s limit) and remove its
 * log.
 */
void srv_cleanup(struct srv *s);
/* Whether the log contains needle; how many of its lines do. */
bool srv_log_contains(const struct srv *s, const char *needle);
size_t srv_log_count(const struct srv *s, const char *needle);
/* Copy the log to stderr (a test about to fail says what the server said). */
void srv_log_print(const struct srv *s);
/* Resident set size in KiB, from /proc. */
long srv_rss_kb(const struct srv *s);
/* Whether the server under test is a sanitizer build ($NET001_SANITIZED,
 * set by meson): several times slower, with a quarantine of freed memory,
 * so timing and memory bounds are scaled by this factor (1 otherwise). */
int srv_slowdown(void);
/* A bound on the server's RSS growth for this build, given the release
 * build's bound in KiB: as given; x8 under ASan (its quarantine keeps
 * freed memory); x32 under TSan (shadow memory and synchronisation
 * records grow with the traffic there, 0.5-1.5 GB in a storm: the bound
 * only catches runaway growth). */
long srv_rss_bound_kb(long release_kb);

/*
 * Run the server expecting it to exit by itself (bad flags): returns the
 * exit status; its stderr goes into err (NUL-terminated). Kills it and
 * returns -1 if it is still running after timeout_ms.
 */
int srv_run_exit(const char *const *args, const char *const *env, char *err,
                 size_t errlen, int timeout_ms);

/* Whether something accepts TCP connections on 127.0.0.1:port. */
bool port_listening(uint16_t port);

/* ---- raw client ------------------------------------------------------- */

/* Blocking TCP connection to 127.0.0.1:port, TCP_NODELAY; -1 on failure. */
int tc_connect(uint16_t port);
/* Same, bound first to a source address such as "127.0.0.2". */
int tc_connect_from(uint16_t port, const char *src);
/* Same, with a small receive buffer set before connecting (a slow reader). */
int tc_connect_small(uint16_t port, int rcvbuf);
/* Write everything; 0 or -1. */
int tc_send(int fd, const void *p, size_t n);
/* Encode and send one frame. */
int tc_send_frame(int fd, uint8_t type, const void *payload, size_t len);

struct tc_frame {
	uint8_t type;
	uint16_t len;
	uint8_t payload[65535];
};

/*
 * Read one whole frame within timeout_ms; checks magic, version and CRC.
 * Returns 0, -ETIMEDOUT, -EPIPE (orderly EOF), -ECONNRESET, or -EPROTO for
 * a malformed frame from the server.
 */
int tc_read_frame(int fd, struct tc_frame *f, int timeout_ms);
/* Read a frame and expect an ERROR with this code; true if so. */
bool tc_expect_error(int fd, uint16_t code, int timeout_ms);
/* True if the peer closes (EOF or reset) within timeout_ms, discarding
 * whatever it sends first. */
bool tc_wait_closed(int fd, int timeout_ms);
/* True if nothing at all arrives within timeout_ms (connection open). */
bool tc_quiet(int fd, int timeout_ms);

/* ping with an 8-byte value, expect the PONG carrying it. */
bool tc_ping(int fd, uint64_t value, int timeout_ms);

/*
 * The core (worker) of s that serves the connection on fd, from the log
 * line "core N: slot M (127.0.0.1:PORT) open" that s writes with --debug;
 * -1 if it does not appear within 2 s.
 */
int srv_core_of(const struct srv *s, int fd);
/* A connection to s served by the given core (rcvbuf > 0: that small a
 * receive buffer), answered PING and all; -1 if 64 tries land elsewhere.
 * s must run with --debug. */
int tc_connect_on_core(const struct srv *s, int core, int rcvbuf);

#endif
