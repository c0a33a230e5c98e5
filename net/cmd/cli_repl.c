/*
 * cli_repl.c - net001-cli without a command: commands one per line.
 *
 * stdin a terminal: a prompt ("127.0.0.1:5000> "), line editing and a
 * history kept across runs (libedit, when the build has it: meson feature
 * 'libedit'; otherwise a plain line reader without history). stdin a file
 * or a pipe: the same commands read line by line with no prompt, for
 * scripts and tests; blank lines and lines starting with '#' are skipped.
 *
 * A line is split into words like a shell does it, in short: blanks
 * separate words; '...' keeps everything literal; "..." understands \\,
 * \", \n, \r, \t and \xHH; outside quotes a backslash keeps the next
 * character. "N command ..." (N a number) runs the command N times, -i
 * seconds apart. Built in: help, quit, exit. An error is reported and the
 * next line is read. In script mode the exit status is that of the last
 * command that failed (0 when none did); leaving the prompt is status 0. Ctrl-C stops the running command; at the
 * prompt, Ctrl-C or Ctrl-D leaves.
 */
#include "net/cmd/cli.h"

#include "core/opt.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if NET001_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#define MAX_WORDS 64
#define HISTORY_MAX 1000

struct words {
	int n;
	char *v[MAX_WORDS + 1];
	char *buf;              /* the words, each NUL-terminated */
};

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/*
 * Split line into w. Returns 0, or -1 with a message in err (unbalanced
 * quotes, too many words).
 */
static int split(const char *line, struct words *w, const char **err)
{
	size_t len = strlen(line);
	char *out = malloc(len + 1);
	const char *p = line;
	w->n = 0;
	w->buf = out;
	if (!out) {
		*err = "out of memory";
		return -1;
	}
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (!*p)
			break;
		if (w->n == MAX_WORDS) {
			*err = "too many words on the line";
			return -1;
		}
		w->v[w->n++] = out;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			if (*p == '\'') {
				const char *q = strchr(p + 1, '\'');
				if (!q) {
					*err = "unbalanced quotes";
					return -1;
				}
				memcpy(out, p + 1, (size_t)(q - p - 1));
				out += q - p - 1;
				p = q + 1;
			} else if (*p == '"') {
				for (p++; *p && *p != '"'; p++) {
					if (*p != '\\' || !p[1]) {
						*out++ = *p;
						continue;
					}
					p++;
					switch (*p) {
					case 'n': *out++ = '\n'; break;
					case 'r': *out++ = '\r'; break;
					case 't': *out++ = '\t'; break;
					case 'x':
						if (hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
							*out++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
							p += 2;
							break;
						}
						*out++ = 'x';
						break;
					default: *out++ = *p; break;
					}
				}
				if (*p != '"') {
					*err = "unbalanced quotes";
					return -1;
				}
				p++;
			} else if (*p == '\\' && p[1]) {
				*out++ = p[1];
				p += 2;
			} else {
				*out++ = *p++;
			}
		}
		*out++ = '\0';
	}
	w->v[w->n] = NULL;
	return 0;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* One line; *quit set by quit/exit. Returns the command's status. */
static int run_line(struct cli *o, const char *line, bool *quit)
{
	struct words w;
	const char *err = NULL;
	int rc = EXIT_OK;

	if (split(line, &w, &err) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		free(w.buf);
		return EXIT_USAGE;
	}
	if (w.n == 0 || w.v[0][0] == '#')
		goto out;
	char **argv = w.v;
	int argc = w.n;
	uint32_t times = 1;
	if (all_digits(argv[0])) {
		uint64_t n = 0;
		char msg[200];
		if (opt_parse_uint(argv[0], 1, 1000000000, NULL, "repeat count", &n,
		                   msg, sizeof msg) < 0) {
			fprintf(stderr, PROG ": %s\n", msg);
			rc = EXIT_USAGE;
			goto out;
		}
		times = (uint32_t)n;
		argv++;
		argc--;
		if (argc == 0) {
			fprintf(stderr, PROG ": a repeat count needs a command\n");
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0) {
		*quit = true;
		goto out;
	}
	cli_interrupted = 0;
	rc = cli_run_command_times(o, argc, argv, times);
	/* A Ctrl-C stays seen: a script stops; the prompt clears it. */
out:
	free(w.buf);
	return rc;
}

/* Script mode: stdin is not a terminal. */
static int run_script(struct cli *o)
{
	char *line = NULL;
	size_t cap = 0;
	int last = EXIT_OK;
	bool quit = false;
	while (!quit && !cli_interrupted && getline(&line, &cap, stdin) >= 0) {
		int rc = run_line(o, line, &quit);
		if (rc != EXIT_OK)
			last = rc;
	}
	free(line);
	return last;
}

#if NET001_HAVE_LIBEDIT
static char *history_path(void)
{
	const char *env = getenv("NET001_CLI_HISTFILE");
	if (env)
		return *env ? strdup(env) : NULL;
	const char *home = getenv("HOME");
	if (!home || !*home)
		return NULL;
	size_t n = strlen(home) + sizeof "/.net001_cli_history";
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/.net001_cli_history", home);
	return p;
}
#endif

/* A prompted line (malloc'd), or NULL at end of input or Ctrl-C. */
static char *read_prompted(const char *prompt)
{
#if NET001_HAVE_LIBEDIT
	return readline(prompt);
#else
	char *line = NULL;
	size_t cap = 0;
	fputs(prompt, stdout);
	fflush(stdout);
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0 || cli_interrupted) {
		free(line);
		return NULL;
	}
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	return line;
#endif
}

int cli_repl(struct cli *o)
{
	if (!isatty(STDIN_FILENO))
		return run_script(o);

	char peer[300], prompt[320];
	cli_peer(o->host, o->port, peer, sizeof peer);
	snprintf(prompt, sizeof prompt, "%s> ", peer);
#if NET001_HAVE_LIBEDIT
	char *hist = history_path();
	using_history();
	stifle_history(HISTORY_MAX);
	if (hist)
		read_history(hist);
#endif
	int last = EXIT_OK;
	bool quit = false;
	char *prev = NULL; /* the last line put in the history */
	while (!quit) {
		cli_interrupted = 0;
		char *line = read_prompted(prompt);
		if (!line) {
			putchar('\n');
			break;
		}
		const char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s) {
#if NET001_HAVE_LIBEDIT
			/* A line run again from the history is not kept twice. */
			if (!prev || strcmp(prev, line) != 0) {
				add_history(line);
				if (hist)
					write_history(hist);
				free(prev);
				prev = strdup(line);
			}
#endif
			int rc = run_line(o, line, &quit);
			if (rc != EXIT_OK)
				last = rc;
		}
		free(line);
	}
#if NET001_HAVE_LIBEDIT
	free(hist);
#endif
	free(prev);
	fflush(stdout);
	(void)last; /* at a prompt, errors were seen: leaving is not one */
	return EXIT_OK;
}
