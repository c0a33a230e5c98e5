/*
 * authdigest.c - SHA-256 hex of a token. See authdigest.h.
 */
#include "proto/authdigest.h"

#include <errno.h>
#include <stdint.h>
#include <openssl/evp.h>

int authdigest_hex(const void *token, size_t len, char out[AUTHDIGEST_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;

	if (EVP_Digest(token, len, d, &dlen, EVP_sha256(), NULL) != 1 ||
	    dlen != AUTHDIGEST_LEN) {
		/* Only on allocation failure inside libcrypto. */
		out[0] = '\0';
		return -ENOMEM;
	}
	for (size_t i = 0; i < AUTHDIGEST_LEN; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[AUTHDIGEST_HEX_LEN] = '\0';
	return 0;
}
