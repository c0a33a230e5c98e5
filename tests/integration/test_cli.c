/*
 * net001-cli against a real net001-server (tests/support harness): every
 * command, its output and exit status, authentication, server errors,
 * timeouts against a stopped server, refused and unresolvable hosts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_file.h"
#include "exposition.h"
#include "harness.h"
#include "http_client.h"
#include "test_cli_run.h"
#include "timing.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct srv server;
static char port[8];
static struct auth_file auth;
static char data_path[64];
/* Big (64 KiB of output): static, one per role. */
static struct run run, bg;

static void cleanup(void)
{
	run_kill(&bg);
	srv_cleanup(&server);
	auth_file_remove(&auth);
	if (data_path[0])
		unlink(data_path);
}

TestSuite(cli_srv, .fini = cleanup, .timeout = 90);

static void start(const char *const *args)
{
	bg.pid = -1;
	cr_assert_eq(srv_start(&server, args), 0, "server did not start");
	snprintf(port, sizeof port, "%u", server.port);
}

/* An auth file with alice:s3cret. */
static const char *write_auth_file(void)
{
	const char *path = auth_file_write(&auth, "cli", AUTH_USERS("alice", AUTH_ALICE_HEX));
	cr_assert_not_null(path);
	return path;
}

/* A file of n pseudo-random bytes. */
static const char *write_data_file(size_t n)
{
	snprintf(data_path, sizeof data_path, "/tmp/net001-cli-data-%d", (int)getpid());
	FILE *f = fopen(data_path, "w");
	cr_assert_not_null(f);
	unsigned x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		fputc((int)(x >> 16) & 0xff, f);
	}
	fclose(f);
	return data_path;
}

static void expect_ok(struct run *r, const char *what)
{
	cr_assert_eq(r->status, 0, "%s: exit %d, stderr: %s", what, r->status, r->err);
	cr_assert_str_eq(r->err, "", "%s: stderr: %s", what, r->err);
}

static void expect_fail(struct run *r, int status, const char *err_needle)
{
	cr_assert_eq(r->status, status, "exit %d (wanted %d), stderr: %s", r->status,
	             status, r->err);
	cr_assert(strncmp(r->err, "net001-cli: ", 12) == 0, "stderr: %s", r->err);
	cr_assert_not_null(strstr(r->err, err_needle), "'%s' not in: %s", err_needle, r->err);
	cr_assert_eq(str_count(r->err, "\n"), 1, "one line: %s", r->err);
}

/* Start `listen` in the background and wait until it is ready. */
static void start_listener(const char *const *args)
{
	cr_assert_eq(cli_spawn(&bg, args, NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "listen did not start: %s", bg.err);
}

/* ---- ping, echo ----------------------------------------------------------- */

Test(cli_srv, ping_prints_rtts_and_summary)
{
	start(NULL);
	cli_run(&run, ARGS("--port", port, "ping", "-c", "3", "-i", "10"));
	expect_ok(&run, "ping");
	char want[64];
	snprintf(want, sizeof want, "PONG from 127.0.0.1:%s: seq=", port);
	cr_assert_eq(str_count(run.out, want), 3, "stdout: %s", run.out);
	cr_assert(str_matches(run.out, "seq=1 time=[0-9]+\\.[0-9]{3} ms$"), "stdout: %s", run.out);
	cr_assert(str_matches(run.out, "seq=3 time=[0-9]+\\.[0-9]{3} ms$"), "stdout: %s", run.out);
	cr_assert(str_matches(run.out, "^3 sent, 3 received, 0 lost$"), "stdout: %s", run.out);
	cr_assert(str_matches(run.out, "^rtt min/avg/max = [0-9.]+/[0-9.]+/[0-9.]+ ms$"),
	          "stdout: %s", run.out);
}

Test(cli_srv, ping_until_interrupted)
{
	start(NULL);
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "ping", "-c", "0", "-i", "50"), NULL), 0);
	cr_assert(run_wait_for(&bg, "seq=3 ", 10000), "stdout: %s", bg.out);
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0, "SIGINT exits 0; stderr: %s", bg.err);
	cr_assert(str_matches(bg.out, "^([0-9]+) sent, \\1 received, 0 lost$"), "stdout: %s", bg.out);
	cr_assert_not_null(strstr(bg.out, "rtt min/avg/max = "));
}

