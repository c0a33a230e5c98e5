/*
 * ring.h - one thread's io_uring: set up with the flags a worker wants,
 * SQEs that are never NULL, and submission that never spins.
 *
 * Owned by one thread (the ring is SINGLE_ISSUER). ring_sqe() hands out an
 * SQE to fill before the next ring_submit(); when the submission queue is
 * full it submits to make room. When the kernel takes nothing (-EAGAIN: no
 * memory for requests; -EBUSY: completions it cannot post until the CQ is
 * reaped), the SQE comes from a backlog kept in order behind the SQ, and
 * ring_submit() moves the backlog in as room appears. The owner calls
 * ring_submit() before each wait, and reaping completions is what makes
 * room: nobody spins on the kernel.
 *
 * What an SQE points to (a sendmsg header, a timespec) must stay valid
 * until the SQE is submitted; ring_backlog() says whether some still wait.
 */
#ifndef NET001_CORE_RING_H
#define NET001_CORE_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct ring {
	struct io_uring u;
	struct io_uring_sqe *backlog;  /* SQEs the kernel has not taken, in order */
	uint32_t nbacklog, cap;
	bool fallback;                 /* the kernel refused SINGLE_ISSUER|DEFER_TASKRUN */
};

/*
 * A ring with sq_entries SQEs and cq_entries CQEs: SINGLE_ISSUER and
 * DEFER_TASKRUN when the kernel has them (COOP_TASKRUN otherwise; see
 * r->fallback), a registered ring fd. 0 or -errno (-ENOSYS or -EPERM when
 * io_uring is not allowed here).
 */
int ring_init(struct ring *r, unsigned sq_entries, unsigned cq_entries);
void ring_exit(struct ring *r);

/* An SQE to fill. NULL only when the kernel takes nothing and there is no
 * memory to hold it back. */
struct io_uring_sqe *ring_sqe(struct ring *r);

/* Hand what is queued to the kernel, the backlog first. Returns how many
 * the kernel took, or -errno (-EAGAIN, -EBUSY) with the rest still queued. */
int ring_submit(struct ring *r);

/* SQEs still waiting for the kernel beyond the SQ. */
static inline uint32_t ring_backlog(const struct ring *r)
{
	return r->nbacklog;
}

#endif
