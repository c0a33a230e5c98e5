/*
 * broadcast.h - BROADCAST fan-out: to the eligible connections of this
 * worker and, through one SPSC queue per ordered pair of workers, of every
 * other (the diagram is at the top of broadcast.c).
 *
 * Everything runs on the calling worker's thread but bcast_cleanup(),
 * which main() calls after every worker stopped.
 */
#ifndef NET001_NET_BROADCAST_H
#define NET001_NET_BROADCAST_H

#include <stdint.h>

#include "proto/frame.h"

struct worker;
struct server;
struct conn;
struct rbuf;

/* Broadcasts a core could not queue yet (the queue was full), in order. */
struct holdq {
	void **v;
	uint32_t head, tail, cap; /* tail - head items; cap a power of two */
};

/* A connection becomes eligible to receive broadcasts, or stops being. */
void bcast_join(struct worker *co, struct conn *c, uint32_t slot);
void bcast_leave(struct worker *co, struct conn *c);
/* Fan a valid BROADCAST frame from slot out to every other eligible
 * connection on every core. owner as for handle_frame(). */
void bcast_send(struct worker *co, uint32_t slot, const struct frame_view *f,
                struct rbuf *owner);
/* Deliver what other cores queued for this one; retry held items. Once
 * per loop iteration. */
void bcast_poll(struct worker *co);
/* Tell core dst (MSG_RING) that its queue from this core has items. */
void bcast_wake(struct worker *co, uint32_t dst);
/* Drop a core-holder's reference to a shared buffer. */
void bcast_xrelease(struct worker *co, struct rbuf *s);
/* After every worker stopped: free what is still queued. Main thread. */
void bcast_cleanup(struct server *srv);

#endif