Test(cli_srv, echo_prints_reply)
{
	start(NULL);
	cli_run(&run, ARGS("--port", port, "echo", "hello world"));
	expect_ok(&run, "echo");
	cr_assert_str_eq(run.out, "hello world\n");
	cli_run(&run, ARGS("--port", port, "echo", ""));
	expect_ok(&run, "echo empty");
	cr_assert_str_eq(run.out, "\n");
	cli_run(&run, ARGS("--port", port, "echo", "--", "-n"));
	expect_ok(&run, "echo -- -n");
	cr_assert_str_eq(run.out, "-n\n");
	cli_run(&run, ARGS("--host", "localhost", "--port", port, "--timeout", "2000", "echo", "x"));
	expect_ok(&run, "echo via name");
	cr_assert_str_eq(run.out, "x\n");
}

Test(cli_srv, ipv6_host)
{
	start(ARGS("--host", "::1"));
	cli_run(&run, ARGS("--host", "::1", "--port", port, "ping"));
	expect_ok(&run, "ping ::1");
	char want[64];
	snprintf(want, sizeof want, "PONG from [::1]:%s: seq=1 ", port);
	cr_assert_not_null(strstr(run.out, want), "stdout: %s", run.out);
}

/* ---- broadcast, listen ---------------------------------------------------- */

Test(cli_srv, broadcast_reaches_listener)
{
	start(NULL);
	start_listener(ARGS("--port", port, "listen", "-n", "3"));
	cli_run(&run, ARGS("--port", port, "broadcast", "one"));
	expect_ok(&run, "broadcast one");
	cr_assert_str_eq(run.out, "");
	cli_run(&run, ARGS("--port", port, "broadcast", "tw\\o\nlines\x01"));
	expect_ok(&run, "broadcast two");
	cli_run(&run, ARGS("--port", port, "broadcast", ""));
	expect_ok(&run, "broadcast empty");
	cr_assert_eq(run_finish(&bg, 10000), 0, "listen -n 3 exits 0; stderr: %s", bg.err);
	/* One line each, '\', newline and control bytes escaped. */
	cr_assert_str_eq(bg.out, "one\ntw\\\\o\\nlines\\x01\n\n");
}

Test(cli_srv, listen_exits_0_on_sigint)
{
	start(NULL);
	start_listener(ARGS("--port", port, "listen"));
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0, "stderr: %s", bg.err);
	cr_assert_str_eq(bg.out, "");
}

Test(cli_srv, listen_keepalive_outlives_idle_timeout)
{
	/* The server counts idle time in whole seconds, so a timeout of 1 can
	 * strike right after a frame: 2 leaves more than a second of grace. */
	start(ARGS("--idle-timeout", "2"));
	start_listener(ARGS("--port", port, "listen", "-n", "1", "-k", "300"));
	sleep_ms(5000); /* two and a half idle timeouts */
	cli_run(&run, ARGS("--port", port, "broadcast", "still here"));
	expect_ok(&run, "broadcast");
	cr_assert_eq(run_finish(&bg, 10000), 0, "stderr: %s", bg.err);
	cr_assert_str_eq(bg.out, "still here\n");
}

Test(cli_srv, listen_without_keepalive_is_idled_out)
{
	start(ARGS("--idle-timeout", "1"));
	start_listener(ARGS("--port", port, "listen", "-k", "0"));
	run_finish(&bg, 10000);
	cr_assert_eq(bg.status, 1, "stderr: %s", bg.err);
	cr_assert_not_null(strstr(bg.err, "net001-cli: listen: server error 11 IDLE_TIMEOUT"),
	                   "stderr: %s", bg.err);
}

Test(cli_srv, listen_reports_shutdown)
{
	start(NULL);
	start_listener(ARGS("--port", port, "listen"));
	cr_assert_eq(srv_stop(&server, 10000), 0);
	run_finish(&bg, 10000);
	cr_assert_eq(bg.status, 1, "stderr: %s", bg.err);
	cr_assert_not_null(strstr(bg.err, "net001-cli: listen: server error 13 SHUTTING_DOWN"),
	                   "stderr: %s", bg.err);
}

/* ---- auth ----------------------------------------------------------------- */

Test(cli_srv, auth_command)
{
	start(ARGS("--auth-file", write_auth_file()));
	cli_run(&run, ARGS("--port", port, "auth", "alice", "s3cret"));
	expect_ok(&run, "auth");
	cr_assert(str_matches(run.out, "^OK session=[0-9a-f]{32}$"), "stdout: %s", run.out);
	cr_assert_null(strstr(run.out, "00000000000000000000000000000000"));

	cli_run(&run, ARGS("--port", port, "auth", "alice", "wrong"));
	expect_fail(&run, 1, "auth: authentication failed for user 'alice'");
	cr_assert_str_eq(run.out, "");
	cli_run(&run, ARGS("--port", port, "auth", "mallory", "s3cret"));
	expect_fail(&run, 1, "authentication failed");
}

