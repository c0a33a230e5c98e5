/*
 * input.c - from bytes to frames: decode in place where a read holds whole
 * frames, and reassemble a frame that straddles reads into c->rx.
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

/*
 * Feed bytes into the partial frame in c->rx. Returns how many bytes of p
 * were used; the frame, once whole, has been handled and c->rx cleared.
 */
static size_t rx_feed(struct worker *co, struct conn *c, uint32_t slot,
                      const uint8_t *p, size_t n)
{
	size_t used = 0;

	for (;;) {
		struct rbuf *rx = c->rx;
		struct frame_view f;
		int r = frame_decode(&co->dec, rx->data, rx->len, &f);

		if (r > 0) {
			c->rx = NULL;
			handle_frame(co, c, slot, &f, rx);
			rbuf_put(co, rx);
			return used;
		}
		if (r < 0) {
			c->rx = NULL;
			rbuf_put(co, rx);
			frame_error(co, c, slot, r);
			return used;
		}
		if (used == n)
			return used;

		/* Need more: grow to the whole frame once its size is known. */
		uint32_t want = rx->len + f.need;
		if (want > rx->cap) {
			struct rbuf *big = rbuf_get(co, want);
			if (!big) {
				conn_close(co, c, slot, ERR_INTERNAL);
				return used;
			}
			memcpy(big->data, rx->data, rx->len);
			big->len = rx->len;
			rbuf_put(co, rx);
			c->rx = rx = big;
		}
		size_t k = f.need;
		if (k > n - used)
			k = n - used;
		memcpy(rx->data + rx->len, p + used, k);
		rx->len += (uint32_t)k;
		used += k;
	}
}

void conn_input(struct worker *co, struct conn *c, uint32_t slot,
                       const uint8_t *p, size_t n)
{
	if (c->rx) {
		size_t k = rx_feed(co, c, slot, p, n);
		p += k;
		n -= k;
	}
	while (n && !(c->flags & CF_CLOSING)) {
		struct frame_view f;
		int r = frame_decode(&co->dec, p, n, &f);

		if (r > 0) {
			handle_frame(co, c, slot, &f, NULL);
			p += r;
			n -= (size_t)r;
		} else if (r == FRAME_NEED_MORE) {
			/* Straddles this read: keep the start, as small as fits. */
			uint32_t size = n >= FRAME_HEADER_SIZE ? f.size : RBUF_SMALL_CAP;
			struct rbuf *rx = rbuf_get(co, size);
			if (!rx) {
				conn_close(co, c, slot, ERR_INTERNAL);
				return;
			}
			memcpy(rx->data, p, n);
			rx->len = (uint32_t)n;
			c->rx = rx;
			return;
		} else if (r == FRAME_ECRC) {
			if (!frame_error(co, c, slot, r))
				return;
			p += f.size;
			n -= f.size;
		} else {
			frame_error(co, c, slot, r);
			return;
		}
	}
}

