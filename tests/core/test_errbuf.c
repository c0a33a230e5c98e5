/*
 * errbuf_set: formats, cuts to the buffer, keeps the message on one line,
 * and accepts no buffer at all.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/errbuf.h"

Test(errbuf, formats_and_cuts)
{
	char err[16];
	errbuf_set(err, sizeof err, "%s:%u: %s", "users", 12u, "bad");
	cr_expect_str_eq(err, "users:12: bad");
	errbuf_set(err, sizeof err, "%s", "a message longer than the buffer");
	cr_expect_str_eq(err, "a message longe");
}

Test(errbuf, control_characters_become_question_marks)
{
	char err[32];
	errbuf_set(err, sizeof err, "name '%s'", "a\nb\tc\x7f" "d");
	cr_expect_str_eq(err, "name 'a?b?c?d'");
}

Test(errbuf, no_buffer_is_not_an_error)
{
	char err[4] = "xyz";
	errbuf_set(NULL, 16, "%d", 1);
	errbuf_set(err, 0, "%d", 1);
	cr_expect_str_eq(err, "xyz", "errlen 0 writes nothing");
}
