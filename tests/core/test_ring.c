/*
 * core/ring: SQEs are never NULL and submission never spins, even when
 * the completion queue is full and nobody reaps it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <time.h>

#include "core/ring.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * 8 SQ entries, 16 CQ entries, and 5000 NOPs queued without reaping one
 * completion: the SQ fills over and over (ring_sqe submits to make room),
 * the CQ fills and overflows (the kernel holds completions, or refuses
 * more SQEs and they wait in the backlog). Then every NOP completes
 * exactly once, in submission order, and nothing took long.
 */
Test(ring, full_completion_queue_neither_loses_nor_spins, .timeout = 30)
{
	struct ring r;
	cr_assert_eq(ring_init(&r, 8, 16), 0);
	enum { N = 5000 };
	uint64_t t0 = now_ms();
	uint32_t most_backlog = 0;
	for (uint64_t i = 0; i < N; i++) {
		struct io_uring_sqe *sqe = ring_sqe(&r);
		cr_assert_not_null(sqe, "SQE %llu", (unsigned long long)i);
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, i);
		if (ring_backlog(&r) > most_backlog)
			most_backlog = ring_backlog(&r);
	}
	int rs = ring_submit(&r);
	bool overflowed = IO_URING_READ_ONCE(*r.u.sq.kflags) & IORING_SQ_CQ_OVERFLOW;
	fprintf(stderr, "5000 NOPs into a 16-entry CQ: overflow %s, backlog at most %u, "
	        "last submit %d\n", overflowed ? "yes" : "no", most_backlog, rs);
	cr_expect(overflowed || most_backlog > 0, "the CQ was full while submitting");

	uint64_t next = 0;
	while (next < N) {
		struct io_uring_cqe *cqe;
		int e = ring_backlog(&r) ? ring_submit(&r) : 0;
		(void)e;
		struct __kernel_timespec ts = { 1, 0 };
		cr_assert_eq(io_uring_wait_cqe_timeout(&r.u, &cqe, &ts), 0,
		             "completion %llu arrives", (unsigned long long)next);
		cr_assert_eq(io_uring_cqe_get_data64(cqe), next, "in order");
		cr_assert_eq(cqe->res, 0);
		io_uring_cqe_seen(&r.u, cqe);
		next++;
	}
	struct io_uring_cqe *cqe;
	cr_expect_neq(io_uring_peek_cqe(&r.u, &cqe), 0, "nothing completed twice");
	cr_expect_lt(now_ms() - t0, 5000, "no spinning");
	ring_exit(&r);
}
