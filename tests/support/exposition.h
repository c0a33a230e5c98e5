/*
 * exposition.h - reading Prometheus text exposition in tests: sample
 * values (from a text or straight from a scrape), line counts, the
 * families the exporter must expose, and a run of promtool over a scrape.
 *
 * Test code, any thread; text is a NUL-terminated scrape body. Nothing
 * keeps a pointer past a call.
 */
#ifndef NET001_TEST_EXPOSITION_H
#define NET001_TEST_EXPOSITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every family net001 exposes, with its TYPE (README "Metrics"). */
struct metric_family {
	const char *name;
	const char *type;
};
#define METRIC_FAMILIES 23
extern const struct metric_family metric_families[METRIC_FAMILIES];

/*
 * The value of the sample whose series (name plus labels, exactly as
 * rendered, e.g. net001_errors_total{code="bad_crc"}) starts a line of text.
 * Returns false if no such line.
 */
bool sample(const char *text, const char *series, double *out);
/* The same for integer samples, parsed exactly. */
bool sample_u64(const char *text, const char *series, uint64_t *out);

/*
 * Scrape /metrics on 127.0.0.1:port and read one integer sample from it:
 * false if the scrape does not answer 200 or has no such series.
 */
bool scrape_u64(uint16_t port, const char *series, uint64_t *out);

/* Number of lines of text equal to line. */
unsigned count_lines(const char *text, const char *line);
/* Number of lines of text that start with prefix. */
unsigned count_prefix(const char *text, const char *prefix);

/* promtool in $PATH into out: true, or false if there is none. */
bool promtool_path(char *out, size_t cap);

/*
 * Run `promtool check metrics` (tool from promtool_path) on text[0, len).
 * Its stdout and stderr go into report (NUL-terminated, cut to cap).
 * Returns its exit status, 128 + signal, or -1 if it could not be run.
 */
int promtool_check(const char *tool, const char *text, size_t len,
                   char *report, size_t cap);

#endif
