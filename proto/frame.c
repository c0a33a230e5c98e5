/*
 * frame.c - NET-001 frame encoder and in-place decoder. See frame.h.
 */
#include "proto/frame.h"

#include <string.h>

#include "net001_build.h"
#include "proto/crc32.h"

/* ISA-L when the build has it (-Disal=auto finds it, -Disal=enabled
 * requires it), the portable slice-by-8 otherwise; the same results.
 * NET001_PORTABLE_CRC forces the portable one (the tests' second build of
 * the codec). */
#if HAVE_ISAL && !defined(NET001_PORTABLE_CRC)
#define FRAME_CRC_ISAL 1
#include <isa-l/crc.h>
#else
#define FRAME_CRC_ISAL 0
#endif

static const uint8_t magic_bytes[4] = { 0xDE, 0xAD, 0xBE, 0xEF };

uint32_t frame_crc(uint32_t crc, const void *p, size_t n)
{
#if FRAME_CRC_ISAL
	/* ISA-L's gzip_refl takes and returns the finished (xor-ed) value,
	 * so chaining works exactly like zlib's crc32(). Its length is a
	 * uint64_t and it accepts any alignment. */
	return crc32_gzip_refl(crc, (const unsigned char *)p, n);
#else
	return crc32_portable(crc, p, n);
#endif
}

/* Reflected CRC-32 polynomial; in this bit order x^k is 1 << (31 - k). */
#define CRC_POLY 0xEDB88320u

/* a * b modulo the CRC polynomial (carry-less, reflected). */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	for (;;) {
		if (a & m) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = b & 1 ? (b >> 1) ^ CRC_POLY : b >> 1;
	}
	return p;
}

/* x^(8n) modulo the polynomial: the effect of n more zero bytes. */
static uint32_t x8n_mod(uint32_t n)
{
	uint32_t p = 1u << 31;   /* x^0 */
	uint32_t b = 1u << 23;   /* x^8 */

	while (n) {
		if (n & 1)
			p = gf2_mulmod(b, p);
		b = gf2_mulmod(b, b);
		n >>= 1;
	}
	return p;
}

uint32_t frame_crc_retype(uint32_t crc, uint8_t from, uint8_t to, uint16_t len)
{
	/* The difference as a message: zeros but for byte 5. Its CRC minus
	 * the CRC of zeros is the linear part; then move it past the rest. */
	uint8_t d[6] = { 0, 0, 0, 0, 0, (uint8_t)(from ^ to) };
	static const uint8_t z[6];
	uint32_t lin = frame_crc(0, d, sizeof d) ^ frame_crc(0, z, sizeof z);
	return crc ^ gf2_mulmod(x8n_mod(2u + len), lin);
}

int frame_decode(const struct frame_decoder *d, const uint8_t *p, size_t n,
                 struct frame_view *f)
{
	uint32_t max = d && d->max_payload ? d->max_payload : FRAME_MAX_PAYLOAD;
	size_t have = n < 4 ? n : 4;

	f->frame = p;
	f->payload = NULL;
	f->size = 0;
	f->len = 0;
	f->type = 0;
	f->need = 0;

	/* Magic and version are checked on whatever prefix is present, so
	 * garbage is refused without waiting for a whole header. */
	if (have && memcmp(p, magic_bytes, have) != 0)
		return FRAME_EMAGIC;
	if (n > 4 && p[4] != FRAME_VERSION)
		return FRAME_EVERSION;
	if (n < FRAME_HEADER_SIZE) {
		f->need = (uint32_t)(FRAME_HEADER_SIZE - n);
		return FRAME_NEED_MORE;
	}

	f->payload = p + FRAME_HEADER_SIZE;
	f->type = p[5];
	f->len = frame_get_u16(p + 6);
	f->size = FRAME_OVERHEAD + (uint32_t)f->len;
	if (f->len > max)
		return FRAME_ETOOLARGE;
	if (n < f->size) {
		f->need = (uint32_t)(f->size - n);
		return FRAME_NEED_MORE;
	}

	uint32_t want = frame_get_u32(p + FRAME_HEADER_SIZE + f->len);
	if (frame_crc(0, p, FRAME_HEADER_SIZE + (size_t)f->len) != want)
		return FRAME_ECRC;
	return (int)f->size;
}

void frame_put_header(uint8_t hdr[FRAME_HEADER_SIZE], uint8_t type, uint16_t len)
{
	memcpy(hdr, magic_bytes, 4);
	hdr[4] = FRAME_VERSION;
	hdr[5] = type;
	frame_put_u16(hdr + 6, len);
}

size_t frame_encode(uint8_t *dst, uint8_t type, const void *payload, uint16_t len)
{
	if (len && payload != dst + FRAME_HEADER_SIZE)
		memmove(dst + FRAME_HEADER_SIZE, payload, len);
	frame_put_header(dst, type, len);
	frame_put_u32(dst + FRAME_HEADER_SIZE + len,
	              frame_crc(0, dst, FRAME_HEADER_SIZE + (size_t)len));
	return FRAME_OVERHEAD + (size_t)len;
}

void frame_wrap(uint8_t hdr[FRAME_HEADER_SIZE], uint8_t crc_out[FRAME_CRC_SIZE],
                uint8_t type, const void *payload, uint16_t len)
{
	frame_put_header(hdr, type, len);
	uint32_t crc = frame_crc(0, hdr, FRAME_HEADER_SIZE);
	frame_put_u32(crc_out, frame_crc(crc, payload, len));
}
