/*
 * msg.c - NET-001 payload helpers and the error table. See msg.h.
 */
#include "proto/msg.h"
#include "proto/frame.h"

#include <errno.h>
#include <string.h>

static const struct {
	const char *name;
	const char *label;
	const char *text;
	bool closes;
} errors[ERR_MAX + 1] = {
	[ERR_BAD_MAGIC]        = { "BAD_MAGIC", "bad_magic", "bad magic", true },
	[ERR_BAD_VERSION]      = { "BAD_VERSION", "bad_version", "bad version", true },
	[ERR_BAD_CRC]          = { "BAD_CRC", "bad_crc", "bad crc", false },
	[ERR_UNSUPPORTED_TYPE] = { "UNSUPPORTED_TYPE", "unsupported_type", "unsupported type", false },
	[ERR_BAD_PAYLOAD]      = { "BAD_PAYLOAD", "bad_payload", "bad payload", false },
	[ERR_FRAME_TOO_LARGE]  = { "FRAME_TOO_LARGE", "frame_too_large", "frame too large", true },
	[ERR_AUTH_REQUIRED]    = { "AUTH_REQUIRED", "auth_required", "auth required", false },
	[ERR_AUTH_FAILED]      = { "AUTH_FAILED", "auth_failed", "auth failed", true },
	[ERR_RATE_LIMITED]     = { "RATE_LIMITED", "rate_limited", "rate limited", false },
	[ERR_SERVER_FULL]      = { "SERVER_FULL", "server_full", "server full", true },
	[ERR_IDLE_TIMEOUT]     = { "IDLE_TIMEOUT", "idle_timeout", "idle timeout", true },
	[ERR_SLOW_CONSUMER]    = { "SLOW_CONSUMER", "slow_consumer", "slow consumer", true },
	[ERR_SHUTTING_DOWN]    = { "SHUTTING_DOWN", "shutting_down", "shutting down", true },
	[ERR_INTERNAL]         = { "INTERNAL", "internal", "internal error", true },
};

const char *msg_error_name(unsigned code)
{
	return code >= 1 && code <= ERR_MAX ? errors[code].name : NULL;
}

const char *msg_error_label(unsigned code)
{
	return code >= 1 && code <= ERR_MAX ? errors[code].label : NULL;
}

const char *msg_error_text(unsigned code)
{
	return code >= 1 && code <= ERR_MAX ? errors[code].text : "";
}

bool msg_error_closes(unsigned code)
{
	return code >= 1 && code <= ERR_MAX ? errors[code].closes : true;
}

const char *msg_type_label(unsigned type)
{
	switch (type) {
	case FRAME_PING:       return "ping";
	case FRAME_PONG:       return "pong";
	case FRAME_ECHO:       return "echo";
	case FRAME_ECHO_REPLY: return "echo_reply";
	case FRAME_BROADCAST:  return "broadcast";
	case FRAME_AUTH:       return "auth";
	case FRAME_AUTH_REPLY: return "auth_reply";
	case FRAME_DATA:       return "data";
	case FRAME_ERROR:      return "error";
	default:               return NULL;
	}
}

int msg_auth_parse(const uint8_t *p, size_t n, struct msg_auth *out)
{
	if (n < 1)
		return -EINVAL;
	size_t ulen = p[0];
	if (ulen < 1 || ulen > MSG_AUTH_USER_MAX || n < 1 + ulen)
		return -EINVAL;
	size_t tlen = n - 1 - ulen;
	if (tlen < 1 || tlen > MSG_AUTH_TOKEN_MAX)
		return -EINVAL;
	out->user = p + 1;
	out->user_len = (uint16_t)ulen;
	out->token = p + 1 + ulen;
	out->token_len = (uint16_t)tlen;
	return 0;
}

int msg_auth_build(uint8_t *dst, const void *user, size_t user_len,
                   const void *token, size_t token_len)
{
	if (user_len < 1 || user_len > MSG_AUTH_USER_MAX ||
	    token_len < 1 || token_len > MSG_AUTH_TOKEN_MAX)
		return -EINVAL;
	dst[0] = (uint8_t)user_len;
	memcpy(dst + 1, user, user_len);
	memcpy(dst + 1 + user_len, token, token_len);
	return (int)(1 + user_len + token_len);
}

size_t msg_auth_reply(uint8_t dst[MSG_AUTH_REPLY_LEN], bool ok,
                      const uint8_t session[MSG_SESSION_ID_LEN])
{
	dst[0] = ok ? 1 : 0;
	if (ok && session)
		memcpy(dst + 1, session, MSG_SESSION_ID_LEN);
	else
		memset(dst + 1, 0, MSG_SESSION_ID_LEN);
	return MSG_AUTH_REPLY_LEN;
}

size_t msg_error_build(uint8_t *dst, size_t cap, uint16_t code, const char *text)
{
	if (cap < 2)
		return 0;
	size_t tlen = text ? strlen(text) : 0;
	if (tlen > cap - 2) {
		tlen = cap - 2;
		/* Back off over continuation bytes (10xxxxxx) to the start
		 * of the sequence that did not fit, so the peer never gets a
		 * half character. */
		while (tlen && ((uint8_t)text[tlen] & 0xC0) == 0x80)
			tlen--;
	}
	frame_put_u16(dst, code);
	if (tlen)
		memcpy(dst + 2, text, tlen);
	return 2 + tlen;
}

int msg_error_parse(const uint8_t *p, size_t n, uint16_t *code,
                    const uint8_t **text, size_t *text_len)
{
	if (n < 2)
		return -EINVAL;
	*code = frame_get_u16(p);
	*text = p + 2;
	*text_len = n - 2;
	return 0;
}
