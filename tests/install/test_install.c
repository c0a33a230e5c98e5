/*
 * The installed tree (suite 'install'): `meson install --destdir` of this
 * very build into a fresh temporary directory, then
 *
 *  - the tree holds exactly what is promised: the three programs,
 *    libnet001.so (soname libnet001.so.0) and libnet001.a, the headers
 *    under include/net001/, net001.pc; man pages are allowed beside them;
 *  - the library needs no liburing, exports only the calls of its
 *    installed headers, and its headers include nothing of OpenSSL, ISA-L
 *    or liburing (a program is compiled with #error stand-ins for those
 *    first on its include path);
 *  - tests/install/hello_client.c, compiled with nothing but
 *    `pkg-config --cflags --libs net001` (and `--static`, the archive),
 *    pings and echoes a real server (the installed net001-server), loading
 *    the library from the install tree; the installed net001-cli too.
 *
 * The build tells the test where things are (tests/install/meson.build):
 * NET001_MESON, NET001_BUILD_ROOT, NET001_CC, NET001_PKG_CONFIG,
 * NET001_HELLO_SRC, NET001_{PREFIX,BINDIR,LIBDIR,INCLUDEDIR,MANDIR} (as
 * configured, absolute), NET001_SANITIZE (b_sanitize), NET001_HAVE_ISAL,
 * NET001_HAVE_BENCH.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "net001_build.h"

#define OUT_MAX 65536

/* The install tree of one test. */
static struct {
	char root[PATH_MAX]; /* the DESTDIR */
	char bin[PATH_MAX];  /* DESTDIR + bindir, and so on */
	char lib[PATH_MAX];
	char inc[PATH_MAX];
	char man[PATH_MAX];
	char pcdir[PATH_MAX];
	char work[PATH_MAX]; /* scratch: programs built, stand-in headers */
} T;

static struct srv S;
static char out[OUT_MAX];

