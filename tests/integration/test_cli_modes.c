/*
 * net001-cli's modes against a real net001-server: the interactive prompt
 * driven through a pseudo-terminal (with libedit history, and the plain
 * line reader of a build without it), commands piped in on stdin, --json,
 * payloads from files and stdin (binary), the environment, -r/-i, --stat,
 * --latency, --latency-history, and the AUTH warning of listen.
 *
 * Binaries from meson: NET001_CLI, NET001_CLI_PLAIN (the same CLI built
 * without libedit), NET001_SERVER.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "harness.h"
#include "test_cli_run.h"
#include "timing.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct srv server;
static char port[8], mport[8];
static char tmpdir[64];
static struct run run, bg;

static void cleanup(void)
{
	run_kill(&bg);
	srv_cleanup(&server);
	if (tmpdir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
}

TestSuite(cli_modes, .fini = cleanup, .timeout = 90);

static void start(const char *const *args)
{
	bg.pid = -1;
	cr_assert_eq(srv_start(&server, args), 0, "server did not start");
	snprintf(port, sizeof port, "%u", server.port);
	snprintf(mport, sizeof mport, "%u", server.metrics_port);
}

static const char *make_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/net001-cli-modes-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	return tmpdir;
}

/* tmpdir/name with the given bytes. */
static const char *write_file(const char *name, const void *p, size_t n)
{
	static char path[8][128];
	static int k;
	char *out = path[k++ % 8];
	if (!tmpdir[0])
		make_tmpdir();
	snprintf(out, 128, "%s/%s", tmpdir, name);
	FILE *f = fopen(out, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
	return out;
}

static void expect_ok(struct run *r, const char *what)
{
	cr_assert_eq(r->status, 0, "%s: exit %d, stderr: %s", what, r->status, r->err);
}

/* ---- a pseudo-terminal ------------------------------------------------------ */

struct tty {
	pid_t pid;
	int fd;
	char out[65536];
	size_t len;
};

static void tty_spawn(struct tty *t, const char *bin, const char *const *args,
                      const char *home)
{
	const char *argv[32] = { bin };
	size_t n = 1;
	for (; args && *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	struct winsize ws = { .ws_row = 40, .ws_col = 120 };
	t->len = 0;
	t->out[0] = '\0';
	t->pid = forkpty(&t->fd, NULL, NULL, &ws);
	cr_assert_geq(t->pid, 0, "forkpty: %s", strerror(errno));
	if (t->pid == 0) {
		setenv("HOME", home, 1);
		setenv("TERM", "xterm", 1);
		unsetenv("NET001_CLI_HISTFILE");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
}

/* Read until needle has appeared `times` times in everything read. */
static bool tty_wait(struct tty *t, const char *needle, size_t times, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	while (str_count(t->out, needle) < times) {
		int64_t left = (int64_t)end - (int64_t)mono_ms();
		if (left <= 0)
			return false;
		struct pollfd p = { .fd = t->fd, .events = POLLIN };
		if (poll(&p, 1, (int)(left < 100 ? left : 100)) <= 0)
			continue;
		ssize_t n = read(t->fd, t->out + t->len, sizeof t->out - 1 - t->len);
		if (n <= 0)
			return false;
		t->len += (size_t)n;
		t->out[t->len] = '\0';
	}
	return true;
}

static void tty_type(struct tty *t, const char *s)
{
	cr_assert_eq(write(t->fd, s, strlen(s)), (ssize_t)strlen(s));
}

/*
 * Wait until the line editor reads keys: libedit prints the prompt while
 * the terminal is still in canonical mode and switches it to raw mode
 * only when it starts reading. Keys typed in between are the kernel's
 * canonical input, which the switch turns into something else (a Ctrl-D
 * becomes a NUL, a line may be dropped), so a test types, as a person
 * does, once the editor is listening. The slave's modes are read through
 * its device node; the descriptor is closed again at once.
 */
static bool tty_editing(struct tty *t, int timeout_ms)
{
	const char *name = ptsname(t->fd);
	if (!name)
		return false;
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	do {
		int fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		struct termios tio;
		bool raw = fd >= 0 && tcgetattr(fd, &tio) == 0 && !(tio.c_lflag & ICANON);
		if (fd >= 0)
			close(fd);
		if (raw)
			return true;
		tty_wait(t, "\x01\x02 never", 1, 5);
	} while (mono_ms() < end);
	return false;
}

/* Wait for the n-th prompt and for the editor to read, then type s. */
static void tty_type_at(struct tty *t, const char *prompt, size_t n, const char *s)
{
	cr_assert(tty_wait(t, prompt, n, 10000), "no prompt %zu: %s", n, t->out);
	cr_assert(tty_editing(t, 10000), "the line editor never reads: %s", t->out);
	tty_type(t, s);
}

static int tty_finish(struct tty *t, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	int st;
	for (;;) {
		/* Keep draining, so the child never blocks on a full terminal. */
		tty_wait(t, "\x01\x02 never", 1, 50);
		pid_t w = waitpid(t->pid, &st, WNOHANG);
		if (w == t->pid)
			break;
		if (mono_ms() > end) {
			kill(t->pid, SIGKILL);
			waitpid(t->pid, &st, 0);
			close(t->fd);
			return -1;
		}
	}
	close(t->fd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* ---- interactive ------------------------------------------------------------ */

/* The CLI at bin, talking to the test's server, in a terminal with
 * HOME=home, up to its first prompt ("127.0.0.1:PORT> ", into prompt). */
static void tty_start(struct tty *t, const char *bin, const char *home, char *prompt,
                      size_t cap)
{
	tty_spawn(t, bin, ARGS("--port", port), home);
	snprintf(prompt, cap, "127.0.0.1:%s> ", port);
	cr_assert(tty_wait(t, prompt, 1, 10000), "no prompt: %s", t->out);
}

/* Where the CLI keeps its history under home. */
static const char *history_path(const char *home)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/.net001_cli_history", home);
	return path;
}

Test(cli_modes, interactive_prompt_with_history)
{
	const char *le = getenv("NET001_CLI_LIBEDIT");
	if (le && strcmp(le, "0") == 0) {
		/* Built with -Dlibedit=disabled: net001-cli is the plain reader,
		 * which interactive_without_libedit tests; here it must not
		 * pretend to keep a history. */
		start(NULL);
		const char *home = make_tmpdir();
		static struct tty t0;
		char prompt[32];
		tty_start(&t0, cli_binary(), home, prompt, sizeof prompt);
		tty_type(&t0, "echo x\r");
		cr_assert(tty_wait(&t0, "\nx\r\n", 1, 10000), "%s", t0.out);
		tty_type(&t0, "quit\r");
		cr_assert_eq(tty_finish(&t0, 10000), 0);
		cr_assert_eq(access(history_path(home), F_OK), -1,
		             "no history file without libedit");
		return;
	}
	start(NULL);
	const char *home = make_tmpdir();
	static struct tty t;
	char prompt[32];
	tty_start(&t, cli_binary(), home, prompt, sizeof prompt);

	tty_type_at(&t, prompt, 1, "echo \"hi there\"\r");
	cr_assert(tty_wait(&t, "\nhi there\r\n", 1, 10000), "no echo reply: %s", t.out);
	/* Up arrow: the last line comes back from the history; run it again. */
	tty_type_at(&t, prompt, 2, "\x1b[A");
	tty_type(&t, "\r");
	cr_assert(tty_wait(&t, "\nhi there\r\n", 2, 10000), "history recall: %s", t.out);
	tty_type_at(&t, prompt, 3, "2 ping\r");
	cr_assert(tty_wait(&t, "1 sent, 1 received, 0 lost", 2, 10000), "%s", t.out);
	tty_type_at(&t, prompt, 4, "frob\r");
	cr_assert(tty_wait(&t, "net001-cli: unknown command 'frob'", 1, 10000), "%s", t.out);
	tty_type_at(&t, prompt, 5, "help\r");
	cr_assert(tty_wait(&t, "'N command' runs it N times", 1, 10000), "%s", t.out);
	/* A running command stops at Ctrl-C and the prompt comes back. */
	tty_type_at(&t, prompt, 6, "ping -c 0 -i 100\r");
	cr_assert(tty_wait(&t, "seq=2 ", 1, 10000), "%s", t.out);
	tty_type(&t, "\x03");
	cr_assert(tty_wait(&t, "ping statistics", 1, 10000), "%s", t.out);
	/* Ctrl-D at an empty prompt leaves, status 0. */
	tty_type_at(&t, prompt, 7, "\x04");
	cr_assert_eq(tty_finish(&t, 10000), 0, "Ctrl-D exits 0: %s", t.out);

	const char *hist = slurp(history_path(home));
	cr_assert_not_null(hist, "no history file");
	/* libedit keeps spaces as \040 */
	cr_assert_eq(str_count(hist, "echo\\040\"hi\\040there\"\n"), 1, "history: %s", hist);
	cr_assert_eq(str_count(hist, "2\\040ping\n"), 1, "history: %s", hist);
	cr_assert_eq(str_count(hist, "help\n"), 1, "history: %s", hist);

	/* A new session finds the old history. */
	static struct tty t2;
	tty_start(&t2, cli_binary(), home, prompt, sizeof prompt);
	tty_type_at(&t2, prompt, 1, "\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A");
	tty_type(&t2, "\r");
	cr_assert(tty_wait(&t2, "\nhi there\r\n", 1, 10000), "history from the file: %s", t2.out);
	tty_type_at(&t2, prompt, 2, "quit\r");
	cr_assert_eq(tty_finish(&t2, 10000), 0);
}

Test(cli_modes, interactive_without_libedit)
{
	start(NULL);
	const char *home = make_tmpdir();
	const char *plain = getenv("NET001_CLI_PLAIN");
	cr_assert(plain && *plain);
	static struct tty t;
	char prompt[32];
	tty_start(&t, plain, home, prompt, sizeof prompt);
	tty_type(&t, "echo plain\r");
	cr_assert(tty_wait(&t, "\nplain\r\n", 1, 10000), "%s", t.out);
	cr_assert(tty_wait(&t, prompt, 2, 10000), "%s", t.out);
	tty_type(&t, "\x04");
	cr_assert_eq(tty_finish(&t, 10000), 0, "%s", t.out);
	cr_assert_eq(access(history_path(home), F_OK), -1, "no history without libedit");
}

Test(cli_modes, script_on_stdin)
{
	start(NULL);
	const char script[] =
		"echo one\n"
		"ping\n"
		"echo \"two\\tthree\"\n"
		"3 echo again\n"
		"broadcast -f -\n"
		"echo four\n";
	const char *path = write_file("script", script, sizeof script - 1);
	cr_assert_eq(cli_spawn(&run, ARGS("--port", port), path), 0);
	run_finish(&run, 20000);
	cr_assert_eq(run.status, 2, "the -f - line fails (usage), the rest run: %s", run.err);
	cr_assert_not_null(strstr(run.err, "broadcast: -f -: stdin holds the commands here"),
	                   "%s", run.err);
	cr_assert(strncmp(run.out, "one\nPONG from", 13) == 0, "stdout: %s", run.out);
	cr_assert_not_null(strstr(run.out, "\ntwo\tthree\nagain\nagain\nagain\nfour\n"),
	                   "stdout: %s", run.out);
}

/* ---- --json, payloads ------------------------------------------------------- */

Test(cli_modes, json_output)
{
	start(NULL);
	cli_run(&run, ARGS("--port", port, "--json", "ping", "-c", "2", "-i", "0"));
	expect_ok(&run, "ping");
	cr_assert(str_matches(run.out, "^\\{\"type\":\"pong\",\"seq\":1,\"rtt_ms\":[0-9.]+\\}$"),
	          "%s", run.out);
	cr_assert(str_matches(run.out, "^\\{\"type\":\"ping_summary\",\"sent\":2,\"received\":2,"
	                  "\"lost\":0,\"rtt_min_ms\":[0-9.]+,\"rtt_avg_ms\":[0-9.]+,"
	                  "\"rtt_max_ms\":[0-9.]+\\}$"), "%s", run.out);
	cli_run(&run, ARGS("--port", port, "--json", "echo", "a \"q\"\n\x01"));
	expect_ok(&run, "echo");
	cr_assert_str_eq(run.out,
	                 "{\"type\":\"echo_reply\",\"len\":7,\"payload\":\"a \\\"q\\\"\\n\\u0001\"}\n");
	/* Bytes that are not UTF-8 come as base64. */
	static const uint8_t bin[] = { 0xff, 0x00, 0xfe, 'A' };
	const char *f = write_file("bin4", bin, sizeof bin);
	cli_run(&run, ARGS("--port", port, "--json", "echo", "-f", f));
	expect_ok(&run, "echo -f");
	cr_assert_str_eq(run.out, "{\"type\":\"echo_reply\",\"len\":4,\"payload_base64\":\"/wD+QQ==\"}\n");
	cli_run(&run, ARGS("--port", port, "--json", "send", f));
	expect_ok(&run, "send");
	cr_assert_str_eq(run.out, "{\"type\":\"send\",\"bytes\":4,\"frames\":1}\n");

	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "--json", "listen", "-n", "2"), NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "%s", bg.err);
	cli_run(&run, ARGS("--port", port, "--json", "broadcast", "héllo"));
	expect_ok(&run, "broadcast");
	cr_assert_str_eq(run.out, "{\"type\":\"broadcast\",\"len\":6}\n");
	cli_run(&run, ARGS("--port", port, "broadcast", "-f", f));
	expect_ok(&run, "broadcast -f");
	cr_assert_eq(run_finish(&bg, 10000), 0, "%s", bg.err);
	cr_assert_str_eq(bg.out,
	                 "{\"type\":\"broadcast\",\"len\":6,\"payload\":\"héllo\"}\n"
	                 "{\"type\":\"broadcast\",\"len\":4,\"payload_base64\":\"/wD+QQ==\"}\n");
}

Test(cli_modes, payload_from_file_and_stdin_is_binary_safe)
{
	start(NULL);
	static uint8_t data[65535];
	unsigned x = 7;
	for (size_t i = 0; i < sizeof data; i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (uint8_t)(x >> 16);
	}
	data[10] = 0;
	data[11] = '\n';
	const char *f = write_file("max", data, sizeof data);
	cli_run(&run, ARGS("--port", port, "echo", "-f", f));
	expect_ok(&run, "echo -f");
	cr_assert_eq(run.out_len, sizeof data, "all bytes, no newline added");
	cr_assert(memcmp(run.out, data, sizeof data) == 0, "the reply is the file");

	const char *small = write_file("small", data, 300);
	cr_assert_eq(cli_spawn(&run, ARGS("--port", port, "echo", "--file", "-"), small), 0);
	run_finish(&run, 10000);
	expect_ok(&run, "echo -f -");
	cr_assert_eq(run.out_len, 300);
	cr_assert(memcmp(run.out, data, 300) == 0);

	static uint8_t big[65536];
	const char *b = write_file("big", big, sizeof big);
	cli_run(&run, ARGS("--port", port, "echo", "-f", b));
	cr_assert_eq(run.status, 2, "%s", run.err);
	cr_assert_not_null(strstr(run.err, "more than 65535 bytes"), "%s", run.err);

	/* A broadcast from stdin reaches a listener byte for byte (escaped). */
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "listen", "-n", "1"), NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "%s", bg.err);
	const char *nul = write_file("nul", "a\0b\n", 4);
	cr_assert_eq(cli_spawn(&run, ARGS("--port", port, "broadcast", "-f", "-"), nul), 0);
	run_finish(&run, 10000);
	expect_ok(&run, "broadcast -f -");
	cr_assert_eq(run_finish(&bg, 10000), 0, "%s", bg.err);
	cr_assert_str_eq(bg.out, "a\\x00b\\n\n");
}

