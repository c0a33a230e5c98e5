/*
 * input.c - from bytes to frames: decode in place where a read holds whole
 * frames, and reassemble a frame that straddles reads into c->rx (the
 * logic is proto/reasm.h's, shared with libnet001 and the bench).
 *
 * Runs on the connection's worker thread. Frames decoded in place are
 * views into the caller's buffer, valid only during handle_frame(); c->rx
 * is the connection's own until the frame is whole, and handle_frame()
 * may take its own reference to it.
 */
#include <string.h>

#include "net/conn.h"
#include "net/handler.h"
#include "net/rbuf.h"
#include "net/worker.h"
#include "proto/msg.h"
#include "proto/reasm.h"

/* A framing error from the decoder: send it; close unless it is BAD_CRC. */
static bool frame_error(struct worker *co, struct conn *c, uint32_t slot, int err)
{
	unsigned code = err == FRAME_EMAGIC ? ERR_BAD_MAGIC
	              : err == FRAME_EVERSION ? ERR_BAD_VERSION
	              : err == FRAME_ETOOLARGE ? ERR_FRAME_TOO_LARGE : ERR_BAD_CRC;
	if (code != ERR_BAD_CRC)
		conn_log(co, slot, LOG_DEBUG, "close",
		         LOG_FIELDS(LOG_STR("reason", msg_error_label(code))),
		         " %s, closing", msg_error_name(code));
	conn_error(co, c, slot, code);
	return !(c->flags & CF_CLOSING);
}

void conn_rx_drop(struct worker *co, struct conn *c)
{
	frame_reasm_detach(&c->ra);
	if (c->rx)
		rbuf_put(co, c->rx);
	c->rx = NULL;
}

/*
 * Frames are decoded where they lie; one that straddles reads is gathered
 * by proto/reasm.h into c->rx, a pool buffer sized for it (header first,
 * then the whole frame), which handle_frame() may keep a reference to.
 */
void conn_input(struct worker *co, struct conn *c, uint32_t slot,
                const uint8_t *p, size_t n)
{
	while (!(c->flags & CF_CLOSING)) {
		struct frame_view f;
		int r = frame_reasm_next(&c->ra, &co->dec, &p, &n, &f);

		if (r > 0) {
			if (!frame_reasm_held(&c->ra, &f)) {
				handle_frame(co, c, slot, &f, NULL);
				continue;
			}
			/* The buffer goes with the frame: the handler may keep
			 * it; the next straddling frame gets a new one. */
			struct rbuf *rx = c->rx;
			frame_reasm_detach(&c->ra);
			c->rx = NULL;
			rx->len = f.size;
			handle_frame(co, c, slot, &f, rx);
			rbuf_put(co, rx);
		} else if (r == FRAME_NEED_MORE) {
			return;
		} else if (r == FRAME_REASM_NOBUF) {
			struct rbuf *big = rbuf_get(co, c->ra.want);
			if (!big) {
				conn_close(co, c, slot, ERR_INTERNAL);
				return;
			}
			frame_reasm_move(&c->ra, big->data, big->cap);
			if (c->rx)
				rbuf_put(co, c->rx);
			c->rx = big;
		} else if (r == FRAME_ECRC) {
			if (!frame_error(co, c, slot, r))
				return;
		} else {
			frame_error(co, c, slot, r);
			return;
		}
	}
}
