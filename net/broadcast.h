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

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

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
void bcast_leave(struct worker *co, struct conn *c, uint32_t slot);

/* Receivers' cursors (struct bcur in conn.h) in this worker's log: */
/* log bytes the connection still has to get (broadcasts ahead of it) */
uint64_t bcast_pending(const struct worker *co, const struct conn *c);
/* whether a partial send stopped inside a broadcast frame */
bool bcast_mid_frame(const struct conn *c);
/* Add iovecs (from iov[*n], at most max in all) for log bytes to send
 * next: with rest_only, the rest of a frame a partial send began (the
 * stream needs it before anything else); without, the whole frames after
 * it up to a fair share, passing over the connection's own. Returns
 * bytes. */
uint32_t bcast_gather(struct worker *co, struct conn *c, uint32_t slot, bool rest_only,
                      struct iovec *iov, int max, int *n);
/* A connection out of the audience with no send in flight: the rest of
 * a frame it is in the middle of is copied into its own output queue, so
 * it no longer holds the log. */
void bcast_unpin(struct worker *co, struct conn *c, uint32_t slot);
/* n log bytes were sent (or taken into TLS records): move the cursor and
 * count the deliveries completed. */
void bcast_sent(struct worker *co, struct conn *c, uint32_t slot, uint32_t n);
/* Fan a valid BROADCAST frame from slot out to every other eligible
 * connection on every core. owner as for handle_frame(). */
void bcast_send(struct worker *co, uint32_t slot, const struct frame_view *f,
                struct rbuf *owner);
/* Once per loop turn: take what other workers queued for this one into
 * the log, retry held items, resume broadcasters when the log caught up,
 * and mark receivers with broadcasts to send. */
void bcast_poll(struct worker *co);
/* Tell core dst (MSG_RING) that its queue from this core has items. */
void bcast_wake(struct worker *co, uint32_t dst);
/* Drop a core-holder's reference to a shared buffer. */
void bcast_xrelease(struct worker *co, struct rbuf *s);
/* After every worker stopped: free what is still queued. Main thread. */
void bcast_cleanup(struct server *srv);

#endif