/* ---- environment, repeats ------------------------------------------------- */

Test(cli_modes, environment_host_port_auth)
{
	const char *auth = write_file("users",
		"alice:1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n", 71);
	start(ARGS("--auth-file", auth));
	setenv("NET001_HOST", "localhost", 1);
	setenv("NET001_PORT", port, 1);
	cli_run(&run, ARGS("echo", "from env"));
	expect_ok(&run, "echo");
	cr_assert_str_eq(run.out, "from env\n");
	cli_run(&run, ARGS("broadcast", "x"));
	cr_assert_eq(run.status, 1, "%s", run.err);
	cr_assert_not_null(strstr(run.err, "AUTH_REQUIRED"), "%s", run.err);
	setenv("NET001_AUTH", "alice:s3cret", 1);
	cli_run(&run, ARGS("broadcast", "x"));
	expect_ok(&run, "broadcast with NET001_AUTH");
	/* A flag beats the variable. */
	cli_run(&run, ARGS("--auth", "alice:wrong", "broadcast", "x"));
	cr_assert_eq(run.status, 1);
	cr_assert_not_null(strstr(run.err, "authentication failed for user 'alice'"), "%s", run.err);
	cli_run(&run, ARGS("--port", "1", "echo", "x"));
	cr_assert_eq(run.status, 3, "--port beats NET001_PORT: %s", run.err);
	unsetenv("NET001_HOST");
	unsetenv("NET001_PORT");
	unsetenv("NET001_AUTH");
}