Test(cli_srv, hash_token_makes_a_working_auth_file)
{
	cli_run(&run, ARGS("hash-token", "opensesame"));
	expect_ok(&run, "hash-token");
	/* The CLI's line as it is, newline included. */
	char line[128];
	int k = snprintf(line, sizeof line, "carol:%s", run.out);
	cr_assert(k > 0 && (size_t)k < sizeof line, "one line: %s", run.out);
	const char *path = auth_file_write_text(&auth, "cli", line);
	cr_assert_not_null(path);
	start(ARGS("--auth-file", path));
	cli_run(&run, ARGS("--port", port, "auth", "carol", "opensesame"));
	expect_ok(&run, "auth with hashed token");
}

Test(cli_srv, global_auth_option)
{
	start(ARGS("--auth-file", write_auth_file()));
	cli_run(&run, ARGS("--port", port, "broadcast", "hi"));
	expect_fail(&run, 1, "net001-cli: broadcast: server error 7 AUTH_REQUIRED: auth required");
	cli_run(&run, ARGS("--port", port, "--auth", "alice:s3cret", "broadcast", "hi"));
	expect_ok(&run, "authenticated broadcast");
	cli_run(&run, ARGS("--port", port, "--auth", "alice:nope", "broadcast", "hi"));
	expect_fail(&run, 1, "auth: authentication failed for user 'alice'");

	/* An authenticated listener gets an authenticated broadcast. */
	start_listener(ARGS("--port", port, "--auth", "alice:s3cret", "listen", "-n", "1"));
	cli_run(&run, ARGS("--port", port, "--auth", "alice:s3cret", "broadcast", "secret"));
	expect_ok(&run, "broadcast");
	cr_assert_eq(run_finish(&bg, 10000), 0, "stderr: %s", bg.err);
	cr_assert_str_eq(bg.out, "secret\n");

	cli_run(&run, ARGS("--port", port, "send", write_data_file(10)));
	expect_fail(&run, 1, "send: server error 7 AUTH_REQUIRED");
	cli_run(&run, ARGS("--port", port, "--auth", "alice:s3cret", "send", data_path));
	expect_ok(&run, "authenticated send");
	/* PING and ECHO need no auth. */
	cli_run(&run, ARGS("--port", port, "echo", "free"));
	expect_ok(&run, "echo");
}

/* ---- send ----------------------------------------------------------------- */

