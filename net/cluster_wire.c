/*
 * cluster_wire.c - the cluster message header (cluster_wire.h).
 */
#include "net/cluster_wire.h"

#include <stdbool.h>
#include <string.h>

#include "proto/frame.h"

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void cluster_put_header(uint8_t *p, uint8_t kind, const char *id, uint8_t idlen,
                        uint64_t incarnation, uint64_t seq)
{
	memcpy(p, CLUSTER_MAGIC, 4);
	p[4] = CLUSTER_VERSION;
	p[5] = kind;
	p[6] = idlen;
	p[7] = 0;
	put_u64(p + 8, incarnation);
	put_u64(p + 16, seq);
	memset(p + 24, 0, CLUSTER_ID_MAX);
	memcpy(p + 24, id, idlen);
}

static bool id_char(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '_' || c == '.';
}

const char *cluster_parse(const uint8_t *p, size_t n, struct cluster_msg *m)
{
	if (n < CLUSTER_HDR)
		return "shorter than the header";
	if (memcmp(p, CLUSTER_MAGIC, 4) != 0)
		return "bad magic";
	if (p[4] != CLUSTER_VERSION)
		return "unknown version";
	m->kind = p[5];
	m->idlen = p[6];
	if (m->kind != CLUSTER_KIND_FRAME && m->kind != CLUSTER_KIND_BEAT)
		return "unknown kind";
	if (m->idlen == 0 || m->idlen > CLUSTER_ID_MAX || p[7] != 0)
		return "bad node id length";
	for (unsigned i = 0; i < CLUSTER_ID_MAX; i++)
		if (i < m->idlen ? !id_char(p[24 + i]) : p[24 + i] != 0)
			return "bad node id";
	m->id = (const char *)p + 24;
	m->incarnation = get_u64(p + 8);
	m->seq = get_u64(p + 16);
	if (m->seq == 0)
		return "sequence number 0";
	if (m->kind == CLUSTER_KIND_BEAT) {
		if (n != CLUSTER_HDR)
			return "heartbeat with a body";
		return NULL;
	}
	struct frame_view f;
	int c = frame_decode(NULL, p + CLUSTER_HDR, n - CLUSTER_HDR, &f);
	if (c <= 0)
		return c == FRAME_NEED_MORE ? "truncated frame" : "invalid frame";
	if ((size_t)c != n - CLUSTER_HDR)
		return "bytes after the frame";
	if (f.type != FRAME_BROADCAST)
		return "not a BROADCAST frame";
	m->frame = p + CLUSTER_HDR;
	m->size = f.size;
	return NULL;
}