static const char *env(const char *name)
{
	const char *v = getenv(name);
	cr_assert(v && *v, "%s is not set: run this through meson test", name);
	return v;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	srv_cleanup(&S);
	if (T.root[0])
		nftw(T.root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (T.work[0])
		nftw(T.work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(install, .fini = cleanup, .timeout = 180);

/*
 * Run a shell command line; its stdout and stderr go into out. Returns the
 * exit status, or 128 + signal.
 */
__attribute__((format(printf, 1, 2)))
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && (size_t)n < sizeof cmd - 8, "command too long");
	strcat(cmd, " 2>&1");
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p, "popen: %s", strerror(errno));
	size_t len = fread(out, 1, sizeof out - 1, p);
	out[len] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A path into dst (PATH_MAX bytes); one that does not fit fails the test. */
__attribute__((format(printf, 2, 3)))
static void path(char *dst, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(dst, PATH_MAX, fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && n < PATH_MAX, "path too long");
}

static void install_tree(void)
{
	char tmpl[] = "/tmp/net001-install-XXXXXX";
	cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	strcpy(T.root, tmpl);
	char wtmpl[] = "/tmp/net001-install-work-XXXXXX";
	cr_assert_not_null(mkdtemp(wtmpl));
	strcpy(T.work, wtmpl);

	/* meson test points LD_LIBRARY_PATH at the build's libnet001: the
	 * programs here must find the installed one, or none. */
	unsetenv("LD_LIBRARY_PATH");
	int st = sh("'%s' install -C '%s' --destdir '%s' --no-rebuild --quiet",
	            env("NET001_MESON"), env("NET001_BUILD_ROOT"), T.root);
	cr_assert_eq(st, 0, "meson install failed (%d):\n%s", st, out);
	path(T.bin, "%s%s", T.root, env("NET001_BINDIR"));
	path(T.lib, "%s%s", T.root, env("NET001_LIBDIR"));
	path(T.inc, "%s%s", T.root, env("NET001_INCLUDEDIR"));
	path(T.man, "%s%s", T.root, env("NET001_MANDIR"));
	path(T.pcdir, "%s/pkgconfig", T.lib);
}

static bool have(const char *dir, const char *name, mode_t type)
{
	char p[PATH_MAX];
	path(p, "%s/%s", dir, name);
	struct stat st;
	return lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

/* ---- the tree holds what is promised, and nothing else ------------------- */

static char expected[16][PATH_MAX];
static size_t nexpected;
static char unexpected[4096];

static void expect(const char *dir, const char *name)
{
	cr_assert_lt(nexpected, sizeof expected / sizeof expected[0]);
	path(expected[nexpected++], "%s/%s", dir, name);
}

static int check_one(const char *fpath, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_D || flag == FTW_DP)
		return 0;
	size_t ml = strlen(T.man);
	if (strncmp(fpath, T.man, ml) == 0 && fpath[ml] == '/')
		return 0; /* man pages: whatever the docs install */
	for (size_t i = 0; i < nexpected; i++)
		if (strcmp(fpath, expected[i]) == 0)
			return 0;
	size_t u = strlen(unexpected);
	snprintf(unexpected + u, sizeof unexpected - u, " %s", fpath + strlen(T.root));
	return 0;
}

Test(install, tree_holds_what_is_promised)
{
	install_tree();
	const char *progs[] = { "net001-server", "net001-cli", "net001-bench" };
	size_t nprogs = strcmp(env("NET001_HAVE_BENCH"), "1") == 0 ? 3 : 2;
	for (size_t i = 0; i < nprogs; i++) {
		expect(T.bin, progs[i]);
		char p[PATH_MAX];
		path(p, "%s/%s", T.bin, progs[i]);
		cr_assert_eq(access(p, X_OK), 0, "%s installed and executable", progs[i]);
	}

	char real[64];
	snprintf(real, sizeof real, "libnet001.so.%s", NET001_VERSION);
	cr_assert(have(T.lib, real, S_IFREG), "%s", real);
	cr_assert(have(T.lib, "libnet001.so.0", S_IFLNK), "the soname link");
	cr_assert(have(T.lib, "libnet001.so", S_IFLNK), "the link for -lnet001");
	cr_assert(have(T.lib, "libnet001.a", S_IFREG), "the archive");
	cr_assert(have(T.pcdir, "net001.pc", S_IFREG), "net001.pc");
	char link[PATH_MAX], p[PATH_MAX];
	path(p, "%s/libnet001.so", T.lib);
	ssize_t ln = readlink(p, link, sizeof link - 1);
	cr_assert_gt(ln, 0);
	link[ln] = '\0';
	cr_assert_str_eq(link, "libnet001.so.0");
	expect(T.lib, real);
	expect(T.lib, "libnet001.so.0");
	expect(T.lib, "libnet001.so");
	expect(T.lib, "libnet001.a");
	expect(T.pcdir, "net001.pc");
	expect(T.inc, "net001/client.h");
	expect(T.inc, "net001/proto/frame.h");
	expect(T.inc, "net001/proto/msg.h");
	for (size_t i = nprogs + 5; i < nexpected; i++) {
		struct stat st;
		cr_assert_eq(stat(expected[i], &st), 0, "%s installed", expected[i]);
	}

	unexpected[0] = '\0';
	cr_assert_eq(nftw(T.root, check_one, 16, FTW_PHYS), 0);
	cr_assert_str_eq(unexpected, "", "installed but not promised:%s", unexpected);
}

Test(install, library_needs_no_liburing_and_exports_its_headers_only)
{
	install_tree();
	char so[PATH_MAX];
	path(so, "%s/libnet001.so", T.lib);

	cr_assert_eq(sh("readelf -d '%s'", so), 0, "%s", out);
	cr_assert_not_null(strstr(out, "Library soname: [libnet001.so.0]"), "%s", out);
	cr_assert_null(strstr(out, "uring"), "no liburing:\n%s", out);
	cr_assert_null(strstr(out, "mimalloc"), "no allocator of the server's:\n%s", out);
	cr_assert_not_null(strstr(out, "libssl"), "OpenSSL for TLS:\n%s", out);
	bool isal = strcmp(env("NET001_HAVE_ISAL"), "1") == 0;
	cr_assert_eq(strstr(out, "libisal") != NULL, isal, "ISA-L as built:\n%s", out);

	/* The installed headers: nothing of the server's dependencies. */
	cr_assert_eq(sh("cat '%s/net001/client.h' '%s/net001/proto/frame.h' "
	                "'%s/net001/proto/msg.h'", T.inc, T.inc, T.inc), 0);
	static const char *const foreign[] = { "liburing", "isa-l", "openssl", "net001_build.h",
	                                       "core/", "net/", "metrics/" };
	for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
		char inc[64];
		snprintf(inc, sizeof inc, "#include \"%s", foreign[i]);
		cr_assert_null(strstr(out, inc), "a header includes %s", foreign[i]);
		snprintf(inc, sizeof inc, "#include <%s", foreign[i]);
		cr_assert_null(strstr(out, inc), "a header includes %s", foreign[i]);
	}
	static char headers[OUT_MAX];
	memcpy(headers, out, sizeof headers);

	/* Every exported symbol is a call the installed headers declare. */
	cr_assert_eq(sh("nm -D --defined-only '%s'", so), 0, "%s", out);
	unsigned nsyms = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char type, name[256];
		unsigned long long addr;
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3 || type == 'A')
			continue; /* the version node */
		char *at = strchr(name, '@');
		if (at)
			*at = '\0';
		char decl[300];
		snprintf(decl, sizeof decl, "%s(", name);
		cr_assert_not_null(strstr(headers, decl), "%s exported but not in the headers", name);
		nsyms++;
	}
	cr_assert_geq(nsyms, 30, "the calls are exported (%u)", nsyms);

	/* pkg-config: OpenSSL (and ISA-L) only for static linking. */
	char pc[PATH_MAX + 64];
	snprintf(pc, sizeof pc, "PKG_CONFIG_PATH='%s' '%s'", T.pcdir, env("NET001_PKG_CONFIG"));
	cr_assert_eq(sh("%s --libs net001", pc), 0, "%s", out);
	cr_assert_not_null(strstr(out, "-lnet001"), "%s", out);
	cr_assert_null(strstr(out, "-lssl"), "shared linking needs no more: %s", out);
	cr_assert_eq(sh("%s --static --libs net001", pc), 0, "%s", out);
	cr_assert_not_null(strstr(out, "-lssl"), "%s", out);
	cr_assert_not_null(strstr(out, "-lcrypto"), "%s", out);
	cr_assert_eq(strstr(out, "-lisal") != NULL, isal, "%s", out);
	cr_assert_null(strstr(out, "uring"), "%s", out);
	cr_assert_eq(sh("%s --modversion net001", pc), 0, "%s", out);
	cr_assert_eq(strncmp(out, NET001_VERSION "\n", strlen(NET001_VERSION) + 1), 0, "%s", out);
}

