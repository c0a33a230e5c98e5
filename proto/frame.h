/*
 * frame.h - the NET-001 frame codec (PROTOCOL.md section 1).
 *
 * Pure functions: no I/O, no allocation, no global state; any thread may
 * call them.
 *
 *   offset 0  magic   DE AD BE EF
 *          4  version 01
 *          5  type
 *          6  length  u16 big-endian, payload bytes
 *          8  payload
 *     8+len   crc32   big-endian CRC-32/ISO-HDLC over [0, 8+len)
 *
 * The decoder works in place: a struct frame_view points into the caller's
 * bytes and is valid only as long as those bytes are.
 */
#ifndef NET001_FRAME_H
#define NET001_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FRAME_MAGIC        0xDEADBEEFu
#define FRAME_VERSION      0x01
#define FRAME_HEADER_SIZE  8
#define FRAME_CRC_SIZE     4
#define FRAME_OVERHEAD     (FRAME_HEADER_SIZE + FRAME_CRC_SIZE)
#define FRAME_MAX_PAYLOAD  65535u
#define FRAME_MAX_SIZE     (FRAME_OVERHEAD + FRAME_MAX_PAYLOAD)

enum frame_type {
	FRAME_PING       = 0x01,
	FRAME_PONG       = 0x02,
	FRAME_ECHO       = 0x03,
	FRAME_ECHO_REPLY = 0x04,
	FRAME_BROADCAST  = 0x05,
	FRAME_AUTH       = 0x06,
	FRAME_AUTH_REPLY = 0x07,
	FRAME_DATA       = 0x08,
	FRAME_ERROR      = 0xFF,
};

/* Decoder results other than "n bytes consumed". */
enum frame_status {
	FRAME_NEED_MORE  = 0,  /* not enough bytes yet; see frame_view.need */
	FRAME_EMAGIC     = -1, /* bytes 0..3 are not DE AD BE EF: framing lost */
	FRAME_EVERSION   = -2, /* byte 4 is not 0x01 */
	FRAME_ETOOLARGE  = -3, /* length above the decoder's max payload */
	FRAME_ECRC       = -4, /* whole frame present, CRC mismatch; size is set */
};

/*
 * Decoder settings. Valid when zero-filled: max_payload 0 means the
 * protocol's own limit, FRAME_MAX_PAYLOAD.
 */
struct frame_decoder {
	uint32_t max_payload;
};

/* A decoded frame: pointers into the caller's bytes, never copied. */
struct frame_view {
	const uint8_t *frame;   /* first byte of the magic */
	const uint8_t *payload; /* frame + FRAME_HEADER_SIZE; NULL before the
	                         * header is complete */
	uint32_t size;          /* whole frame: FRAME_OVERHEAD + len */
	uint32_t need;          /* with FRAME_NEED_MORE: bytes still missing */
	uint16_t len;           /* payload length */
	uint8_t type;
};

/*
 * Decode the frame at the start of p[0..n).
 *
 * Returns the frame size (> 0) with *f describing a valid frame;
 * FRAME_NEED_MORE; or a negative enum frame_status. Errors are decided in
 * the order of PROTOCOL.md section 3: magic, version, length (from the
 * header alone, before the payload arrives), CRC. A wrong magic or version
 * is reported as soon as the first wrong byte is present. With
 * FRAME_ETOOLARGE and FRAME_ECRC, f->size, f->len and f->type are set
 * (from the header) so the caller can skip or report the frame.
 *
 * With FRAME_NEED_MORE, f->need is what is missing from the header (8 - n,
 * when n < 8) or else from the whole frame (size - n). Fewer bytes than
 * that never complete a frame, so a caller may wait for them before calling
 * again; it then learns of a bad magic or version at the latest when the
 * header is complete.
 *
 * The answer depends only on the bytes present: once it is not
 * FRAME_NEED_MORE, more bytes behind it do not change it. f->payload is
 * set only once the header is present (NULL before); the decoder never
 * reads past p[n - 1].
 */
int frame_decode(const struct frame_decoder *d, const uint8_t *p, size_t n,
                 struct frame_view *f);

/* CRC-32/ISO-HDLC (zlib's crc32), continued from crc (0 to start). */
uint32_t frame_crc(uint32_t crc, const void *p, size_t n);

/*
 * The CRC a frame gets when only its type byte changes from `from` to
 * `to`, given its CRC before (crc) and its payload length. CRC-32 is
 * affine over GF(2), so the change is the CRC of the one-byte difference
 * carried past the 2 + len bytes that follow the type byte: a few dozen
 * carry-less multiplications, whatever the payload size. Replies such as
 * PONG and ECHO_REPLY differ from their request only in that byte.
 */
uint32_t frame_crc_retype(uint32_t crc, uint8_t from, uint8_t to, uint16_t len);

/* Write the 8-byte header for a payload of len bytes. */
void frame_put_header(uint8_t hdr[FRAME_HEADER_SIZE], uint8_t type, uint16_t len);

/*
 * Write a whole frame into dst, which must hold FRAME_OVERHEAD + len bytes.
 * payload may overlap dst + FRAME_HEADER_SIZE exactly (in-place wrap).
 * Returns the frame size.
 */
size_t frame_encode(uint8_t *dst, uint8_t type, const void *payload, uint16_t len);

/*
 * Header and CRC around a payload that stays where it is: fills hdr and
 * crc_out so that hdr, payload[0..len), crc_out sent in that order form a
 * valid frame. The CRC is computed over the header, then continued over
 * the payload in place.
 */
void frame_wrap(uint8_t hdr[FRAME_HEADER_SIZE], uint8_t crc_out[FRAME_CRC_SIZE],
                uint8_t type, const void *payload, uint16_t len);

static inline uint16_t frame_get_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t frame_get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void frame_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void frame_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#ifdef __cplusplus
}
#endif

#endif
