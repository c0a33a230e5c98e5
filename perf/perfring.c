/*
 * perfring.c - see perfring.h.
 */
#include "perf/perfring.h"

#include <errno.h>
#include <string.h>

int perfring_init(struct io_uring *ring, unsigned entries, unsigned cq_entries)
{
	struct io_uring_params p = { 0 };
	/* One thread submits and reaps: let the kernel skip cross-thread
	 * work and run task work only when we wait. */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
	          IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = cq_entries;
	int ret = io_uring_queue_init_params(entries, ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof p);
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = cq_entries;
		ret = io_uring_queue_init_params(entries, ring, &p);
	}
	return ret;
}
