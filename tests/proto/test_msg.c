/* Payload helper tests (more to follow). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "msg.h"

Test(msg, auth_parse_vector)
{
	const uint8_t p[] = "\x05" "alices3cret";
	struct msg_auth a;
	cr_assert_eq(msg_auth_parse(p, 12, &a), 0);
	cr_assert_eq(a.user_len, 5);
	cr_assert_eq(memcmp(a.user, "alice", 5), 0);
	cr_assert_eq(a.token_len, 6);
	cr_assert_eq(memcmp(a.token, "s3cret", 6), 0);
}

Test(msg, error_table)
{
	cr_assert_str_eq(msg_error_name(3), "BAD_CRC");
	cr_assert_str_eq(msg_error_label(13), "shutting_down");
	cr_assert(msg_error_closes(1));
	cr_assert_not(msg_error_closes(3));
	cr_assert_null(msg_error_name(0));
	cr_assert_null(msg_error_name(15));
}
