/*
 * reasm.c - frame reassembly over chunks. See reasm.h.
 *
 * Two states: empty (len 0), where a chunk is decoded in place and only
 * an incomplete tail is copied into buf; and partial (len > 0), where
 * bytes are copied into buf no further than the decoder says the frame
 * needs (f->need), so a chunk's bytes past the frame are never copied and
 * go back to the in-place path.
 */
#include "proto/reasm.h"

#include <string.h>

/* Room a partial frame needs: the whole frame once the header is there. */
static uint32_t room_for(uint32_t held, const struct frame_view *f)
{
	return held + f->need;
}

int frame_reasm_next(struct frame_reasm *a, const struct frame_decoder *d,
                     const uint8_t **p, size_t *n, struct frame_view *f)
{
	if (a->len == 0) {
		int r = frame_decode(d, *p, *n, f);
		if (r > 0 || r == FRAME_ECRC) {
			size_t used = r > 0 ? (size_t)r : f->size;
			*p += used;
			*n -= used;
			return r;
		}
		if (r < 0 || *n == 0)
			return r;
		/* The chunk ends inside a frame: keep its start. */
		uint32_t want = room_for((uint32_t)*n, f);
		if (a->cap < want) {
			a->want = want;
			return FRAME_REASM_NOBUF;
		}
		memcpy(a->buf, *p, *n);
		a->len = (uint32_t)*n;
		*p += *n;
		*n = 0;
		/* The view of the partial frame, now in buf. */
		return frame_decode(d, a->buf, a->len, f);
	}

	for (;;) {
		int r = frame_decode(d, a->buf, a->len, f);
		if (r > 0 || r == FRAME_ECRC) {
			a->len = 0;
			return r;
		}
		if (r < 0 || *n == 0)
			return r;
		uint32_t want = room_for(a->len, f);
		if (a->cap < want) {
			a->want = want;
			return FRAME_REASM_NOBUF;
		}
		size_t k = f->need < *n ? f->need : *n;
		memcpy(a->buf + a->len, *p, k);
		a->len += (uint32_t)k;
		*p += k;
		*n -= k;
	}
}

uint8_t *frame_reasm_move(struct frame_reasm *a, uint8_t *buf, uint32_t cap)
{
	uint8_t *old = a->buf;
	if (a->len)
		memcpy(buf, old, a->len);
	a->buf = buf;
	a->cap = cap;
	return old;
}

uint8_t *frame_reasm_detach(struct frame_reasm *a)
{
	uint8_t *old = a->buf;
	a->buf = NULL;
	a->cap = 0;
	a->len = 0;
	return old;
}
