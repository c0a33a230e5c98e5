/*
 * perfring.h - io_uring setup and SQE allocation shared by the perf tools
 * (net001-bench's workers, baseline-uring).
 *
 * A ring belongs to the one thread that submits to and reaps it; these
 * functions keep no state of their own. SQE pointers are valid until the
 * next submit.
 */
#ifndef NET001_PERFRING_H
#define NET001_PERFRING_H

#include <liburing.h>

/*
 * A ring of entries SQEs and cq_entries CQEs for one thread. Asks for
 * SINGLE_ISSUER | DEFER_TASKRUN and falls back to a plain ring on a
 * kernel without them. Returns 0 or -errno.
 */
int perfring_init(struct io_uring *ring, unsigned entries, unsigned cq_entries);

/* An SQE, submitting what is queued first if the SQ is full; NULL only if
 * it is still full after that. */
static inline struct io_uring_sqe *perfring_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

#endif
