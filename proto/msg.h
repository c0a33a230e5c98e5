/*
 * msg.h - NET-001 payloads and error codes (PROTOCOL.md sections 2 to 4).
 *
 * Pure functions over caller-owned bytes; any thread may call them. Views
 * returned (struct msg_auth) point into the caller's payload and live as
 * long as it does.
 */
#ifndef NET001_MSG_H
#define NET001_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum msg_error {
	ERR_BAD_MAGIC        = 1,
	ERR_BAD_VERSION      = 2,
	ERR_BAD_CRC          = 3,
	ERR_UNSUPPORTED_TYPE = 4,
	ERR_BAD_PAYLOAD      = 5,
	ERR_FRAME_TOO_LARGE  = 6,
	ERR_AUTH_REQUIRED    = 7,
	ERR_AUTH_FAILED      = 8,
	ERR_RATE_LIMITED     = 9,
	ERR_SERVER_FULL      = 10,
	ERR_IDLE_TIMEOUT     = 11,
	ERR_SLOW_CONSUMER    = 12,
	ERR_SHUTTING_DOWN    = 13,
	ERR_INTERNAL         = 14,
};
#define ERR_MAX 14

#define MSG_PING_LEN         8
#define MSG_AUTH_USER_MAX    64
#define MSG_AUTH_TOKEN_MAX   256
#define MSG_SESSION_ID_LEN   16
#define MSG_AUTH_REPLY_LEN   (1 + MSG_SESSION_ID_LEN)
/* Longest ERROR payload the server builds: code + a short message. */
#define MSG_ERROR_MAX        (2 + 64)

/* "BAD_MAGIC" ... ; NULL for a code outside 1..ERR_MAX. */
const char *msg_error_name(unsigned code);
/* "bad_magic" ... (metric label); NULL outside 1..ERR_MAX. */
const char *msg_error_label(unsigned code);
/* A short human message sent in the ERROR payload ("bad crc"). */
const char *msg_error_text(unsigned code);
/* Whether the server closes the connection after sending this error. */
bool msg_error_closes(unsigned code);

/* "ping" ... for the client-to-server and server-to-client types; NULL else. */
const char *msg_type_label(unsigned type);

/* PING payload shape: exactly 8 bytes. */
static inline bool msg_ping_ok(size_t len)
{
	return len == MSG_PING_LEN;
}

struct msg_auth {
	const uint8_t *user;
	const uint8_t *token;
	uint16_t user_len;  /* 1..64 */
	uint16_t token_len; /* 1..256 */
};

/*
 * Parse an AUTH payload: u8 ulen, ulen bytes of username (1..64), then the
 * token (1..256 bytes, the rest). Returns 0, or -EINVAL for any other
 * shape (BAD_PAYLOAD).
 */
int msg_auth_parse(const uint8_t *p, size_t n, struct msg_auth *out);

/*
 * Build an AUTH payload into dst (room for 1 + 64 + 256). Returns its
 * length, or -EINVAL if user or token length is out of range.
 */
int msg_auth_build(uint8_t *dst, const void *user, size_t user_len,
                   const void *token, size_t token_len);

/* AUTH_REPLY payload: status then session id (zeros on failure). Returns 17. */
size_t msg_auth_reply(uint8_t dst[MSG_AUTH_REPLY_LEN], bool ok,
                      const uint8_t session[MSG_SESSION_ID_LEN]);

/*
 * ERROR payload: u16 code then text (NULL for none), truncated to fit cap
 * bytes in all. Truncation never splits a UTF-8 sequence, so a valid UTF-8
 * text stays valid. Returns the payload length (2 + text bytes kept), or 0
 * without writing when cap < 2.
 */
size_t msg_error_build(uint8_t *dst, size_t cap, uint16_t code, const char *text);

/*
 * Parse an ERROR payload. Returns 0 with *code and the text view set, or
 * -EINVAL when shorter than 2 bytes.
 */
int msg_error_parse(const uint8_t *p, size_t n, uint16_t *code,
                    const uint8_t **text, size_t *text_len);

#ifdef __cplusplus
}
#endif

#endif
