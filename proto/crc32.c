/*
 * crc32.c - slice-by-8 CRC-32/ISO-HDLC. See crc32.h.
 *
 * Table k maps a byte to the CRC contribution it has when k more zero
 * bytes follow it, so one step folds eight input bytes with eight lookups:
 * the first four (xor-ed with the running CRC) through tables 7..4, the
 * next four through tables 3..0.
 */
#include "proto/crc32.h"

#include <pthread.h>

/* Reflected polynomial of CRC-32/ISO-HDLC (x^32 + x^26 + ... + 1). */
#define CRC32_POLY 0xEDB88320u

static uint32_t tables[8][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (CRC32_POLY & (0u - (c & 1u)));
		tables[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			tables[k][i] = (tables[k - 1][i] >> 8) ^
			               tables[0][tables[k - 1][i] & 0xffu];
}

static inline uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	       ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint32_t crc32_portable(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	const uint32_t (*t)[256] = (const uint32_t (*)[256])tables;

	pthread_once(&tables_once, tables_build);
	crc = ~crc;
	while (n >= 8) {
		uint32_t a = crc ^ load_le32(p);
		uint32_t b = load_le32(p + 4);
		crc = t[7][a & 0xffu] ^ t[6][(a >> 8) & 0xffu] ^
		      t[5][(a >> 16) & 0xffu] ^ t[4][a >> 24] ^
		      t[3][b & 0xffu] ^ t[2][(b >> 8) & 0xffu] ^
		      t[1][(b >> 16) & 0xffu] ^ t[0][b >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xffu];
	return ~crc;
}
