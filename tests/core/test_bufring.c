/*
 * Provided buffer ring tests: argument checks, the free-buffer count
 * through took/put/flush, a real recv that selects a buffer from the
 * ring, and both ways of tearing down (unregistering from a live ring;
 * after the ring has been exited, with ring NULL).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "core/bufring.h"

#define BGID 7

TestSuite(bufring, .timeout = 30);

static void ring_init(struct io_uring *ring)
{
	int ret = io_uring_queue_init(8, ring, 0);
	cr_assert_eq(ret, 0, "io_uring_queue_init: %s", strerror(-ret));
}

Test(bufring, rejects_counts_that_are_not_powers_of_two)
{
	struct io_uring ring;
	struct bufring br;
	ring_init(&ring);
	static const uint32_t bad[] = { 0, 3, 100, 65536 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&br, 0xA5, sizeof br);
		cr_expect_eq(bufring_init(&br, &ring, BGID, bad[i], 64), -EINVAL,
		             "count %u", bad[i]);
		cr_expect_null(br.ring, "count %u leaves br zero-filled", bad[i]);
		/* A zero-filled ring is safe to destroy, with or without a ring. */
		bufring_destroy(&br, &ring);
		bufring_destroy(&br, NULL);
	}
	io_uring_queue_exit(&ring);
}

Test(bufring, counts_buffers_out_and_back)
{
	struct io_uring ring;
	struct bufring br;
	ring_init(&ring);
	cr_assert_eq(bufring_init(&br, &ring, BGID, 8, 128), 0);
	cr_expect_eq(bufring_free(&br), 8);
	cr_expect_eq(bufring_addr(&br, 3) - bufring_addr(&br, 0), 3 * 128);

	bufring_took(&br);
	bufring_took(&br);
	cr_expect_eq(bufring_free(&br), 6);
	bufring_put(&br, 1);
	cr_expect_eq(bufring_flush(&br), 1);
	cr_expect_eq(bufring_flush(&br), 0, "nothing left to publish");
	cr_expect_eq(bufring_free(&br), 7);
	bufring_put(&br, 0);
	cr_expect_eq(bufring_flush(&br), 1);
	cr_expect_eq(bufring_free(&br), 8);

	bufring_destroy(&br, &ring);
	cr_expect_null(br.ring);
	/* Unregistered: the group id can be registered again. */
	cr_expect_eq(bufring_init(&br, &ring, BGID, 8, 128), 0);
	bufring_destroy(&br, &ring);
	io_uring_queue_exit(&ring);
}

Test(bufring, recv_selects_a_buffer_and_destroy_after_exit)
{
	struct io_uring ring;
	struct bufring br;
	int sv[2];
	ring_init(&ring);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(bufring_init(&br, &ring, BGID, 4, 64), 0);

	/* Two receives: one fills a buffer now, one stays in flight and is
	 * cancelled by exiting the ring. */
	static const char msg[] = "selected";
	cr_assert_eq(write(sv[1], msg, sizeof msg), (ssize_t)sizeof msg);
	for (int i = 0; i < 2; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		cr_assert_not_null(sqe);
		io_uring_prep_recv(sqe, sv[0], NULL, 64, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BGID;
	}
	cr_assert_eq(io_uring_submit(&ring), 2);
	struct io_uring_cqe *cqe;
	cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
	cr_assert_eq(cqe->res, (int)sizeof msg);
	cr_assert(cqe->flags & IORING_CQE_F_BUFFER);
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	io_uring_cqe_seen(&ring, cqe);
	bufring_took(&br);
	cr_expect_lt(bid, 4);
	cr_expect_eq(memcmp(bufring_addr(&br, bid), msg, sizeof msg), 0);
	cr_expect_eq(bufring_free(&br), 3);
	bufring_put(&br, bid);
	bufring_flush(&br);

	/* The ring's file is gone: destroy must not touch the registration. */
	io_uring_queue_exit(&ring);
	bufring_destroy(&br, NULL);
	cr_expect_null(br.ring);
	cr_expect_null(br.base);
	close(sv[0]);
	close(sv[1]);
}