Test(cli_modes, repeat_with_interval)
{
	start(NULL);
	uint64_t t0 = mono_ms();
	cli_run(&run, ARGS("--port", port, "-r", "3", "-i", "0.3", "echo", "again"));
	uint64_t took = mono_ms() - t0;
	expect_ok(&run, "-r 3");
	cr_assert_str_eq(run.out, "again\nagain\nagain\n");
	cr_assert_geq(took, 600, "two pauses of 0.3 s: %llu ms", (unsigned long long)took);

	/* -r 0: until Ctrl-C, exit 0. */
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "--repeat=0", "--interval=0.05",
	                                 "echo", "loop"), NULL), 0);
	cr_assert(run_wait_for(&bg, "loop\nloop\nloop\n", 10000), "%s", bg.out);
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0, "%s", bg.err);

	/* A failing run makes the status, the others still run. */
	cli_run(&run, ARGS("--port", port, "-r", "2", "ping", "-c", "1"));
	expect_ok(&run, "ping twice");
	cr_assert_eq(str_count(run.out, "1 sent, 1 received"), 2, "%s", run.out);
}

/* ---- --stat, --latency -------------------------------------------------------- */

Test(cli_modes, stat_lines_from_metrics)
{
	start(NULL);
	/* Load: a pinger and a listener with broadcasts going to it. */
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "ping", "-c", "0", "-i", "5"), NULL), 0);
	cr_assert(run_wait_for(&bg, "seq=2 ", 10000), "%s", bg.out);
	cli_run(&run, ARGS("--port", port, "--stat", "-r", "2", "-i", "0.5"));
	expect_ok(&run, "--stat");
	cr_assert(str_matches(run.out, "^ *connections +msg/s +errors/s +deliveries/s$"), "%s", run.out);
	/* The pinger's connection is open; about 200 PINGs/s. */
	cr_assert(str_matches(run.out, "^ +1 +[1-9][0-9]+ +0 +0$"), "%s", run.out);
	cr_assert_eq(str_count(run.out, "\n"), 3, "a header and two lines: %s", run.out);

	cli_run(&run, ARGS("--port", port, "--json", "--stat", "-r", "1", "-i", "0.3"));
	expect_ok(&run, "--stat --json");
	cr_assert(str_matches(run.out, "^\\{\"type\":\"stat\",\"connections\":1,\"msgs_per_s\":[1-9][0-9.]+,"
	                  "\"errors_per_s\":0\\.0,\"deliveries_per_s\":0\\.0,\"frames_total\":[0-9]+,"
	                  "\"errors_total\":0,\"deliveries_total\":0,\"interval_s\":0\\.[0-9]+\\}$"),
	          "%s", run.out);
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0);

	/* Errors and deliveries: a broadcast refused (rate limit is per
	 * connection, so use an AUTH-less broadcast to two listeners). */
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "listen"), NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "%s", bg.err);
	static struct run st;
	cr_assert_eq(cli_spawn(&st, ARGS("--port", port, "--json", "--stat", "-r", "1", "-i", "1"),
	                       NULL), 0);
	sleep_ms(200);
	cli_run(&run, ARGS("--port", port, "-r", "5", "broadcast", "x"));
	expect_ok(&run, "broadcasts");
	cr_assert_eq(run_finish(&st, 10000), 0, "%s", st.err);
	/* The listener got 5; a broadcast may also reach the connection of the
	 * run before it while the server is still closing it. */
	const char *dt = strstr(st.out, "\"deliveries_total\":");
	cr_assert_not_null(dt, "%s", st.out);
	cr_assert_geq(strtol(dt + 19, NULL, 10), 5, "%s", st.out);
	kill(bg.pid, SIGINT);
	run_finish(&bg, 5000);
}

