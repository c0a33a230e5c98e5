/*
 * sweep.c - the passes a worker makes over its connections once per loop
 * turn, and the whole-worker passes of back-pressure and shutdown: start
 * the sends of connections with output, re-arm receives that waited for
 * buffers, pause and resume broadcasters, drain and release everyone.
 *
 * Runs on the worker's thread. The lists it walks (dirty, nobuf, paused)
 * may hold stale slots: each entry is checked against the slot's flags.
 */
#include "proto/clock.h"
#include "net/broadcast.h"
#include "net/conn.h"
#include "net/worker.h"
#include "proto/msg.h"

void conn_flush_all(struct worker *co)
{
	if (!co->ndirty)
		return;
	/* The replies below are handed to the kernel by the submit that
	 * follows: the latency clock stops here. */
	uint64_t now = clock_now_ns();
	uint32_t kept = 0; /* entries that wait for the next turn */
	uint32_t started = 0;
	co->flush_more = false;
	for (uint32_t i = 0; i < co->ndirty; i++) {
		uint32_t slot = co->dirty[i];
		struct conn *c = &co->conns[slot];
		/* A turn starts at most FLUSH_BUDGET sends; the rest keep
		 * their place at the front of the list. Each send on loopback
		 * costs microseconds of kernel time, so a pass over a thousand
		 * receivers takes milliseconds; in between, the next turn reads
		 * what broadcasters sent meanwhile, and the receivers still to
		 * come in this pass carry it at once instead of a pass later. */
		if (started == FLUSH_BUDGET) {
			co->dirty[kept++] = slot;
			co->flush_more = true;
			continue;
		}
		c->flags &= ~CF_DIRTY;
		if (!(c->flags & CF_OPEN) || (c->flags & (CF_SEND | CF_HARD)))
			continue;
		if (c->tls && ctls_seal(co, c, slot) < 0)
			continue;
		if (sendq(c)->bytes || (!c->tls && bcast_pending(co, c))) {
			if (!conn_send(co, c, slot)) {
				co->dirty[kept++] = slot;
				c->flags |= CF_DIRTY;
				continue;
			}
			started++;
			if (c->replies) {
				metrics_observe_latency_n(&co->m, now - c->reply_t0, c->replies);
				c->replies = 0;
			}
		} else {
			conn_closing_progress(co, c, slot);
		}
	}
	co->ndirty = kept;
}

void conn_rearm_nobuf(struct worker *co)
{
	/* One receive per free buffer, in arrival order: re-arming them all
	 * would only turn straight back into ENOBUFS for most. */
	uint32_t budget = bufring_free(&co->br);
	uint32_t kept = 0;
	for (uint32_t i = 0; i < co->nnobuf; i++) {
		uint32_t slot = co->nobuf[i];
		struct conn *c = &co->conns[slot];
		if (!(c->flags & CF_NOBUF))
			continue;
		if (!(c->flags & CF_OPEN) || (c->flags & (CF_HARD | CF_HELD))) {
			c->flags &= ~CF_NOBUF; /* a held one re-arms when let go */
			continue;
		}
		if (budget == 0) {
			co->nobuf[kept++] = slot;
			continue;
		}
		budget--;
		c->flags &= ~CF_NOBUF;
		conn_maybe_recv(co, c, slot);
	}
	co->nnobuf = kept;
}

void conn_pause(struct worker *co, uint32_t slot)
{
	struct conn *c = &co->conns[slot];
	if (c->flags & (CF_PAUSED | CF_CLOSING) || co->npaused == 2 * co->srv->table_size)
		return;
	c->flags |= CF_PAUSED;
	co->paused[co->npaused++] = slot;
	conn_stop_recv(co, c, slot);
	conn_log(co, slot, LOG_DEBUG, "read_paused",
	         LOG_FIELDS(LOG_STR("cause", "broadcasts"), LOG_UINT("held", co->nheld),
	                    LOG_UINT("ahead", co->log.head - co->btail_fast)),
	         " paused: broadcasts wait (%u held for other cores, log %llu bytes ahead "
	         "of its slowest reader)", co->nheld,
	         (unsigned long long)(co->log.head - co->btail_fast));
}

void conn_resume_all(struct worker *co)
{
	for (uint32_t i = 0; i < co->npaused; i++) {
		uint32_t slot = co->paused[i];
		struct conn *c = &co->conns[slot];
		if (!(c->flags & CF_PAUSED))
			continue; /* closed, or a new connection in the slot */
		c->flags &= ~CF_PAUSED;
		conn_maybe_recv(co, c, slot);
	}
	co->npaused = 0;
}

void conn_drain_all(struct worker *co)
{
	for (uint32_t slot = 0; slot < co->srv->table_size; slot++) {
		struct conn *c = &co->conns[slot];
		if ((c->flags & CF_OPEN) && !(c->flags & CF_CLOSING))
			conn_close(co, c, slot, ERR_SHUTTING_DOWN);
	}
}

void conn_release_all(struct worker *co)
{
	for (uint32_t slot = 0; slot < co->srv->table_size; slot++) {
		struct conn *c = &co->conns[slot];
		if ((c->flags & CF_OPEN) && !(c->flags & CF_HARD))
			conn_close_hard(co, c, slot);
	}
}
