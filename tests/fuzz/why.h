/*
 * why.h - the fuzz checks' way to fail: a one-line description of the
 * violation into the caller's buffer, and -EPROTO.
 */
#ifndef NET001_FUZZ_WHY_H
#define NET001_FUZZ_WHY_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

__attribute__((format(printf, 3, 4)))
static inline int why_fail(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

#endif
