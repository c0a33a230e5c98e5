/*
 * cluster_check.c - see cluster_check.h.
 */
#include "cluster_check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/cluster_wire.h"
#include "proto/frame.h"
#include "why.h"

static bool allowed(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '.' || c == '_' || c == '-';
}

static int check(const uint8_t *q, size_t n, char *why, size_t why_len)
{
	struct cluster_msg m;
	memset(&m, 0xA5, sizeof m);
	const char *r = cluster_parse(q, n, &m);
	if (r)
		return *r ? 0 : why_fail(why, why_len, "refused without a reason");
	if (n < CLUSTER_HDR)
		return why_fail(why, why_len, "%zu bytes accepted", n);
	if (m.kind != CLUSTER_KIND_FRAME && m.kind != CLUSTER_KIND_BEAT)
		return why_fail(why, why_len, "kind %u accepted", m.kind);
	if (m.idlen < 1 || m.idlen > CLUSTER_ID_MAX || m.id != (const char *)q + 24)
		return why_fail(why, why_len, "a node id of %u bytes out of place", m.idlen);
	for (unsigned i = 0; i < m.idlen; i++)
		if (!allowed((uint8_t)m.id[i]))
			return why_fail(why, why_len, "byte 0x%02x in the node id", (uint8_t)m.id[i]);
	if (m.seq == 0)
		return why_fail(why, why_len, "sequence number 0 accepted");
	uint8_t h[CLUSTER_HDR];
	cluster_put_header(h, m.kind, m.id, m.idlen, m.incarnation, m.seq);
	if (memcmp(h, q, CLUSTER_HDR) != 0)
		return why_fail(why, why_len, "the header does not rewrite to its bytes");
	if (m.kind == CLUSTER_KIND_BEAT && n != CLUSTER_HDR)
		return why_fail(why, why_len, "a heartbeat with %zu bytes after it", n - CLUSTER_HDR);
	if (m.kind == CLUSTER_KIND_BEAT)
		return 0;
	struct frame_view f;
	int d = frame_decode(NULL, q + CLUSTER_HDR, n - CLUSTER_HDR, &f);
	if (m.frame != q + CLUSTER_HDR || m.size != n - CLUSTER_HDR || d <= 0 ||
	    d != (int)(n - CLUSTER_HDR) || f.type != FRAME_BROADCAST)
		return why_fail(why, why_len, "accepted a body of %zu bytes that is not one BROADCAST "
		            "(decode %d, type 0x%02x)", n - CLUSTER_HDR, d, d > 0 ? f.type : 0);
	return 0;
}

int cluster_check_input(const uint8_t *p, size_t n, char *why, size_t why_len)
{
	uint8_t *q = malloc(n ? n : 1);
	if (!q)
		return -ENOMEM;
	memcpy(q, p, n);
	int rc = check(q, n, why, why_len);
	free(q);
	return rc;
}