/* ---- programs against the installed library ------------------------------- */

/*
 * Headers a user of libnet001 must not need: each #errors out, and the
 * folder goes first on the include path.
 */
static void write_stand_ins(char *dir)
{
	static const char *const names[] = { "liburing.h", "isa-l/crc.h", "isa-l.h",
	                                     "openssl/ssl.h", "openssl/err.h",
	                                     "openssl/evp.h" };
	char p[PATH_MAX];
	path(dir, "%s/stand-ins", T.work);
	mkdir(dir, 0700);
	path(p, "%s/isa-l", dir);
	mkdir(p, 0700);
	path(p, "%s/openssl", dir);
	mkdir(p, 0700);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		path(p, "%s/%s", dir, names[i]);
		FILE *f = fopen(p, "w");
		cr_assert_not_null(f, "%s: %s", p, strerror(errno));
		fprintf(f, "#error \"%s is not needed by users of libnet001\"\n", names[i]);
		fclose(f);
	}
}

/* pkg-config's answer for net001 (static: the --static one), one line. */
static void pkg_flags(bool static_link, char *dst, size_t cap)
{
	/* net001.pc names its prefix from where it lies (the default,
	 * pkgconfig.relocatable): PKG_CONFIG_PATH is all it takes. A build
	 * dir configured before that default has an absolute prefix: then
	 * the sysroot points pkg-config into the tree. */
	char pcfile[PATH_MAX];
	path(pcfile, "%s/net001.pc", T.pcdir);
	bool relocatable = sh("grep -q '^prefix=${pcfiledir}' '%s'", pcfile) == 0;
	char sysroot[PATH_MAX + 32] = "";
	if (!relocatable)
		snprintf(sysroot, sizeof sysroot, "PKG_CONFIG_SYSROOT_DIR='%s' ", T.root);
	int st = sh("%sPKG_CONFIG_PATH='%s' '%s' %s--cflags --libs net001", sysroot, T.pcdir,
	            env("NET001_PKG_CONFIG"), static_link ? "--static " : "");
	cr_assert_eq(st, 0, "pkg-config: %s", out);
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = '\0';
	cr_assert_lt(strlen(out), cap);
	strcpy(dst, out);
}

