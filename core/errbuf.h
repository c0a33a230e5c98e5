/*
 * errbuf.h - one-line error messages written into a caller's buffer, for
 * parsers that report what went wrong (core/config.c, net/auth.c).
 *
 * Any thread may call it: it writes only into err. err belongs to the
 * caller; nothing keeps a pointer to it.
 */
#ifndef NET001_ERRBUF_H
#define NET001_ERRBUF_H

#include <stddef.h>

/*
 * Format into err[errlen], cut to fit and always terminated; nothing when
 * err is NULL or errlen is 0. Control characters become '?', so a value
 * taken from a file or the command line cannot break the line.
 */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