Test(cli_modes, stat_errors)
{
	/* Nothing on the metrics port: exit 3; a page that is not ours: 1. */
	cli_run(&run, ARGS("--port", "5000", "--metrics-port", "1", "--stat", "-r", "1"));
	cr_assert_eq(run.status, 3, "%s", run.err);
	cr_assert(strncmp(run.err, "net001-cli: --stat: 127.0.0.1:1: ", 33) == 0, "%s", run.err);
}

Test(cli_modes, latency_and_history)
{
	start(NULL);
	cli_run(&run, ARGS("--port", port, "--latency", "-r", "2", "-i", "0.3"));
	expect_ok(&run, "--latency");
	cr_assert(str_matches(run.out, "^min: [0-9]+\\.[0-9]{3} ms, max: [0-9]+\\.[0-9]{3} ms, "
	                  "avg: [0-9]+\\.[0-9]{3} ms \\([1-9][0-9]* samples\\)$"), "%s", run.out);
	cr_assert_eq(str_count(run.out, "\n"), 2, "%s", run.out);

	cli_run(&run, ARGS("--port", port, "--latency-history", "-r", "2", "-i", "0.3"));
	expect_ok(&run, "--latency-history");
	cr_assert_eq(str_count(run.out, "seconds range\n"), 2, "%s", run.out);
	cr_assert(str_matches(run.out, "samples\\) -- 0\\.[3-9][0-9] seconds range$"), "%s", run.out);

	cli_run(&run, ARGS("--port", port, "--json", "--latency", "-r", "1", "-i", "0.2"));
	expect_ok(&run, "--latency --json");
	cr_assert(str_matches(run.out, "^\\{\"type\":\"latency\",\"min_ms\":[0-9.]+,\"max_ms\":[0-9.]+,"
	                  "\"avg_ms\":[0-9.]+,\"samples\":[1-9][0-9]*\\}$"), "%s", run.out);

	/* Until Ctrl-C. */
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "--latency", "-i", "0.1"), NULL), 0);
	cr_assert(run_wait_for(&bg, "samples)\nmin", 10000), "%s", bg.out);
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0, "%s", bg.err);

	srv_stop(&server, 10000);
	cli_run(&run, ARGS("--port", port, "--latency", "-r", "1"));
	cr_assert_eq(run.status, 3, "no server: %s", run.err);
}