/* Build hello_client with the flags; its path goes into exe. */
static void build_hello(const char *flags, const char *name, char *exe)
{
	char stand_ins[PATH_MAX];
	write_stand_ins(stand_ins);
	path(exe, "%s/%s", T.work, name);
	const char *san = env("NET001_SANITIZE");
	char extra[128] = "";
	if (strcmp(san, "none") != 0)
		snprintf(extra, sizeof extra, "-fsanitize=%s", san);
	int st = sh("%s %s -std=c11 -Wall -Wextra -Wpedantic -Werror -I'%s' '%s' -o '%s' %s",
	            env("NET001_CC"), extra, stand_ins, env("NET001_HELLO_SRC"), exe, flags);
	cr_assert_eq(st, 0, "compiling against the installed library (%s):\n%s", flags, out);
}

static void start_installed_server(void)
{
	char server[PATH_MAX];
	path(server, "%s/net001-server", T.bin);
	setenv("NET001_SERVER", server, 1);
	cr_assert_eq(srv_start(&S, (const char *const[]){ "--threads", "1", NULL }), 0,
	             "the installed server starts");
}

static void expect_hello_ok(const char *where_from)
{
	cr_assert_not_null(strstr(out, "codec ok\n"), "%s", out);
	cr_assert_not_null(strstr(out, "ping ok"), "%s", out);
	cr_assert_not_null(strstr(out, "echo ok\n"), "%s", out);
	char want[PATH_MAX + 32];
	snprintf(want, sizeof want, "libnet001 from %s", where_from);
	cr_assert_not_null(strstr(out, want), "loaded from %s:\n%s", where_from, out);
	size_t n = strlen(out);
	cr_assert(n >= 3 && strcmp(out + n - 3, "ok\n") == 0, "%s", out);
}

Test(install, shared_library_with_pkg_config)
{
	install_tree();
	static char flags[8192];
	pkg_flags(false, flags, sizeof flags);
	char exe[PATH_MAX];
	build_hello(flags, "hello-shared", exe);

	cr_assert_eq(sh("readelf -d '%s'", exe), 0);
	cr_assert_not_null(strstr(out, "Shared library: [libnet001.so.0]"), "%s", out);

	start_installed_server();
	cr_assert_eq(sh("LD_LIBRARY_PATH='%s' '%s' 127.0.0.1 %u", T.lib, exe, S.port), 0,
	             "hello_client:\n%s", out);
	char so[PATH_MAX];
	path(so, "%s/libnet001.so.0", T.lib);
	expect_hello_ok(so);

	/* Without the path the loader does not find it (unless a libnet001
	 * really is installed on this machine). */
	char sys[PATH_MAX];
	path(sys, "%s/libnet001.so.0", env("NET001_LIBDIR"));
	if (access(sys, F_OK) != 0) {
		cr_assert_neq(sh("'%s' 127.0.0.1 %u", exe, S.port), 0);
		cr_assert_not_null(strstr(out, "libnet001.so.0"), "%s", out);
	}

	/* The installed CLI against the installed server. */
	cr_assert_eq(sh("'%s/net001-cli' --port %u echo installed", T.bin, S.port), 0,
	             "%s", out);
	cr_assert_str_eq(out, "installed\n");
	cr_assert_eq(srv_stop(&S, 10000), 0, "server exits 0 after SIGTERM");
}

Test(install, static_library_with_pkg_config_static)
{
	install_tree();
	static char flags[8192], fixed[8192];
	pkg_flags(true, flags, sizeof flags);
	/* -lnet001 would take the .so beside the .a: name the archive. */
	char *l = strstr(flags, "-lnet001");
	cr_assert_not_null(l, "%s", flags);
	int n = snprintf(fixed, sizeof fixed, "%.*s-l:libnet001.a%s", (int)(l - flags), flags,
	                 l + strlen("-lnet001"));
	cr_assert(n > 0 && (size_t)n < sizeof fixed);
	char exe[PATH_MAX];
	build_hello(fixed, "hello-static", exe);

	cr_assert_eq(sh("readelf -d '%s'", exe), 0);
	cr_assert_null(strstr(out, "libnet001"), "linked in, not loaded:\n%s", out);

	start_installed_server();
	cr_assert_eq(sh("'%s' 127.0.0.1 %u", exe, S.port), 0, "hello_client:\n%s", out);
	expect_hello_ok(exe);
	cr_assert_eq(srv_stop(&S, 10000), 0, "server exits 0 after SIGTERM");
}
