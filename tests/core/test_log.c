/*
 * core/log: the text and JSON formats, escaping, cutting overlong lines,
 * the rate limit's count of suppressed lines, the worker thread's core.
 * stderr goes to a file for each test; lines whose exact form is not
 * spelled out here are checked by /usr/bin/python3's json module.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static char path[64];
static int saved = -1;

/* stderr into a fresh file until captured(). */
static void capture(void)
{
	snprintf(path, sizeof path, "/tmp/net001-test-log-%d", (int)getpid());
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* What was written since capture(), NUL-terminated (caller frees). */
static char *captured(size_t *len)
{
	dup2(saved, STDERR_FILENO);
	close(saved);
	FILE *f = fopen(path, "rb");
	cr_assert(f);
	static char buf[4 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	char *copy = malloc(n + 1);
	memcpy(copy, buf, n + 1);
	return copy;
}

static void fini(void)
{
	if (path[0])
		unlink(path);
	log_set_format(LOG_FORMAT_TEXT);
	log_set_debug(false);
}

/* The line without its time: what follows "time":"...", */
static const char *after_time(const char *line)
{
	const char *p = strstr(line, "Z\",");
	cr_assert(p, "no time in %s", line);
	return p + 3;
}

/* Every line of the captured file is one JSON object whose first keys
 * are time, level, core, event, msg (checked by Python). */
static void assert_json_file(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd,
	         "/usr/bin/python3 -c '\n"
	         "import json, sys\n"
	         "data = open(sys.argv[1], \"rb\").read()\n"
	         "assert data.endswith(b\"\\n\"), data[-40:]\n"
	         "for l in data.decode(\"utf-8\").split(\"\\n\")[:-1]:\n"
	         "    o = json.loads(l)\n"
	         "    assert list(o)[:5] == [\"time\", \"level\", \"core\", \"event\", \"msg\"], l\n"
	         "' %s", path);
	cr_assert_eq(system(cmd), 0, "not JSON lines: %s", path);
}

TestSuite(log, .fini = fini);

Test(log, text_line)
{
	capture();
	log_event(LOG_WARN, "x", LOG_FIELDS(LOG_UINT("n", 5)), "hello %d", 5);
	log_msg(LOG_ERROR, "plain");
	char *out = captured(NULL);
	regex_t re;
	cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
	                          "net001 warn: hello 5\n[0-9T:.Z-]+ net001 error: plain\n$",
	                     REG_EXTENDED), 0);
	cr_assert_eq(regexec(&re, out, 0, NULL, 0), 0, "%s", out);
	regfree(&re);
	free(out);
}

Test(log, json_fields)
{
	log_set_format(LOG_FORMAT_JSON);
	capture();
	log_event(LOG_INFO, "listening",
	          LOG_FIELDS(LOG_STR("host", "::1"), LOG_UINT("port", 5000), LOG_INT("neg", -3),
	                     LOG_BOOL("on", true), LOG_BOOL("off", false),
	                     LOG_STR("absent", NULL), LOG_UINT("big", UINT64_MAX)),
	          "hello %s", "world");
	log_msg(LOG_DEBUG, "plain %d", 1);
	char *out = captured(NULL);
	cr_assert(strncmp(out, "{\"time\":\"", 9) == 0, "%s", out);
	const char *rest = after_time(out);
	const char *want =
		"\"level\":\"info\",\"core\":null,\"event\":\"listening\",\"msg\":\"hello world\","
		"\"host\":\"::1\",\"port\":5000,\"neg\":-3,\"on\":true,\"off\":false,"
		"\"big\":18446744073709551615}\n";
	cr_assert(strncmp(rest, want, strlen(want)) == 0, "got %s", rest);
	rest = after_time(rest + strlen(want));
	cr_assert_str_eq(rest, "\"level\":\"debug\",\"core\":null,\"event\":\"message\","
	                       "\"msg\":\"plain 1\"}\n");
	free(out);
	assert_json_file();
}

Test(log, json_escaping)
{
	log_set_format(LOG_FORMAT_JSON);
	capture();
	/* Quote, backslash, control characters, DEL, valid UTF-8 (2, 3 and 4
	 * bytes), then invalid: a lone continuation byte, 0xff, an overlong
	 * '/', a surrogate, a sequence cut short at the end. */
	log_event(LOG_ERROR, "e", LOG_FIELDS(LOG_STR("file", "a\"b\\c\n")),
	          "%s", "q\" b\\ \n\r\t\b\f\x01\x1f\x7f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
	          "\x80 \xff \xc0\xaf \xed\xa0\x80 \xe2\x82");
	char *out = captured(NULL);
	const char *rest = after_time(out);
	cr_assert_str_eq(rest,
		"\"level\":\"error\",\"core\":null,\"event\":\"e\",\"msg\":\"q\\\" b\\\\ \\n\\r\\t\\b\\f"
		"\\u0001\\u001f\x7f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
		"\\ufffd \\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\","
		"\"file\":\"a\\\"b\\\\c\\n\"}\n");
	free(out);
	assert_json_file();
}

static void *thread_line(void *arg)
{
	log_set_thread_core(*(int *)arg);
	log_msg(LOG_INFO, "from a worker");
	return NULL;
}