/* ---- listen's AUTH warning ---------------------------------------------------- */

/* A one-page HTTP server for the metrics port, on a thread. */
struct page {
	int fd;
	uint16_t port;
	const char *body;
	int served;
};

static void *serve_page(void *arg)
{
	struct page *pg = arg;
	for (;;) {
		int c = accept(pg->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		char req[2048];
		ssize_t n = recv(c, req, sizeof req, 0);
		(void)n;
		char resp[4096];
		int len = snprintf(resp, sizeof resp, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
		                   "version=0.0.4\r\nContent-Length: %zu\r\n\r\n%s",
		                   strlen(pg->body), pg->body);
		if (send(c, resp, (size_t)len, MSG_NOSIGNAL) == len)
			pg->served++;
		close(c);
	}
}

static void page_start(struct page *pg, pthread_t *tid)
{
	pg->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	cr_assert_eq(bind(pg->fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(pg->fd, 8), 0);
	cr_assert_eq(getsockname(pg->fd, (struct sockaddr *)&a, &len), 0);
	pg->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(tid, NULL, serve_page, pg), 0);
}

Test(cli_modes, listen_warns_when_the_server_requires_auth)
{
	/*
	 * The server's /metrics says whether it requires AUTH
	 * (net001_config_auth). The page here stands in for it on another
	 * port (--metrics-port), so the CLI's reading of it is what is tested.
	 */
	const char *auth = write_file("users",
		"alice:1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n", 71);
	start(ARGS("--auth-file", auth));
	static struct page pg = {
		.body = "# TYPE net001_config_auth gauge\nnet001_config_auth 1\n",
	};
	pthread_t tid;
	page_start(&pg, &tid);
	char ps[8];
	snprintf(ps, sizeof ps, "%u", pg.port);
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "--metrics-port", ps, "listen"), NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "%s", bg.err);
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0, "%s", bg.err);
	const char *warn = "net001-cli: warning: the server requires AUTH (its /metrics has "
	                   "net001_config_auth 1): a listener that has not authenticated gets "
	                   "no broadcasts; give --auth USER:TOKEN or NET001_AUTH\nlistening on ";
	cr_assert(strncmp(bg.err, warn, strlen(warn)) == 0, "%s", bg.err);
	cr_assert_geq(pg.served, 1);

	/* Authenticated: no check, no warning. */
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "--metrics-port", ps, "--auth",
	                                 "alice:s3cret", "listen", "-n", "1"), NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "%s", bg.err);
	cli_run(&run, ARGS("--port", port, "--auth", "alice:s3cret", "broadcast", "ok"));
	expect_ok(&run, "broadcast");
	cr_assert_eq(run_finish(&bg, 10000), 0, "%s", bg.err);
	cr_assert_null(strstr(bg.err, "warning"), "%s", bg.err);
	shutdown(pg.fd, SHUT_RDWR);
	close(pg.fd);
	pthread_join(tid, NULL);
}

