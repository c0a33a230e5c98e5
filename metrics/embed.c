/*
 * embed.c - build-time helper: turn a file into a C source holding it as
 * a byte array, so the server carries the dashboard page in its binary.
 *
 *   net001-embed INPUT OUTPUT NAME
 *
 * writes `const unsigned char NAME[]` (the bytes plus a trailing NUL) and
 * `const size_t NAME_len` (the byte count without the NUL). Exit 1 with a
 * message on any read or write error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: net001-embed INPUT OUTPUT NAME\n");
		return 1;
	}
	FILE *in = fopen(argv[1], "rb");
	if (!in) {
		fprintf(stderr, "net001-embed: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	FILE *out = fopen(argv[2], "w");
	if (!out) {
		fprintf(stderr, "net001-embed: %s: %s\n", argv[2], strerror(errno));
		fclose(in);
		return 1;
	}
	fprintf(out, "/* Generated from %s by metrics/embed.c; do not edit. */\n"
	        "#include <stddef.h>\n"
	        "extern const unsigned char %s[];\n"
	        "extern const size_t %s_len;\n"
	        "const unsigned char %s[] = {", argv[1], argv[3], argv[3], argv[3]);
	size_t n = 0;
	int ch;
	while ((ch = getc(in)) != EOF) {
		fprintf(out, "%s0x%02x,", n % 16 ? "" : "\n\t", (unsigned)ch);
		n++;
	}
	int rerr = ferror(in);
	fprintf(out, "\n\t0x00\n};\nconst size_t %s_len = %zu;\n", argv[3], n);
	fclose(in);
	if (rerr || fclose(out) != 0) {
		fprintf(stderr, "net001-embed: %s: %s\n", rerr ? argv[1] : argv[2],
		        strerror(errno));
		remove(argv[2]);
		return 1;
	}
	return 0;
}
