/*
 * reasm.h - frames out of a byte stream that arrives in chunks (TCP reads,
 * provided buffers, TLS records): decoded in place in the chunk when they
 * lie wholly inside it, copied into a reassembly buffer only when one
 * straddles chunks. The one copy of that logic: libnet001, the bench and
 * (next) the server's connections use it.
 *
 * Buffer ownership stays with the caller: struct frame_reasm only records
 * the buffer the caller handed it (buf, cap) and how many bytes of a
 * partial frame it holds (len). When it needs room it says so
 * (FRAME_REASM_NOBUF, with the size in want) instead of allocating, so a
 * caller can use malloc, a realloc'd buffer, or a refcounted pool buffer
 * that a handler may keep a reference to after the frame is handled.
 *
 * Pure functions over caller memory: no I/O, no allocation, no global
 * state. One struct frame_reasm per stream, used by one thread at a time.
 *
 * Use: for each chunk p[0..n) received,
 *
 *	const uint8_t *p = chunk; size_t n = chunk_len;
 *	for (;;) {
 *		struct frame_view f;
 *		int r = frame_reasm_next(&ra, &dec, &p, &n, &f);
 *		if (r == FRAME_NEED_MORE)
 *			break;                  // all of the chunk taken: read again
 *		if (r == FRAME_REASM_NOBUF) {
 *			uint8_t *b = malloc(ra.want);   // or a pool buffer
 *			uint8_t *old = frame_reasm_move(&ra, b, ra.want);
 *			free(old);
 *			continue;
 *		}
 *		if (r > 0)
 *			handle(&f, frame_reasm_held(&ra, &f));
 *		else if (r == FRAME_ECRC)
 *			report_bad_crc(&f);     // skipped; the stream continues
 *		else
 *			lose_the_stream(r);     // magic, version or length
 *	}
 *
 * The view a frame comes with points into the chunk (in place) or into
 * buf (frame_reasm_held() says which). A view into the chunk lives as
 * long as the chunk; one into buf until the next frame_reasm_next() or
 * frame_reasm_move() on this stream, or longer if the caller detaches the
 * buffer (frame_reasm_detach()) and so keeps it for itself.
 */
#ifndef NET001_REASM_H
#define NET001_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

/* frame_reasm_next(): a partial frame must be kept and buf cannot hold it. */
#define FRAME_REASM_NOBUF (-16)

struct frame_reasm {
	uint8_t *buf;   /* the caller's memory for a straddling frame; NULL: none */
	uint32_t cap;   /* bytes at buf */
	uint32_t len;   /* bytes of the partial frame held in buf[0..len) */
	uint32_t want;  /* after FRAME_REASM_NOBUF: the least cap that will do */
};

/* An empty reassembler with no buffer (a zero-filled one is the same). */
#define FRAME_REASM_INIT { NULL, 0, 0, 0 }

/*
 * The next event of the stream, taking bytes from *p, *n (both advanced
 * past what was taken). d as for frame_decode() (NULL: protocol limits).
 *
 *  > 0  a whole frame with a valid CRC, of that size; *f views it, in
 *       the chunk or in buf (frame_reasm_held()). Then the reassembler is
 *       empty again (len 0).
 *  FRAME_NEED_MORE  every byte of the chunk was taken (*n is 0) and a
 *       frame is incomplete, or there were no bytes at all. *f describes
 *       what is known of the partial frame, as frame_decode() does: once
 *       its header is present, f->type, f->len and f->size are set (and
 *       f->payload is not NULL), so a caller may check the header without
 *       waiting for the payload; f->need is the bytes still missing.
 *  FRAME_REASM_NOBUF  the partial frame must be kept and buf is missing
 *       or too small: want holds the least cap that will do (the whole
 *       frame once its header is known, else a header). Nothing more was
 *       taken; *f is as for FRAME_NEED_MORE. Hand over a buffer with
 *       frame_reasm_move() and call again.
 *  FRAME_ECRC  a whole frame whose CRC does not match: its bytes were
 *       taken (skipped), *f has its size, type and length, and the stream
 *       stays in step. The reassembler is empty again.
 *  FRAME_EMAGIC, FRAME_EVERSION, FRAME_ETOOLARGE  framing is lost and
 *       the stream cannot go on (frame_reasm_reset() before any reuse).
 *       The bad bytes stay where they are for a look: f->frame is either
 *       in buf (frame_reasm_held(), len bytes there) or at *p in the
 *       chunk (*n bytes there, none of them taken).
 *
 * Wrong magic or version bytes are reported as soon as they arrive, a
 * length above the limit as soon as the header is complete, as with
 * frame_decode(). The decoder never reads past the bytes given or held.
 */
int frame_reasm_next(struct frame_reasm *a, const struct frame_decoder *d,
                     const uint8_t **p, size_t *n, struct frame_view *f);

/*
 * Use buf[0..cap) from now on: the held bytes are copied into it (buf
 * must not overlap the old buffer, and cap must be at least len). Returns
 * the old buffer, the caller's again. buf may be NULL (cap 0) when nothing
 * is held. A caller that reallocs buf itself may instead just set buf and
 * cap: the held bytes move with a realloc.
 */
uint8_t *frame_reasm_move(struct frame_reasm *a, uint8_t *buf, uint32_t cap);

/*
 * Take the buffer back (for example to keep a frame handed out in it):
 * the reassembler is left empty with no buffer. Returns the buffer.
 */
uint8_t *frame_reasm_detach(struct frame_reasm *a);

/* Forget any held bytes; keep the buffer. */
static inline void frame_reasm_reset(struct frame_reasm *a)
{
	a->len = 0;
}

/* Whether a frame view returned by frame_reasm_next() lies in buf. */
static inline bool frame_reasm_held(const struct frame_reasm *a,
                                    const struct frame_view *f)
{
	return a->buf != NULL && f->frame == a->buf;
}

#endif