Test(log, core_of_the_thread)
{
	log_set_format(LOG_FORMAT_JSON);
	capture();
	int core = 7;
	pthread_t t;
	pthread_create(&t, NULL, thread_line, &core);
	pthread_join(t, NULL);
	log_msg(LOG_INFO, "from main");
	char *out = captured(NULL);
	cr_assert(strstr(out, "\"core\":7,\"event\":\"message\",\"msg\":\"from a worker\""), "%s", out);
	cr_assert(strstr(out, "\"core\":null,\"event\":\"message\",\"msg\":\"from main\""), "%s", out);
	free(out);
}

Test(log, limit_counts_suppressed_lines)
{
	struct log_limit l = { 0 };
	log_set_format(LOG_FORMAT_JSON);
	capture();
	for (int i = 0; i < 15; i++)
		log_event_limited(&l, 100, LOG_WARN, "burst", LOG_FIELDS(LOG_INT("i", i)), "line %d", i);
	/* Debug lines without --debug: neither printed nor counted. */
	for (int i = 0; i < 3; i++)
		log_limited(&l, 100, LOG_DEBUG, "debug %d", i);
	cr_assert_not(log_limit_take(&l, 100, LOG_DEBUG));
	log_limited(&l, 101, LOG_WARN, "next second");
	log_set_format(LOG_FORMAT_TEXT);
	for (int i = 0; i < 12; i++)
		log_limited(&l, 102, LOG_WARN, "text %d", i);
	log_limited(&l, 103, LOG_WARN, "later");
	char *out = captured(NULL);

	int lines = 0;
	for (char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	cr_assert_eq(lines, 10 + 1 + 10 + 1, "%s", out);
	cr_assert(strstr(out, "\"msg\":\"line 9\",\"i\":9}"), "%s", out);
	cr_assert_null(strstr(out, "line 10"), "%s", out);
	cr_assert(strstr(out, "\"msg\":\"next second\",\"suppressed\":5}"), "%s", out);
	cr_assert(strstr(out, "net001 warn: later (2 similar lines suppressed)\n"), "%s", out);
	cr_assert_null(strstr(out, "debug"), "%s", out);
	free(out);
}

Test(log, debug_lines_need_debug)
{
	struct log_limit l = { 0 };
	log_set_debug(true);
	capture();
	log_limited(&l, 5, LOG_DEBUG, "shown");
	cr_assert(log_limit_take(&l, 5, LOG_DEBUG));
	char *out = captured(NULL);
	cr_assert(strstr(out, "net001 debug: shown\n"), "%s", out);
	free(out);
}

Test(log, fatal)
{
	capture();
	log_fatal("net001-server", "port %d: %s", 5000, "Address in use");
	log_set_format(LOG_FORMAT_JSON);
	log_fatal("net001-server", "port %d: %s", 5000, "Address in use");
	char *out = captured(NULL);
	cr_assert(strncmp(out, "net001-server: port 5000: Address in use\n{", 42) == 0, "%s", out);
	cr_assert_str_eq(after_time(out + 41), "\"level\":\"error\",\"core\":null,"
	                 "\"event\":\"start_failed\",\"msg\":\"port 5000: Address in use\"}\n");
	free(out);
}

/* Random bytes (no NUL) of any length in the message and the fields,
 * control characters and broken UTF-8 included: every line whole, valid
 * JSON, within the line buffer, the message cut first at 1023 bytes. */
Test(log, any_bytes_make_valid_json, .timeout = 60)
{
	static char msg[3000], f1[6000], f2[300];
	uint64_t s = 0x9e3779b97f4a7c15u;
	size_t total;
	log_set_format(LOG_FORMAT_JSON);
	capture();
	for (int i = 0; i < 400; i++) {
		size_t lens[3] = { (size_t)(i * 7) % sizeof msg, (size_t)(i * 131) % sizeof f1,
		                   (size_t)i % sizeof f2 };
		char *bufs[3] = { msg, f1, f2 };
		for (int b = 0; b < 3; b++) {
			for (size_t k = 0; k < lens[b]; k++) {
				s ^= s << 13;
				s ^= s >> 7;
				s ^= s << 17;
				/* Mostly printable, often escapes and high bytes. */
				unsigned v = (unsigned)(s >> 32) % 100;
				bufs[b][k] = (char)(v < 60 ? 'a' + v % 26 : v < 75 ? '"' + (v % 2) * 58
				                   : v < 85 ? 1 + v % 31 : 0x80 + (unsigned)(s >> 40) % 128);
			}
			bufs[b][lens[b]] = '\0';
		}
		log_event((enum log_level)(i % 4), "fuzz", LOG_FIELDS(LOG_STR("a", f1), LOG_UINT("n", i), LOG_STR("b", f2)),
		          "%s", msg);
	}
	char *out = captured(&total);
	size_t lines = 0, longest = 0;
	for (char *p = out, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
		lines++;
		if ((size_t)(nl - p) > longest)
			longest = (size_t)(nl - p);
		cr_assert(nl > p && nl[-1] == '}', "line %zu does not end the object", lines);
	}
	cr_assert_eq(lines, 400);
	cr_assert_leq(longest + 1, 4096, "a line of %zu bytes", longest + 1);
	free(out);
	assert_json_file();
}
