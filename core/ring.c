/*
 * ring.c - see ring.h.
 */
#include "core/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ring_init(struct ring *r, unsigned sq_entries, unsigned cq_entries)
{
	struct io_uring_params p;

	memset(r, 0, sizeof *r);
	memset(&p, 0, sizeof p);
	/* SINGLE_ISSUER: only this thread submits, so the kernel skips
	 *   cross-thread locking; DEFER_TASKRUN: completions are produced
	 *   only when we wait, in one batch, with no interrupts meanwhile;
	 * CQSIZE: multishot recv and accept post many completions per
	 *   submission, so the CQ is far larger than the SQ;
	 * SUBMIT_ALL: one failing SQE must not hold back the rest. */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
	          IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = cq_entries;
	int e = io_uring_queue_init_params(sq_entries, &r->u, &p);
	if (e == -EINVAL) {
		r->fallback = true;
		memset(&p, 0, sizeof p);
		p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN;
		p.cq_entries = cq_entries;
		e = io_uring_queue_init_params(sq_entries, &r->u, &p);
	}
	if (e < 0)
		return e;
	/* Registered ring fd: io_uring_enter skips the fd table lookup. */
	io_uring_register_ring_fd(&r->u);
	return 0;
}

void ring_exit(struct ring *r)
{
	if (r->u.ring_fd >= 0)
		io_uring_queue_exit(&r->u);
	r->u.ring_fd = -1;
	free(r->backlog);
	r->backlog = NULL;
	r->nbacklog = r->cap = 0;
}

int ring_submit(struct ring *r)
{
	uint32_t moved = 0;
	int total = 0;

	for (;;) {
		/* The backlog goes in first, in order, as far as the SQ has room. */
		struct io_uring_sqe *sqe;
		while (moved < r->nbacklog && (sqe = io_uring_get_sqe(&r->u)))
			*sqe = r->backlog[moved++];
		int n = io_uring_submit(&r->u);
		if (n == -EINTR)
			continue;
		if (n < 0 || (n == 0 && moved < r->nbacklog)) {
			/* Taken nothing: what was moved stays in the SQ, the rest
			 * in the backlog, until the next call. */
			memmove(r->backlog, r->backlog + moved,
			        sizeof *r->backlog * (r->nbacklog - moved));
			r->nbacklog -= moved;
			return n < 0 ? n : total;
		}
		total += n;
		if (moved == r->nbacklog) {
			r->nbacklog = 0;
			return total;
		}
	}
}

struct io_uring_sqe *ring_sqe(struct ring *r)
{
	struct io_uring_sqe *sqe;

	if (!r->nbacklog) {
		if ((sqe = io_uring_get_sqe(&r->u)))
			return sqe;
		if (ring_submit(r) >= 0 && !r->nbacklog && (sqe = io_uring_get_sqe(&r->u)))
			return sqe;
	}
	/* The kernel takes nothing for now: hold this one back, in order. */
	if (r->nbacklog == r->cap) {
		uint32_t cap = r->cap ? 2 * r->cap : 64;
		struct io_uring_sqe *b = realloc(r->backlog, sizeof *b * cap);
		if (!b)
			return NULL;
		r->backlog = b;
		r->cap = cap;
	}
	sqe = &r->backlog[r->nbacklog++];
	memset(sqe, 0, sizeof *sqe);
	return sqe;
}
