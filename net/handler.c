/*
 * handler.c - what the server does with each valid frame (PROTOCOL.md
 * sections 2 to 4), in the check order of section 3: rate limit, type,
 * authentication, payload shape. Magic, version, length and CRC were
 * checked by the decoder before a frame gets here.
 *
 * Runs on the connection's core thread. A frame view is valid only during
 * the call unless owner is set (then a reference to owner may be kept).
 */
#include <openssl/rand.h>
#include <stdatomic.h>
#include <string.h>

#include "net/auth.h"
#include "net/broadcast.h"
#include "net/conn.h"
#include "net/handler.h"
#include "net/outq.h"
#include "net/rbuf.h"
#include "net/worker.h"
#include "proto/msg.h"

/* ECHO payloads at least this big are answered by rewriting the request
 * in place (type byte and CRC) when it was reassembled: no copy at all. */
#define ECHO_INPLACE_MIN 2048u

/* Below this payload size recomputing the CRC (ISA-L, ~16 GB/s) beats
 * deriving it (a few dozen carry-less multiplications). */
#define RETYPE_MIN 2048u

uint32_t reply_crc(const struct worker *co, const uint8_t *fr, uint32_t old, uint8_t from,
                   uint16_t len)
{
	uint8_t to = fr[5];
	if (from == FRAME_PING && to == FRAME_PONG && len == MSG_PING_LEN)
		return old ^ co->pong_crc_delta;
	if (len >= RETYPE_MIN)
		return frame_crc_retype(old, from, to, len);
	return frame_crc(0, fr, FRAME_HEADER_SIZE + (size_t)len);
}

/* A reply of this type is queued. */
static inline void reply_noted(struct worker *co, struct conn *c, uint8_t type)
{
	reply_started(co, c);
	metrics_frames_sent(&co->m, type, 1);
}

static bool rate_ok(struct worker *co, struct conn *c)
{
	const struct config *cfg = co->cfg;
	if (!bucket_take(&c->rl, cfg->rate_limit, co->now_ns))
		return false;
	if (!bucket_take(&co->global_rl, co->global_rate, co->now_ns)) {
		if (cfg->rate_limit)
			bucket_refund(&c->rl, cfg->rate_limit);
		return false;
	}
	return true;
}

static void on_ping(struct worker *co, struct conn *c, uint32_t slot,
                    const struct frame_view *f)
{
	if (!msg_ping_ok(f->len)) {
		conn_error(co, c, slot, ERR_BAD_PAYLOAD);
		return;
	}
	metrics_frame_received(&co->m, FRAME_PING);
	reply_noted(co, c, FRAME_PONG);
	if (out_reply(co, c, slot, f, FRAME_PONG) < 0)
		conn_close_hard(co, c, slot);
}

static void on_echo(struct worker *co, struct conn *c, uint32_t slot,
                    const struct frame_view *f, struct rbuf *owner)
{
	int r;

	metrics_frame_received(&co->m, FRAME_ECHO);
	reply_noted(co, c, FRAME_ECHO_REPLY);
	if (owner && f->len >= ECHO_INPLACE_MIN) {
		/* The reassembled request becomes its own reply: new type
		 * byte, new CRC derived from the old, payload untouched. */
		uint8_t *fr = owner->data;
		uint8_t *crc = fr + FRAME_HEADER_SIZE + f->len;
		fr[5] = FRAME_ECHO_REPLY;
		frame_put_u32(crc, reply_crc(co, fr, frame_get_u32(crc), FRAME_ECHO, f->len));
		r = out_append_ref(co, c, slot, owner, 0, f->size);
	} else {
		r = out_reply(co, c, slot, f, FRAME_ECHO_REPLY);
	}
	if (r < 0)
		conn_close_hard(co, c, slot);
}

static void on_broadcast(struct worker *co, uint32_t slot, const struct frame_view *f,
                         struct rbuf *owner)
{
	metrics_frame_received(&co->m, FRAME_BROADCAST);
	bcast_send(co, slot, f, owner);
}

static void on_auth(struct worker *co, struct conn *c, uint32_t slot,
                    const struct frame_view *f)
{
	struct msg_auth a;
	uint8_t reply[MSG_AUTH_REPLY_LEN];
	uint8_t session[MSG_SESSION_ID_LEN];
	bool ok = false;

	if (msg_auth_parse(f->payload, f->len, &a) < 0) {
		conn_error(co, c, slot, ERR_BAD_PAYLOAD);
		return;
	}
	metrics_frame_received(&co->m, FRAME_AUTH);
	if (co->cfg->auth_file) {
		const struct auth_table *t =
			atomic_load_explicit(&co->srv->auth, memory_order_acquire);
		ok = t && auth_check(t, a.user, a.user_len, a.token, a.token_len);
		if (ok && RAND_bytes(session, sizeof session) != 1)
			ok = false;
	}
	msg_auth_reply(reply, ok, session);
	reply_noted(co, c, FRAME_AUTH_REPLY);
	if (out_frame(co, c, slot, FRAME_AUTH_REPLY, reply, sizeof reply) < 0) {
		conn_close_hard(co, c, slot);
		return;
	}
	if (ok) {
		c->flags |= CF_AUTHED;
		bcast_join(co, c, slot);
		return;
	}
	/* A failed attempt also ends an earlier success. Attempts count
	 * only when authentication is on. */
	c->flags &= ~CF_AUTHED;
	if (co->cfg->auth_file) {
		bcast_leave(co, c, slot);
		bcast_unpin(co, c, slot);
	}
	if (co->cfg->auth_file && ++c->auth_fails >= 3) {
		conn_log(co, slot, LOG_DEBUG, "close",
		         LOG_FIELDS(LOG_STR("reason", "auth_failed"), LOG_UINT("attempts", 3)),
		         " auth failed 3 times");
		conn_close(co, c, slot, ERR_AUTH_FAILED);
	}
}

static void on_data(struct worker *co, uint32_t slot, const struct frame_view *f)
{
	metrics_frame_received(&co->m, FRAME_DATA);
	if (co->srv->data_fn)
		co->srv->data_fn(co->srv->data_ctx, ((uint64_t)co->id << 32) | slot,
		                 f->payload, f->len);
}

void handle_frame(struct worker *co, struct conn *c, uint32_t slot,
                  const struct frame_view *f, struct rbuf *owner)
{
	c->last_frame_s = co->now_s;

	if (!rate_ok(co, c)) {
		conn_error(co, c, slot, ERR_RATE_LIMITED);
		return;
	}
	bool need_auth = co->cfg->auth_file && !(c->flags & CF_AUTHED);

	switch (f->type) {
	case FRAME_PING:
		on_ping(co, c, slot, f);
		break;
	case FRAME_ECHO:
		on_echo(co, c, slot, f, owner);
		break;
	case FRAME_AUTH:
		on_auth(co, c, slot, f);
		break;
	case FRAME_BROADCAST:
		if (need_auth)
			conn_error(co, c, slot, ERR_AUTH_REQUIRED);
		else
			on_broadcast(co, slot, f, owner);
		break;
	case FRAME_DATA:
		if (need_auth)
			conn_error(co, c, slot, ERR_AUTH_REQUIRED);
		else
			on_data(co, slot, f);
		break;
	default:
		conn_error(co, c, slot, ERR_UNSUPPORTED_TYPE);
		break;
	}
}