Test(cli_modes, listen_warns_from_the_real_server)
{
	/* The server's own /metrics (net001_config_auth 1 with --auth-file). */
	const char *auth = write_file("users",
		"alice:1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n", 71);
	start(ARGS("--auth-file", auth));
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "listen"), NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "%s", bg.err);
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0, "%s", bg.err);
	cr_assert(strncmp(bg.err, "net001-cli: warning: the server requires AUTH", 45) == 0,
	          "%s", bg.err);
	/* With the metrics port off, the CLI cannot tell and says nothing. */
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "--metrics-port", "0", "listen"), NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "%s", bg.err);
	kill(bg.pid, SIGINT);
	cr_assert_eq(run_finish(&bg, 5000), 0, "%s", bg.err);
	cr_assert_null(strstr(bg.err, "warning"), "%s", bg.err);
}

Test(cli_modes, listen_quiet_when_auth_is_off)
{
	start(NULL);
	cr_assert_eq(cli_spawn(&bg, ARGS("--port", port, "listen", "-n", "1"), NULL), 0);
	cr_assert(run_wait_for(&bg, "listening on", 10000), "%s", bg.err);
	cli_run(&run, ARGS("--port", port, "broadcast", "hi"));
	expect_ok(&run, "broadcast");
	cr_assert_eq(run_finish(&bg, 10000), 0, "%s", bg.err);
	cr_assert_str_eq(bg.out, "hi\n");
	char want[96];
	snprintf(want, sizeof want, "listening on 127.0.0.1:%s (Ctrl-C to quit)\n", port);
	cr_assert_str_eq(bg.err, want, "no warning: %s", bg.err);
}