Test(cli_srv, send_splits_into_frames)
{
	start(NULL);
	static const struct { size_t bytes; const char *out; } cases[] = {
		{ 1, "sent 1 bytes in 1 DATA frame\n" },
		{ 65535, "sent 65535 bytes in 1 DATA frame\n" },
		{ 65536, "sent 65536 bytes in 2 DATA frames\n" },
		{ 200000, "sent 200000 bytes in 4 DATA frames\n" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cli_run(&run, ARGS("--port", port, "send", write_data_file(cases[i].bytes)));
		expect_ok(&run, "send");
		cr_assert_str_eq(run.out, cases[i].out);
	}
	/* stdin, empty: one empty frame. */
	cr_assert_eq(cli_spawn(&run, ARGS("--port", port, "send", "-"), "/dev/null"), 0);
	run_finish(&run, 10000);
	expect_ok(&run, "send -");
	cr_assert_str_eq(run.out, "sent 0 bytes in 1 DATA frame\n");
	cr_assert_eq(cli_spawn(&run, ARGS("--port", port, "send", "--", "-"),
	                       write_data_file(70000)), 0);
	run_finish(&run, 10000);
	expect_ok(&run, "send -- -");
	cr_assert_str_eq(run.out, "sent 70000 bytes in 2 DATA frames\n");
}

/* A counter from the test server's /metrics. */
static uint64_t metric(const char *series)
{
	char *text = http_scrape(server.metrics_port);
	cr_assert_not_null(text, "GET /metrics");
	uint64_t v = 0;
	bool found = sample_u64(text, series, &v);
	free(text);
	cr_assert(found, "no %s in /metrics", series);
	return v;
}

Test(cli_srv, send_counted_by_the_server)
{
	start(NULL);
	cli_run(&run, ARGS("--port", port, "send", write_data_file(200000)));
	expect_ok(&run, "send");
	/* 4 DATA frames of 65535, 65535, 65535, 3395 bytes and the PING that
	 * confirms them: 200000 + 5 * 12 + 8 bytes on the wire. */
	cr_assert_eq(metric("net001_frames_received_total{type=\"data\"}"), 4);
	cr_assert_eq(metric("net001_frames_received_total{type=\"ping\"}"), 1);
	cr_assert_eq(metric("net001_bytes_received_total"), 200068);
}

Test(cli_srv, send_frames_are_what_the_server_sees)
{
	/* The server refuses payloads above 1000 bytes and counts frames
	 * against 5 a second: both show the CLI's framing from outside. */
	start(ARGS("--max-payload", "1000", "--rate-limit", "5", "--global-rate-limit", "0"));
	cli_run(&run, ARGS("--port", port, "send", write_data_file(1000)));
	expect_ok(&run, "send 1000");
	cli_run(&run, ARGS("--port", port, "send", write_data_file(1001)));
	expect_fail(&run, 1, "send: server error 6 FRAME_TOO_LARGE");
	cr_assert_str_eq(run.out, "");
}

Test(cli_srv, send_rate_limited)
{
	start(ARGS("--rate-limit", "3", "--global-rate-limit", "0"));
	/* 4 frames and the closing PING: 5 frames against 3 tokens. */
	cli_run(&run, ARGS("--port", port, "send", write_data_file(200000)));
	expect_fail(&run, 1, "send: server error 9 RATE_LIMITED");
	cli_run(&run, ARGS("--port", port, "send", write_data_file(65536)));
	expect_ok(&run, "2 frames and the PING fit in 3 tokens");
}

/* ---- errors and failures -------------------------------------------------- */

Test(cli_srv, ping_rate_limited)
{
	start(ARGS("--rate-limit", "3", "--global-rate-limit", "0"));
	cli_run(&run, ARGS("--port", port, "ping", "-c", "10", "-i", "0"));
	expect_fail(&run, 1, "net001-cli: ping: server error 9 RATE_LIMITED: rate limited");
	cr_assert_eq(str_count(run.out, "PONG from"), 3, "stdout: %s", run.out);
}

Test(cli_srv, timeouts_exit_3)
{
	start(NULL);
	cr_assert_eq(srv_freeze(&server, 2000), 0, "server threads did not stop");
	cli_run(&run, ARGS("--port", port, "--timeout", "300", "echo", "hi"));
	expect_fail(&run, 3, "net001-cli: echo: Timed out");
	cli_run(&run, ARGS("--port", port, "--timeout", "300", "ping", "-c", "2", "-i", "0"));
	cr_assert_eq(run.status, 3, "stderr: %s", run.err);
	cr_assert_eq(str_count(run.out, "timeout from"), 2, "stdout: %s", run.out);
	cr_assert(str_matches(run.out, "^2 sent, 0 received, 2 lost$"), "stdout: %s", run.out);
	cr_assert_str_eq(run.err, "net001-cli: ping: 2 of 2 timed out\n");
	cli_run(&run, ARGS("--port", port, "--timeout", "300", "broadcast", "x"));
	expect_fail(&run, 3, "broadcast: Timed out");
	cli_run(&run, ARGS("--port", port, "--timeout", "300", "auth", "u", "t"));
	expect_fail(&run, 3, "auth: Timed out");
	cli_run(&run, ARGS("--port", port, "--timeout", "300", "listen"));
	expect_fail(&run, 3, "listen: Timed out");
	kill(server.pid, SIGCONT);
	cli_run(&run, ARGS("--port", port, "echo", "awake"));
	expect_ok(&run, "echo after SIGCONT");
}

Test(cli_srv, refused_after_server_exit)
{
	start(NULL);
	cr_assert_eq(srv_stop(&server, 10000), 0);
	cli_run(&run, ARGS("--port", port, "ping"));
	char want[96];
	snprintf(want, sizeof want, "net001-cli: connect 127.0.0.1:%s: Connection refused\n", port);
	cr_assert_eq(run.status, 3);
	cr_assert_str_eq(run.err, want);
}

Test(cli_srv, bad_host_exits_3)
{
	cli_run(&run, ARGS("--host", "no-such-host.invalid", "--port", "5000", "ping"));
	expect_fail(&run, 3, "net001-cli: connect no-such-host.invalid:5000: ");
}

Test(cli_srv, server_full_exits_1)
{
	start(ARGS("--max-connections", "1"));
	start_listener(ARGS("--port", port, "listen"));
	cli_run(&run, ARGS("--port", port, "echo", "hi"));
	/* The refusal is an ERROR frame then a close; either may be seen first
	 * by a client that is already sending. */
	cr_assert(run.status == 1 || run.status == 3, "exit %d, stderr: %s", run.status, run.err);
	if (run.status == 1)
		cr_assert_not_null(strstr(run.err, "server error 10 SERVER_FULL"), "stderr: %s", run.err);
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0);
}
