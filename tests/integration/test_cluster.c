/*
 * --cluster: BROADCAST across servers through a real nats-server (started
 * and stopped here on free loopback ports; nothing mocked).
 *
 *  - 3 servers x 2 threads on one nats-server; a sender on each node, 1000
 *    broadcasts each of 0..65535 bytes; 300 receivers spread over the
 *    nodes: every broadcast of every other client exactly once, in each
 *    sender's order, none of its own;
 *  - the same on two nats-servers joined by a route;
 *  - kill -9 of nats-server in a storm, restarted: no server stalls, local
 *    delivery never stops, every node reconnects, the gaps each node
 *    counts are what its receivers missed, no duplicate, no bad frame;
 *  - kill -9 of one server: the others carry on, and what it published
 *    arrives;
 *  - TLS to NATS with a CA and a client certificate;
 *  - kill -9 of one of two brokers for good: the nodes on it move to the
 *    other URL of their list;
 *  - garbage on the subject: counted, dropped, never delivered;
 *  - NATS refuses a node's password, at its start and on a reconnection:
 *    it serves locally, says why, and is back once the password is taken;
 *  - two servers with one --node-id: everything still arrives once, in
 *    order; the clash is counted and reported once, not logged per message;
 *  - flags.
 *
 * Sizes: NET001_CLUSTER_COUNT (broadcasts per sender, default 1000) and
 * NET001_CLUSTER_RECEIVERS (default 300); NET001_CLUSTER_BIG=1 makes every
 * size uniform in 0..65535 (the default mixes mostly small ones with
 * 65535-byte and other large ones, as the single-server storm does).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "auth_file.h"
#include "exposition.h"
#include "harness.h"
#include "http_client.h"
#include "nats.h"
#include "ports.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "timing.h"
#include "tls_client.h"

#define NODES 3
#define MAX_RX 2000

static struct nats N[2];
static struct srv S[NODES];

static uint16_t free_port(void)
{
	for (;;) {
		uint16_t p = port_random();
		if (port_free(p))
			return p;
	}
}

static void fini(void)
{
	for (int i = 0; i < NODES; i++)
		srv_cleanup(&S[i]);
	nats_cleanup(&N[0]);
	nats_cleanup(&N[1]);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : def;
}

/* ---- servers and their metrics ------------------------------------------------------ */

/* Node i on the NATS server at url, as --node-id id (NULL: "node<i>"),
 * with up to 6 more arguments (NULL-terminated, or NULL). */
static void node_start_args(int i, const char *url, const char *id, const char *const *more)
{
	char own[16];
	snprintf(own, sizeof own, "node%d", i);
	id = id ? id : own;
	const char *args[24] = { "--threads", "2", "--rate-limit", "0",
	                         "--global-rate-limit", "0", "--max-connections", "2000",
	                         "--cluster", url, "--node-id", id,
	                         "--cluster-backlog", "64m", "--idle-timeout", "0" };
	size_t n = 16;
	for (size_t k = 0; more && more[k] && k < 6; k++)
		args[n++] = more[k];
	args[n] = NULL;
	cr_assert_eq(srv_start(&S[i], args), 0, "node %d starts", i);
}

static void node_start_url(int i, const char *url, const char *id)
{
	node_start_args(i, url, id, NULL);
}

static void node_start_as(int i, uint16_t nats_port, const char *id)
{
	char url[64];
	snprintf(url, sizeof url, "nats://127.0.0.1:%u", nats_port);
	node_start_url(i, url, id);
}

static void node_start(int i, uint16_t nats_port)
{
	node_start_as(i, nats_port, NULL);
}

static uint64_t metric(int node, const char *series)
{
	char *text = http_scrape(S[node].metrics_port);
	uint64_t v = UINT64_MAX;
	if (text && !sample_u64(text, series, &v))
		v = UINT64_MAX;
	free(text);
	return v;
}

static void wait_metric(int node, const char *series, uint64_t want, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms, v = 0;
	while (mono_ms() < end) {
		v = metric(node, series);
		if (v == want)
			return;
		sleep_ms(50);
	}
	fprintf(stderr, "node %d's log:\n", node);
	srv_log_print(&S[node]);
	cr_assert_fail("node %d: %s is %llu, want %llu", node, series, (unsigned long long)v,
	               (unsigned long long)want);
}

/* ---- the traffic ----------------------------------------------------------------------- */

static bool all_big;

/* Sender k's i-th broadcast: its size and bytes (as in test_broadcast.c). */
static size_t bsize(int k, int i)
{
	uint32_t h = (uint32_t)(k * 2654435761u) ^ (uint32_t)(i * 40503u);
	h ^= h >> 13;
	h *= 2246822519u;
	h ^= h >> 15;
	if (all_big)
		return k == 0 && i % 97 == 3 ? 0 : 4 + h % 65532;
	if (i == 7)
		return 65535;
	if (k == 0 && i % 97 == 3)
		return 0;
	if (i % 89 == 5)
		return 4 + h % 65532;
	return 4 + h % 700;
}

static void bfill(uint8_t *p, size_t n, int k, int i)
{
	if (n == 0)
		return;
	p[0] = (uint8_t)k;
	p[1] = (uint8_t)(i >> 16);
	p[2] = (uint8_t)(i >> 8);
	p[3] = (uint8_t)i;
	for (size_t j = 4; j < n; j++)
		p[j] = (uint8_t)(k * 31 + i * 7 + (int)j);
}

#define PROBE 0xEE /* payload [PROBE, k]: a warm-up broadcast, not counted */

struct rx {
	int fd;
	int node;
	int self;              /* sender index if a sender, else -1 */
	bool lenient;          /* gaps allowed (NATS killed): count them */
	size_t have;
	uint8_t *buf;
	int next[NODES];       /* next expected index per sender */
	int got[NODES];        /* received per sender */
	bool probe[NODES];
	int bad;
	bool closed;
	uint16_t error;
};

static void rx_frame(struct rx *r, const uint8_t *fr)
{
	uint8_t type = fr[5];
	uint16_t len = frame_get_u16(fr + 6);
	const uint8_t *p = fr + FRAME_HEADER_SIZE;

	if (type == FRAME_ERROR) {
		r->error = frame_get_u16(p);
		return;
	}
	if (type != FRAME_BROADCAST) {
		r->bad++;
		return;
	}
	if (len == 2 && p[0] == PROBE) {
		if (p[1] < NODES && p[1] != r->self)
			r->probe[p[1]] = true;
		else
			r->bad++;
		return;
	}
	int k, i;
	if (len == 0) {
		k = 0;
		i = r->next[0];
		/* Only sender 0's index i % 97 == 3 is empty: lenient mode finds
		 * the next such index. */
		if (r->lenient)
			while (bsize(0, i) != 0)
				i++;
	} else {
		if (len < 4) {
			r->bad++;
			return;
		}
		k = p[0];
		i = (p[1] << 16) | (p[2] << 8) | p[3];
	}
	if (k >= NODES || k == r->self || i < r->next[k] || (!r->lenient && i != r->next[k]) ||
	    bsize(k, i) != len) {
		r->bad++;
		return;
	}
	static _Thread_local uint8_t want[65535];
	bfill(want, len, k, i);
	if (memcmp(want, p, len) != 0) {
		r->bad++;
		return;
	}
	r->next[k] = i + 1;
	r->got[k]++;
}

/* Up to about 1 MiB a call: every receiver gets its turn (one that
 * waits 2 s for the test while behind is a slow consumer). */
static void rx_read(struct rx *r)
{
	for (size_t budget = 0; budget < (1u << 20);) {
		ssize_t n = recv(r->fd, r->buf + r->have, 2 * FRAME_MAX_SIZE - r->have, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			r->closed = true;
			return;
		}
		if (n < 0)
			return;
		budget += (size_t)n;
		r->have += (size_t)n;
		size_t off = 0;
		for (;;) {
			struct frame_view f;
			int c = frame_decode(NULL, r->buf + off, r->have - off, &f);
			if (c == FRAME_NEED_MORE)
				break;
			if (c < 0) {
				r->bad++;
				r->closed = true;
				return;
			}
			rx_frame(r, r->buf + off);
			off += (size_t)c;
		}
		memmove(r->buf, r->buf + off, r->have - off);
		r->have -= off;
	}
}

/* Read every receiver until done(rx) or time is up. */
static void pump(struct rx *rx, int n, bool (*done)(const struct rx *, int, void *), void *arg,
                 int timeout_ms)
{
	struct pollfd *pfd = calloc((size_t)n, sizeof *pfd);
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		if (done(rx, n, arg) || mono_ms() > end)
			break;
		for (int i = 0; i < n; i++) {
			pfd[i].fd = rx[i].closed ? -1 : rx[i].fd;
			pfd[i].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n, 50) <= 0)
			continue;
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				rx_read(&rx[i]);
	}
	free(pfd);
}

static bool all_counted(const struct rx *rx, int n, void *arg)
{
	int count = *(int *)arg;
	for (int i = 0; i < n; i++) {
		if (rx[i].closed)
			continue;
		/* With gaps allowed: up to each sender's last broadcast. */
		for (int k = 0; k < NODES; k++)
			if (k != rx[i].self && (rx[i].lenient ? rx[i].next[k] : rx[i].got[k]) < count)
				return false;
	}
	return true;
}

static bool all_probed(const struct rx *rx, int n, void *arg)
{
	(void)arg;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < NODES; k++)
			if (k != rx[i].self && !rx[i].probe[k] && !rx[i].closed)
				return false;
	return true;
}

static bool never(const struct rx *rx, int n, void *arg)
{
	(void)rx;
	(void)n;
	(void)arg;
	return false;
}

/* Receivers 0..NODES-1 are the senders, one on each node; the rest are
 * spread round-robin. */
static struct rx *connect_all(int nrx)
{
	struct rx *rx = calloc((size_t)nrx, sizeof *rx);
	for (int i = 0; i < nrx; i++) {
		rx[i].node = i % NODES;
		rx[i].fd = tc_connect(S[rx[i].node].port);
		cr_assert_geq(rx[i].fd, 0, "receiver %d connects", i);
		rx[i].self = i < NODES ? i : -1;
		rx[i].buf = malloc(2 * FRAME_MAX_SIZE);
	}
	for (int i = 0; i < nrx; i++)
		cr_assert(tc_ping(rx[i].fd, (uint64_t)i, 5000), "receiver %d is served", i);
	for (int i = 0; i < nrx; i++)
		fcntl(rx[i].fd, F_SETFL, fcntl(rx[i].fd, F_GETFL) | O_NONBLOCK);
	return rx;
}

static void free_all(struct rx *rx, int nrx)
{
	for (int i = 0; i < nrx; i++) {
		if (rx[i].fd >= 0)
			close(rx[i].fd);
		free(rx[i].buf);
	}
	free(rx);
}

/* Write a whole frame on a non-blocking socket. */
static int send_frame_nb(int fd, const void *payload, size_t len)
{
	uint8_t *fr = malloc(FRAME_MAX_SIZE);
	size_t n = frame_encode(fr, FRAME_BROADCAST, payload, (uint16_t)len), off = 0;
	uint64_t end = mono_ms() + 30000;
	while (off < n && mono_ms() < end) {
		ssize_t w = send(fd, fr + off, n - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, 100);
		} else {
			break;
		}
	}
	free(fr);
	return off == n ? 0 : -1;
}

/* Until every receiver heard a probe from every sender not its own: each
 * node's subscription (and the route between brokers) is in place. */
static void warm_up(struct rx *rx, int nrx)
{
	uint64_t end = mono_ms() + 20000;
	while (!all_probed(rx, nrx, NULL) && mono_ms() < end) {
		for (int k = 0; k < NODES; k++) {
			uint8_t p[2] = { PROBE, (uint8_t)k };
			send_frame_nb(rx[k].fd, p, 2);
		}
		pump(rx, nrx, all_probed, NULL, 300);
	}
	cr_assert(all_probed(rx, nrx, NULL), "every node hears every other before the storm");
	/* Probes still on their way arrive before the storm's frames from the
	 * same sender (they are in order), and are not counted. */
}

struct sender {
	int fd;
	int k;
	int count;
	int pause_us;
	_Atomic int sent;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	uint8_t *p = malloc(65535);
	for (int i = 0; i < s->count; i++) {
		size_t n = bsize(s->k, i);
		bfill(p, n, s->k, i);
		if (send_frame_nb(s->fd, p, n) < 0)
			break;
		atomic_store(&s->sent, i + 1);
		if (s->pause_us)
			usleep((useconds_t)s->pause_us);
	}
	free(p);
	return NULL;
}

/* Receivers other than senders read only; senders are read too (they get
 * the other senders' broadcasts), by the same pump. */
static void storm(struct rx *rx, int nrx, int count, int pause_us, void (*during)(void),
                  int timeout_ms)
{
	struct sender snd[NODES];
	pthread_t t[NODES];
	for (int k = 0; k < NODES; k++) {
		snd[k] = (struct sender){ .fd = rx[k].fd, .k = k, .count = count,
		                          .pause_us = pause_us };
		pthread_create(&t[k], NULL, send_all, &snd[k]);
	}
	if (during) {
		/* Half-way through sender 0's broadcasts. */
		uint64_t end = mono_ms() + 60000;
		while (atomic_load(&snd[0].sent) < count / 2 && mono_ms() < end)
			pump(rx, nrx, never, NULL, 20);
		during();
	}
	pump(rx, nrx, all_counted, &count, timeout_ms);
	for (int k = 0; k < NODES; k++)
		pthread_join(t[k], NULL);
	for (int k = 0; k < NODES; k++)
		cr_assert_eq(atomic_load(&snd[k].sent), count, "sender %d sent all", k);
}

static void check_exact(struct rx *rx, int nrx, int count)
{
	for (int i = 0; i < nrx; i++) {
		cr_assert_eq(rx[i].bad, 0, "receiver %d (node %d): %d bad, repeated or out-of-order "
		             "frames", i, rx[i].node, rx[i].bad);
		cr_assert_not(rx[i].closed, "receiver %d stays open (error %u)", i, rx[i].error);
		for (int k = 0; k < NODES; k++) {
			int want = k == rx[i].self ? 0 : count;
			cr_assert_eq(rx[i].got[k], want, "receiver %d (node %d) got %d of %d from "
			             "sender %d", i, rx[i].node, rx[i].got[k], want, k);
		}
	}
	for (int n = 0; n < NODES; n++) {
		cr_assert_eq(metric(n, "net001_cluster_sequence_gaps_total"), 0, "node %d: no gaps", n);
		cr_assert_eq(metric(n, "net001_cluster_dropped_total{reason=\"duplicate\"}"), 0);
		cr_assert_eq(metric(n, "net001_cluster_dropped_total{reason=\"invalid\"}"), 0);
	}
}

/* Each node published its sender's broadcasts once (not once per core or
 * per receiver) and received the two others'. */
static void check_counts(int count)
{
	for (int n = 0; n < NODES; n++) {
		/* The probes went through the cluster too. */
		uint64_t pub = metric(n, "net001_cluster_published_total");
		uint64_t rcv = metric(n, "net001_cluster_received_total");
		uint64_t probes = pub - (uint64_t)count;
		cr_assert(pub >= (uint64_t)count && probes < 200, "node %d published %llu", n,
		          (unsigned long long)pub);
		cr_assert(rcv >= 2 * (uint64_t)count && rcv - 2 * (uint64_t)count < 400,
		          "node %d received %llu", n, (unsigned long long)rcv);
	}
}

static void run_exact(uint16_t nats_port[NODES])
{
	int count = env_int("NET001_CLUSTER_COUNT", 1000);
	int nrx = env_int("NET001_CLUSTER_RECEIVERS", 300);
	all_big = env_int("NET001_CLUSTER_BIG", 0) != 0;
	cr_assert(nrx >= NODES && nrx <= MAX_RX);
	for (int i = 0; i < NODES; i++)
		node_start(i, nats_port[i]);
	struct rx *rx = connect_all(nrx);
	warm_up(rx, nrx);
	storm(rx, nrx, count, 0, NULL, 240000);
	check_exact(rx, nrx, count);
	check_counts(count);
	free_all(rx, nrx);
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);
}

TestSuite(cluster, .timeout = 300, .fini = fini);

Test(cluster, three_nodes_one_broker_exactly_once_in_order)
{
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	uint16_t p[NODES] = { N[0].port, N[0].port, N[0].port };
	run_exact(p);
}

Test(cluster, two_brokers_joined_by_a_route)
{
	uint16_t c0 = free_port(), c1 = free_port();
	cr_assert_eq(nats_run(&N[0], 0, c0, c1), 0);
	cr_assert_eq(nats_run(&N[1], 0, c1, c0), 0);
	/* Nodes 0 and 2 on the first broker, node 1 on the second. */
	uint16_t p[NODES] = { N[0].port, N[1].port, N[0].port };
	run_exact(p);
}

/* The password N[0] wants (its --pass argument points here). */
static char nats_pass[32];

/* Restart the broker on its port wanting this password. */
static void nats_restart_with(const char *pass)
{
	uint16_t port = N[0].port;
	nats_kill9(&N[0]);
	snprintf(nats_pass, sizeof nats_pass, "%s", pass);
	cr_assert_eq(nats_run(&N[0], port, 0, 0), 0, "nats-server restarts on its port");
}

/* A PING on fd answered, whatever broadcasts come before the PONG. */
static bool pong_through(int fd)
{
	static struct tc_frame f;
	if (tc_send_frame(fd, FRAME_PING, "12345678", 8) != 0)
		return false;
	while (tc_read_frame(fd, &f, 5000) == 0)
		if (f.type == FRAME_PONG)
			return true;
	return false;
}

/* A broadcast from node `from` reaches a client of node `to` within 10 s
 * (earlier calls' broadcasts may still be on their way: skipped). */
static bool broadcast_crosses(int from, int to)
{
	static struct tc_frame f;
	int tx = tc_connect(S[from].port), rx = tc_connect(S[to].port);
	const char *why = tx < 0 || rx < 0 ? "no connection" : !pong_through(rx) ? "no PONG" : NULL;
	bool seen = false;
	for (int i = 0; !why && !seen && i < 20; i++) {
		if (tc_send_frame(tx, FRAME_BROADCAST, "across", 6) != 0) {
			why = "the sender's connection failed";
			break;
		}
		int r;
		while (!seen && (r = tc_read_frame(rx, &f, 500)) == 0)
			seen = f.type == FRAME_BROADCAST && f.len == 6 &&
			       memcmp(f.payload, "across", 6) == 0;
		if (!seen && r != -ETIMEDOUT)
			why = "the receiver's connection failed";
	}
	if (!seen)
		fprintf(stderr, "broadcast_crosses(%d, %d): %s\n", from, to,
		        why ? why : "nothing came in 10 s");
	if (tx >= 0)
		close(tx);
	if (rx >= 0)
		close(rx);
	return seen;
}

/*
 * The broker refuses a node's password, at its start and later on a
 * reconnection (the NATS client then gives the connection up for good):
 * the node serves its clients meanwhile, says why once, and is connected
 * again within seconds of the broker taking its password, without a
 * restart. The server before this exited at start ("subscribe: Connection
 * Closed") and never came back from a refusal on a reconnection.
 */
Test(cluster, nats_refuses_the_password_then_takes_it)
{
	snprintf(nats_pass, sizeof nats_pass, "right");
	const char *auth[] = { "--user", "net001", "--pass", nats_pass, NULL };
	memcpy(N[0].args, auth, sizeof auth);
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	char right[96], other[96];
	snprintf(right, sizeof right, "nats://net001:right@127.0.0.1:%u", N[0].port);
	snprintf(other, sizeof other, "nats://net001:other@127.0.0.1:%u", N[0].port);
	node_start_url(0, right, NULL);
	node_start_url(1, right, NULL);
	node_start_url(2, other, NULL);
	wait_metric(0, "net001_cluster_up", 1, 10000);
	wait_metric(1, "net001_cluster_up", 1, 10000);
	cr_assert(broadcast_crosses(0, 1));
	sleep_ms(1000);
	cr_assert_eq(metric(2, "net001_cluster_up"), 0);
	int fd = tc_connect(S[2].port);
	cr_assert(tc_ping(fd, 2, 5000), "the refused node serves its clients");
	close(fd);
	cr_assert(srv_log_contains(&S[2], "the NATS client gave up its connection"));

	/* Now the broker wants node 2's password: nodes 0 and 1 are refused
	 * on their reconnection, node 2 gets in. */
	nats_restart_with("other");
	wait_metric(2, "net001_cluster_up", 1, 10000);
	sleep_ms(3000);
	for (int n = 0; n < 2; n++) {
		cr_assert_eq(metric(n, "net001_cluster_up"), 0);
		cr_assert_eq(srv_log_count(&S[n], "the NATS client gave up its connection"), 1,
		             "node %d said so once", n);
	}
	/* And back: nodes 0 and 1 reconnect by themselves. */
	nats_restart_with("right");
	wait_metric(0, "net001_cluster_up", 1, 10000);
	wait_metric(1, "net001_cluster_up", 1, 10000);
	cr_assert(broadcast_crosses(1, 0));
	cr_assert(broadcast_crosses(0, 1));
	for (int n = 0; n < 2; n++)
		cr_assert_geq(metric(n, "net001_cluster_reconnects_total"), 1);
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);
}

/*
 * TLS to NATS: a broker with its own self-signed certificate that asks
 * for a client certificate. Nodes given --cluster-ca (to trust it) and
 * --cluster-cert/--cluster-key connect and broadcasts cross; a node
 * without a client certificate is refused (it serves locally and says
 * so); files that do not load exit 2 before anything listens.
 */
Test(cluster, tls_to_nats_with_a_ca_and_a_client_certificate)
{
	char ncert[64], nkey[64], ccert[64], ckey[64];
	cr_assert_eq(tlsc_make_cert("nats", ncert, nkey), 0);
	cr_assert_eq(tlsc_make_cert("node", ccert, ckey), 0);
	const char *tls_args[] = { "--tls", "--tlscert", ncert, "--tlskey", nkey, "--tlsverify",
	                           "--tlscacert", ccert, NULL };
	memcpy(N[0].args, tls_args, sizeof tls_args);
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	/* The certificate is for CN=localhost: the host name is checked. */
	char url[64];
	snprintf(url, sizeof url, "tls://localhost:%u", N[0].port);
	const char *const mtls[] = { "--cluster-ca", ncert, "--cluster-cert", ccert,
	                             "--cluster-key", ckey, NULL };
	const char *const ca_only[] = { "--cluster-ca", ncert, NULL };
	node_start_args(0, url, NULL, mtls);
	node_start_args(1, url, NULL, mtls);
	node_start_args(2, url, NULL, ca_only);
	wait_metric(0, "net001_cluster_up", 1, 10000);
	wait_metric(1, "net001_cluster_up", 1, 10000);
	cr_assert(broadcast_crosses(0, 1) && broadcast_crosses(1, 0));
	sleep_ms(1500);
	cr_assert_eq(metric(2, "net001_cluster_up"), 0, "no client certificate: refused");
	cr_assert(srv_log_contains(&S[2], "the NATS client gave up its connection"));
	int fd = tc_connect(S[2].port);
	cr_assert(tc_ping(fd, 3, 5000), "the refused node serves its clients");
	close(fd);
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);

	/* Files that do not load: exit 2, one line naming the flag. */
	const char *const bad[][8] = {
		{ "--cluster", url, "--cluster-ca", nkey, NULL },
		{ "--cluster", url, "--cluster-cert", ckey, "--cluster-key", ckey, NULL },
		{ "--cluster", url, "--cluster-cert", ccert, "--cluster-key", nkey, NULL },
		{ "--cluster", url, "--cluster-cert", ccert, NULL },
		{ "--cluster-ca", ncert, NULL },
	};
	static const char *const says[] = { "--cluster-ca", "--cluster-cert", "--cluster-cert",
	                                    "--cluster-key", "without --cluster" };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		char out[4096];
		int st = srv_run_exit(bad[k], NULL, out, sizeof out, 10000);
		cr_assert_eq(st, 2, "case %zu: exit %d (%s)", k, st, out);
		cr_assert(strstr(out, says[k]), "case %zu names %s: %s", k, says[k], out);
	}
	unlink(ncert);
	unlink(nkey);
	unlink(ccert);
	unlink(ckey);
}

/*
 * --cluster with two brokers joined by a route: when one of them is
 * killed for good, the nodes that were on it move to the other (the
 * client takes the next URL of the list) and broadcasts cross between all
 * nodes again.
 */
Test(cluster, a_broker_killed_for_good_the_nodes_move_to_the_other)
{
	uint16_t c0 = free_port(), c1 = free_port();
	cr_assert_eq(nats_run(&N[0], 0, c0, c1), 0);
	cr_assert_eq(nats_run(&N[1], 0, c1, c0), 0);
	char both[128], second[64];
	snprintf(both, sizeof both, "nats://127.0.0.1:%u,nats://127.0.0.1:%u", N[0].port,
	         N[1].port);
	snprintf(second, sizeof second, "nats://127.0.0.1:%u", N[1].port);
	node_start_url(0, both, NULL);
	node_start_url(1, both, NULL);
	node_start_url(2, second, NULL);
	for (int n = 0; n < NODES; n++)
		wait_metric(n, "net001_cluster_up", 1, 10000);
	cr_assert(broadcast_crosses(0, 2) && broadcast_crosses(2, 1));
	nats_kill9(&N[0]);
	for (int n = 0; n < NODES; n++)
		wait_metric(n, "net001_cluster_up", 1, 15000);
	for (int from = 0; from < NODES; from++)
		for (int to = 0; to < NODES; to++)
			if (from != to)
				cr_assert(broadcast_crosses(from, to), "node %d to node %d", from, to);
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);
}

/*
 * A broker whose max_payload (1,024 bytes) is below the largest broadcast:
 * each node says so when it connects; a broadcast over it reaches the
 * local clients, not the other node, and is counted as too_large (the
 * other node counts the hole in the sequence); smaller ones on either
 * side of it still cross. Before, it was counted as "disconnected" and
 * nothing was said.
 */
Test(cluster, a_broadcast_over_the_brokers_max_payload)
{
	static char conf[64];
	snprintf(conf, sizeof conf, "/tmp/net001-nats-%d.conf", getpid());
	FILE *f = fopen(conf, "w");
	cr_assert_not_null(f);
	fputs("max_payload: 1024\n", f);
	fclose(f);
	const char *with_conf[] = { "-c", conf, NULL };
	memcpy(N[0].args, with_conf, sizeof with_conf);
	int started = nats_run(&N[0], 0, 0, 0);
	unlink(conf);
	cr_assert_eq(started, 0);
	node_start(0, N[0].port);
	node_start(1, N[0].port);
	wait_metric(0, "net001_cluster_up", 1, 10000);
	wait_metric(1, "net001_cluster_up", 1, 10000);
	for (int n = 0; n < 2; n++)
		cr_assert(srv_log_contains(&S[n], "takes messages of at most 1024 bytes"),
		          "node %d warns at its connection", n);
	cr_assert(broadcast_crosses(0, 1));

	int tx = tc_connect(S[0].port), local = tc_connect(S[0].port),
	    remote = tc_connect(S[1].port);
	cr_assert(tc_ping(local, 1, 5000) && tc_ping(remote, 2, 5000));
	static uint8_t big[2000];
	memset(big, 'B', sizeof big);
	cr_assert_eq(tc_send_frame(tx, FRAME_BROADCAST, "before", 6), 0);
	cr_assert_eq(tc_send_frame(tx, FRAME_BROADCAST, big, sizeof big), 0);
	cr_assert_eq(tc_send_frame(tx, FRAME_BROADCAST, "after", 5), 0);
	static struct tc_frame fr;
	static const uint16_t local_lens[] = { 6, sizeof big, 5 }, remote_lens[] = { 6, 5 };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tc_read_frame(local, &fr, 5000), 0);
		cr_assert_eq(fr.len, local_lens[i], "local broadcast %d", i);
	}
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(tc_read_frame(remote, &fr, 5000), 0);
		cr_assert_eq(fr.len, remote_lens[i], "remote broadcast %d", i);
	}
	cr_assert(tc_quiet(remote, 300), "the big one never crosses");
	cr_assert_eq(metric(0, "net001_cluster_dropped_total{reason=\"too_large\"}"), 1);
	cr_assert_eq(metric(0, "net001_cluster_dropped_total{reason=\"disconnected\"}"), 0);
	cr_assert(srv_log_contains(&S[0], "a broadcast of 2000 bytes is over the NATS server's"));
	/* The next heartbeat tells node 1 of the hole. */
	wait_metric(1, "net001_cluster_sequence_gaps_total", 1, 3000);
	close(tx);
	close(local);
	close(remote);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);
}

/*
 * Two servers started with one --node-id (a copied configuration): each
 * incarnation is numbered apart, so everything still arrives exactly once
 * and in order and no gap is counted; every node counts the clash and
 * says so, at most once per 10 s, and the third does not log a restart
 * at every message of the two in turn (it logged thousands of lines a
 * second before).
 */
Test(cluster, two_servers_with_one_node_id)
{
	int count = 1000, nrx = 60;
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	node_start_as(0, N[0].port, "twin");
	node_start_as(1, N[0].port, "twin");
	node_start(2, N[0].port);
	struct rx *rx = connect_all(nrx);
	warm_up(rx, nrx);
	storm(rx, nrx, count, 0, NULL, 60000);
	check_exact(rx, nrx, count);
	check_counts(count);
	/* Heartbeats go on: the third node sees both incarnations alive. */
	for (int n = 0; n < NODES; n++)
		wait_metric(n, "net001_cluster_node_id_clashes_total", 1, 5000);
	sleep_ms(1500);
	for (int n = 0; n < NODES; n++) {
		cr_assert_eq(metric(n, "net001_cluster_node_id_clashes_total"), 1,
		             "node %d counted the clash once", n);
		size_t warned = srv_log_count(&S[n], "two servers publish as node twin");
		size_t restarts = srv_log_count(&S[n], "restarted");
		cr_assert_eq(warned, 1, "node %d warned once (%zu)", n, warned);
		cr_assert_leq(restarts, 1, "node %d: %zu restart lines", n, restarts);
	}
	cr_assert(srv_log_contains(&S[0], "(this server's id)"));
	free_all(rx, nrx);
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);
}

static void kill_and_restart_nats(void)
{
	uint16_t port = N[0].port;
	nats_kill9(&N[0]);
	/* Broadcasts go on meanwhile: local delivery must not stop. */
	sleep_ms(700);
	cr_assert_eq(nats_run(&N[0], port, 0, 0), 0, "nats-server restarts on its port");
}

Test(cluster, nats_killed_in_a_storm_and_restarted)
{
	int count = env_int("NET001_CLUSTER_COUNT", 1000);
	int nrx = env_int("NET001_CLUSTER_RECEIVERS", 300);
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	for (int i = 0; i < NODES; i++)
		node_start(i, N[0].port);
	struct rx *rx = connect_all(nrx);
	warm_up(rx, nrx);
	for (int i = 0; i < nrx; i++)
		rx[i].lenient = true;

	/* About 3 s of broadcasts; NATS is away for 0.7 s in the middle. A
	 * node whose reconnection came after the last broadcast never sees
	 * it: the checks below wait for the rest. */
	storm(rx, nrx, count, 3000, kill_and_restart_nats, 8000);
	/* Every node reconnected. */
	for (int n = 0; n < NODES; n++) {
		wait_metric(n, "net001_cluster_up", 1, 15000);
		cr_assert_geq(metric(n, "net001_cluster_reconnects_total"), 1, "node %d reconnected", n);
	}
	/* What is still on its way, then a heartbeat from every node (its
	 * last sequence number: gaps at the end of the storm count too). */
	pump(rx, nrx, all_counted, &count, 3000);
	sleep_ms(2500);
	pump(rx, nrx, never, NULL, 300);

	for (int i = 0; i < nrx; i++) {
		cr_assert_eq(rx[i].bad, 0, "receiver %d: %d bad, repeated or out-of-order frames",
		             i, rx[i].bad);
		cr_assert_not(rx[i].closed, "receiver %d stays open (error %u)", i, rx[i].error);
		/* Local delivery never stopped: everything from the sender on
		 * the same node. */
		int k = rx[i].node;
		if (k != rx[i].self)
			cr_assert_eq(rx[i].got[k], count, "receiver %d got %d of %d from its own node's "
			             "sender", i, rx[i].got[k], count);
	}
	/* The gaps a node counted are what each of its receivers missed from
	 * the other nodes' senders: the same for all of them. */
	for (int n = 0; n < NODES; n++) {
		cr_assert_eq(metric(n, "net001_cluster_dropped_total{reason=\"inbound_full\"}"), 0);
		cr_assert_eq(metric(n, "net001_cluster_dropped_total{reason=\"slow_consumer\"}"), 0);
		cr_assert_eq(metric(n, "net001_cluster_dropped_total{reason=\"duplicate\"}"), 0);
		cr_assert_eq(metric(n, "net001_cluster_dropped_total{reason=\"invalid\"}"), 0);
		uint64_t gaps = metric(n, "net001_cluster_sequence_gaps_total");
		for (int i = 0; i < nrx; i++) {
			if (rx[i].node != n)
				continue;
			uint64_t missed = 0;
			for (int k = 0; k < NODES; k++)
				if (k != n && k != rx[i].self)
					missed += (uint64_t)(count - rx[i].got[k]);
			if (rx[i].self >= 0)
				continue; /* a sender misses nothing of its own */
			cr_assert_eq(missed, gaps, "node %d counted %llu gaps; receiver %d missed %llu",
			             n, (unsigned long long)gaps, i, (unsigned long long)missed);
		}
		cr_log_info("node %d: %llu broadcasts missed while NATS was away", n,
		            (unsigned long long)gaps);
	}
	for (int n = 0; n < NODES; n++)
		cr_assert(srv_log_contains(&S[n], "lost the connection to NATS") &&
		          srv_log_contains(&S[n], "reconnected to NATS"), "node %d logs the outage", n);
	free_all(rx, nrx);
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);
}

Test(cluster, a_node_killed_the_others_carry_on)
{
	int count = 500, nrx = 60;
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	for (int i = 0; i < NODES; i++)
		node_start(i, N[0].port);
	struct rx *rx = connect_all(nrx);
	warm_up(rx, nrx);
	uint64_t pub0 = metric(0, "net001_cluster_published_total");

	/* Node 0's sender: count broadcasts, published; then node 0 dies. */
	struct sender s0 = { .fd = rx[0].fd, .k = 0, .count = count };
	send_all(&s0);
	uint64_t end = mono_ms() + 20000;
	while (metric(0, "net001_cluster_published_total") < pub0 + (uint64_t)count &&
	       mono_ms() < end)
		pump(rx, nrx, never, NULL, 20);
	cr_assert_eq(metric(0, "net001_cluster_published_total"), pub0 + (uint64_t)count);
	sleep_ms(100); /* out of the NATS client's buffer */
	kill(S[0].pid, SIGKILL);
	waitpid(S[0].pid, NULL, 0);
	S[0].pid = 0;

	/* Nodes 1 and 2 carry on: their senders' broadcasts reach each other. */
	struct sender s1 = { .fd = rx[1].fd, .k = 1, .count = count };
	struct sender s2 = { .fd = rx[2].fd, .k = 2, .count = count };
	send_all(&s1);
	send_all(&s2);
	struct rx *alive = calloc((size_t)nrx, sizeof *alive);
	int na = 0;
	for (int i = 0; i < nrx; i++)
		if (rx[i].node != 0)
			alive[na++] = rx[i];
	/* Everything published on node 0 before it died arrived. */
	pump(alive, na, all_counted, &count, 30000);
	for (int i = 0; i < na; i++) {
		cr_assert_eq(alive[i].bad, 0);
		cr_assert_not(alive[i].closed, "receiver on node %d stays open", alive[i].node);
		for (int k = 0; k < NODES; k++)
			if (k != alive[i].self)
				cr_assert_eq(alive[i].got[k], count, "node %d receiver got %d of %d from "
				             "sender %d", alive[i].node, alive[i].got[k], count, k);
	}
	for (int n = 1; n < NODES; n++)
		cr_assert_eq(metric(n, "net001_cluster_up"), 1, "node %d still connected", n);
	/* alive[] shares the buffers and descriptors of rx[]. */
	free(alive);
	free_all(rx, nrx);
	for (int i = 1; i < NODES; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);
}

/* ---- garbage on the subject ------------------------------------------------------------- */

static void raw_pub(int fd, const void *p, size_t n)
{
	cr_assert_eq(nats_raw_pub(fd, "net001.broadcast", p, n), 0);
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* A header as a node would write it. */
static size_t good_header(uint8_t *p, uint8_t kind, uint64_t seq)
{
	memset(p, 0, 56);
	memcpy(p, "N1CB", 4);
	p[4] = 1;
	p[5] = kind;
	p[6] = 7;
	be64(p + 8, 42);
	be64(p + 16, seq);
	memcpy(p + 24, "foreign", 7);
	return 56;
}

Test(cluster, garbage_on_the_subject_is_counted_and_dropped)
{
	int nrx = 30;
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	for (int i = 0; i < NODES; i++)
		node_start(i, N[0].port);
	struct rx *rx = connect_all(nrx);
	warm_up(rx, nrx);
	pump(rx, nrx, never, NULL, 300);
	struct rx before[MAX_RX];
	memcpy(before, rx, sizeof *rx * (size_t)nrx);

	int fd = nats_raw(N[0].port);
	cr_assert_geq(fd, 0);
	uint8_t *m = malloc(200000);
	uint32_t seed = 12345;
	int sent = 0;
	/* Random bytes of random sizes. */
	for (int i = 0; i < 2000; i++, sent++) {
		size_t n = (seed = seed * 1103515245u + 12345u) % (i % 50 == 0 ? 150000 : 300);
		for (size_t j = 0; j < n; j++)
			m[j] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 16);
		raw_pub(fd, m, n);
	}
	/* Headers that almost pass, and frames that almost do. */
	uint8_t fr[FRAME_MAX_SIZE];
	size_t fl = frame_encode(fr, FRAME_BROADCAST, "hello", 5);
	for (int v = 0; v < 16; v++, sent++) {
		size_t h = good_header(m, 1, (uint64_t)v + 1);
		memcpy(m + h, fr, fl);
		size_t n = h + fl;
		switch (v) {
		case 0: m[0] ^= 1; break;                    /* magic */
		case 1: m[4] = 2; break;                     /* version */
		case 2: m[5] = 9; break;                     /* kind */
		case 3: m[6] = 0; break;                     /* id length */
		case 4: m[6] = 40; break;
		case 5: m[24] = ' '; break;                  /* id character */
		case 6: m[50] = 'x'; break;                  /* id padding */
		case 7: be64(m + 16, 0); break;              /* sequence 0 */
		case 8: m[h + 2] ^= 1; break;                /* frame magic */
		case 9: m[h + 4] = 7; break;                 /* frame version */
		case 10: m[n - 1] ^= 0xFF; break;            /* CRC */
		case 11: n--; break;                         /* truncated */
		case 12: m[n++] = 0; break;                  /* a byte after it */
		case 13: n = h; break;                       /* a frame kind without frame */
		case 14: m[5] = 2; break;                    /* a heartbeat with a body */
		case 15:                                     /* a PING, not a BROADCAST */
			n = h + frame_encode(m + h, FRAME_PING, "12345678", 8);
			break;
		}
		raw_pub(fd, m, n);
	}
	/* PING/PONG: the broker has seen everything before answering. */
	cr_assert_eq(tc_send(fd, "PING\r\n", 6), 0);
	char pong[256];
	uint64_t end = mono_ms() + 10000;
	size_t got = 0;
	while (mono_ms() < end && !memmem(pong, got, "PONG", 4)) {
		ssize_t r = recv(fd, pong + got, sizeof pong - 1 - got, MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
		else
			sleep_ms(10);
		if (got > 200)
			got = 0;
	}
	for (int n = 0; n < NODES; n++)
		wait_metric(n, "net001_cluster_dropped_total{reason=\"invalid\"}", (uint64_t)sent, 15000);
	/* Nothing delivered, nothing broken. */
	pump(rx, nrx, never, NULL, 500);
	for (int i = 0; i < nrx; i++) {
		cr_assert_eq(rx[i].bad, 0);
		cr_assert_not(rx[i].closed);
		cr_assert_eq(memcmp(rx[i].got, before[i].got, sizeof rx[i].got), 0);
	}
	for (int n = 0; n < NODES; n++)
		cr_assert(srv_log_contains(&S[n], "not a broadcast from another node"));
	/* And the cluster still carries broadcasts. */
	for (int i = 0; i < nrx; i++)
		memset(rx[i].probe, 0, sizeof rx[i].probe);
	warm_up(rx, nrx);
	close(fd);
	free(m);
	free_all(rx, nrx);
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0, "node %d exits 0", i);
}

/* ---- auth and rate limits where a broadcast enters ------------------------------------- */

Test(cluster, auth_and_rate_limits_apply_where_a_broadcast_enters)
{
	struct auth_file af = { "" };
	const char *path = auth_file_write(&af, "cluster", AUTH_USERS("alice", AUTH_ALICE_HEX));
	cr_assert_not_null(path);
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	char url[64];
	snprintf(url, sizeof url, "nats://127.0.0.1:%u", N[0].port);
	/* The entry node: auth, 50 broadcasts/s per connection. The other:
	 * no auth, 5 messages/s per connection and 10 for the whole server
	 * (its receivers' PINGs fit in that). */
	const char *const a0[] = { "--threads", "2", "--auth-file", path, "--rate-limit", "50",
	                           "--global-rate-limit", "0", "--cluster", url, NULL };
	const char *const a1[] = { "--threads", "2", "--rate-limit", "5", "--global-rate-limit",
	                           "10", "--cluster", url, NULL };
	cr_assert_eq(srv_start(&S[0], a0), 0);
	cr_assert_eq(srv_start(&S[1], a1), 0);
	int rx[4];
	for (int i = 0; i < 4; i++) {
		rx[i] = tc_connect(S[1].port);
		cr_assert(tc_ping(rx[i], (uint64_t)i, 5000));
	}
	int anon = tc_connect(S[0].port), alice = tc_connect(S[0].port);
	uint8_t p[80];
	int n = msg_auth_build(p, "alice", 5, AUTH_ALICE_TOKEN, strlen(AUTH_ALICE_TOKEN));
	cr_assert_eq(tc_send_frame(alice, FRAME_AUTH, p, (size_t)n), 0);
	struct tc_frame f;
	cr_assert_eq(tc_read_frame(alice, &f, 5000), 0);
	cr_assert_eq(f.type, FRAME_AUTH_REPLY);
	cr_assert_eq(f.payload[0], 1);
	/* Wait for the two nodes to hear each other: alice's probes. */
	uint64_t end = mono_ms() + 20000;
	bool heard = false;
	while (!heard && mono_ms() < end) {
		cr_assert_eq(tc_send_frame(alice, FRAME_BROADCAST, "probe", 5), 0);
		heard = tc_read_frame(rx[0], &f, 300) == 0;
	}
	cr_assert(heard, "node 1 hears node 0");
	sleep_ms(1100); /* alice's bucket full again; late probes arrive */
	for (int i = 0; i < 4; i++)
		while (tc_read_frame(rx[i], &f, 300) == 0)
			;

	/* Refused where it enters: not authenticated. */
	cr_assert_eq(tc_send_frame(anon, FRAME_BROADCAST, "anon", 4), 0);
	cr_assert(tc_expect_error(anon, ERR_AUTH_REQUIRED, 5000));
	/* Limited where it enters: 100 at once against 50/s. */
	uint8_t b[4];
	for (int i = 0; i < 100; i++) {
		b[0] = (uint8_t)i;
		cr_assert_eq(tc_send_frame(alice, FRAME_BROADCAST, b, 1), 0);
	}
	int limited = 0;
	while (tc_read_frame(alice, &f, 1000) == 0) {
		cr_assert_eq(f.type, FRAME_ERROR);
		cr_assert_eq(frame_get_u16(f.payload), ERR_RATE_LIMITED);
		limited++;
	}
	cr_assert(limited >= 40 && limited <= 60, "about half refused: %d", limited);
	/* ... and not again on node 1, whose limits are 5/s: every one that
	 * entered reaches every receiver there, in order. */
	for (int i = 0; i < 4; i++) {
		int got = 0, last = -1;
		while (tc_read_frame(rx[i], &f, 1000) == 0) {
			cr_assert_eq(f.type, FRAME_BROADCAST);
			cr_assert_eq(f.len, 1, "no anonymous broadcast arrives");
			cr_assert_gt((int)f.payload[0], last);
			last = f.payload[0];
			got++;
		}
		cr_assert_eq(got, 100 - limited, "receiver %d got %d of %d", i, got, 100 - limited);
	}
	cr_assert_eq(metric(1, "net001_errors_total{code=\"rate_limited\"}"), 0);
	for (int i = 0; i < 4; i++)
		close(rx[i]);
	close(anon);
	close(alice);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(srv_stop(&S[i], 15000), 0);
	auth_file_remove(&af);
}

/* ---- NATS not there at start; flags --------------------------------------------------- */

/* A loopback port held by a bound socket that does not listen (connects
 * are refused) and, without SO_REUSEADDR, cannot be bound by anyone else
 * (the other tests of this suite run beside this one); the descriptor, or
 * -1. */
static int hold_port(uint16_t *port)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port_random()),
		                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			*port = ntohs(sa.sin_port);
			return fd;
		}
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

Test(cluster, starts_without_nats_and_serves_locally)
{
	uint16_t dead = 0;
	int held = hold_port(&dead);
	cr_assert_geq(held, 0, "a port to keep NATS off");
	char url[64];
	snprintf(url, sizeof url, "nats://127.0.0.1:%u", dead);
	const char *const args[] = { "--threads", "2", "--rate-limit", "0", "--cluster", url,
	                             "--cluster-backlog", "256k", NULL };
	cr_assert_eq(srv_start(&S[0], args), 0);
	cr_assert(srv_log_contains(&S[0], "not reachable yet"));
	cr_assert_eq(metric(0, "net001_cluster_up"), 0);
	int a = tc_connect(S[0].port), b = tc_connect(S[0].port);
	cr_assert(tc_ping(a, 1, 5000) && tc_ping(b, 2, 5000));
	cr_assert_eq(tc_send_frame(a, FRAME_BROADCAST, "local", 5), 0);
	struct tc_frame f;
	cr_assert_eq(tc_read_frame(b, &f, 5000), 0);
	cr_assert_eq(f.type, FRAME_BROADCAST);
	cr_assert_eq(f.len, 5);

	/* 600 KB for other servers while NATS is away, against a backlog
	 * of 256 KiB: local delivery is whole, the rest is held up to the
	 * bound and what is beyond it is dropped and counted. */
	static uint8_t kb[1000];
	for (int i = 0; i < 600; i++) {
		memset(kb, i, sizeof kb);
		cr_assert_eq(tc_send_frame(a, FRAME_BROADCAST, kb, sizeof kb), 0);
	}
	for (int i = 0; i < 600; i++) {
		cr_assert_eq(tc_read_frame(b, &f, 5000), 0, "local broadcast %d", i);
		cr_assert_eq(f.len, 1000);
		cr_assert_eq(f.payload[0], (uint8_t)i);
	}
	uint64_t end = mono_ms() + 10000, pub = 0, dropped = 0;
	while (mono_ms() < end) {
		pub = metric(0, "net001_cluster_published_total");
		dropped = metric(0, "net001_cluster_dropped_total{reason=\"disconnected\"}") +
		          metric(0, "net001_cluster_dropped_total{reason=\"backlog_full\"}");
		if (pub + dropped == 601)
			break;
		sleep_ms(50);
	}
	cr_assert_eq(pub + dropped, 601, "each broadcast published (held) or dropped: %llu + %llu",
	             (unsigned long long)pub, (unsigned long long)dropped);
	cr_assert(dropped > 0 && pub * 1000 <= 256 * 1024, "held at most the backlog: %llu held",
	          (unsigned long long)pub);
	/* NATS comes up: the node connects by itself. */
	close(held);
	cr_assert_eq(nats_run(&N[0], dead, 0, 0), 0);
	wait_metric(0, "net001_cluster_up", 1, 15000);

	/* Every cluster family, in a valid exposition. */
	char *text = http_scrape(S[0].metrics_port);
	cr_assert_not_null(text);
	static const char *const families[] = {
		"net001_cluster_up", "net001_cluster_published_total",
		"net001_cluster_received_total", "net001_cluster_deliveries_total",
		"net001_cluster_dropped_total{reason=\"backlog_full\"}",
		"net001_cluster_dropped_total{reason=\"disconnected\"}",
		"net001_cluster_dropped_total{reason=\"too_large\"}",
		"net001_cluster_dropped_total{reason=\"inbound_full\"}",
		"net001_cluster_dropped_total{reason=\"invalid\"}",
		"net001_cluster_sequence_gaps_total", "net001_cluster_reconnects_total",
		"net001_cluster_deferred_bytes", "net001_cluster_node_id_clashes_total",
	};
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
		uint64_t v;
		cr_assert(sample_u64(text, families[i], &v), "%s is there", families[i]);
	}
	cr_assert(strstr(text, "net001_cluster_info{node_id=\""), "the node id is a label");
	char tool[256], report[4096];
	cr_assert(promtool_path(tool, sizeof tool), "promtool (scripts/deps --test)");
	cr_assert_eq(promtool_check(tool, text, strlen(text), report, sizeof report), 0, "%s",
	             report);
	free(text);
	close(a);
	close(b);
	cr_assert_eq(srv_stop(&S[0], 15000), 0);
}

/* ---- one worker behind does not hold back the others -------------------------------- */

/* A connection to node s on the given core. */
static int connect_on_core(const struct srv *s, int core, bool small)
{
	int fd = tc_connect_on_core(s, core, small ? 4096 : 0);
	cr_assert(fd >= 0, "a connection on core %d", core);
	return fd;
}

/* The reading client on node B's core 1: every frame in order, and when
 * the last one came. */
struct reader {
	int fd;
	_Atomic int want;       /* frames to read; INT32_MAX until known */
	int got;
	bool bad;               /* out of order, wrong size, or a read failed */
	char why[96];
	uint64_t last_ms;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	struct tc_frame f;
	while (r->got < atomic_load(&r->want)) {
		int rc = tc_read_frame(r->fd, &f, 10000);
		if (rc != 0 || f.type != FRAME_BROADCAST || f.len != 16384 ||
		    f.payload[0] != (uint8_t)r->got || f.payload[16383] != (uint8_t)r->got) {
			snprintf(r->why, sizeof r->why, "read %d, type %u, %u bytes, first %u", rc,
			         rc ? 0u : f.type, rc ? 0u : f.len, rc || !f.len ? 0u : f.payload[0]);
			r->bad = true;
			break;
		}
		r->got++;
		r->last_ms = mono_ms();
	}
	return NULL;
}

/*
 * Node B has two workers and a 256 KiB broadcast log each; a client on its
 * core 0 reads nothing, so that worker's log, its socket and then its ring
 * from the bridge fill with remote broadcasts, and what follows waits in
 * the bridge for it (net001_cluster_deferred_bytes). A client on core 1
 * reads all the while: it gets every broadcast at once, not when core 0's
 * client is dropped 5 s later (the bridge used to wait for core 0's room
 * before handing the next broadcast to anyone).
 */
Test(cluster, a_full_worker_does_not_hold_back_the_others)
{
	cr_assert_eq(nats_run(&N[0], 0, 0, 0), 0);
	char url[64];
	snprintf(url, sizeof url, "nats://127.0.0.1:%u", N[0].port);
	const char *const a0[] = { "--threads", "1", "--rate-limit", "0", "--global-rate-limit",
	                           "0", "--cluster", url, "--cluster-backlog", "64m", NULL };
	const char *const a1[] = { "--threads", "2", "--rate-limit", "0", "--global-rate-limit",
	                           "0", "--cluster", url, "--broadcast-log", "256k", "--debug",
	                           NULL };
	cr_assert_eq(srv_start(&S[0], a0), 0);
	cr_assert_eq(srv_start(&S[1], a1), 0);
	wait_metric(0, "net001_cluster_up", 1, 15000);
	wait_metric(1, "net001_cluster_up", 1, 15000);

	int stalled = connect_on_core(&S[1], 0, true);
	static struct reader r;
	r.fd = connect_on_core(&S[1], 1, false);
	int pub = tc_connect(S[0].port);
	cr_assert(tc_ping(pub, 7, 5000));
	/* The subscription is in place once one broadcast crosses. */
	cr_assert_eq(tc_send_frame(pub, FRAME_BROADCAST, "probe", 5), 0);
	struct tc_frame f;
	cr_assert_eq(tc_read_frame(r.fd, &f, 10000), 0, "the probe crosses");
	cr_assert_eq(f.len, 5);
	cr_assert_eq(tc_read_frame(stalled, &f, 10000), 0, "to both workers");

	atomic_store(&r.want, INT32_MAX);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, read_all, &r), 0);
	/* 16 KiB broadcasts until frames wait in node B's bridge for core 0,
	 * then 64 more (1 MiB, well inside what may wait there: 4 MiB). */
	static uint8_t b[16384];
	int sent = 0, more = -1;
	uint64_t deferred = 0;
	while (sent < 3000 && more != 0) {
		memset(b, (uint8_t)sent, sizeof b);
		cr_assert_eq(tc_send_frame(pub, FRAME_BROADCAST, b, sizeof b), 0);
		sent++;
		if (more > 0) {
			more--;
		} else if (sent % 32 == 0) {
			/* Node B's bridge has them all (nothing in flight
			 * beyond what the gauge shows). */
			wait_metric(1, "net001_cluster_received_total", (uint64_t)sent + 1, 10000);
			deferred = metric(1, "net001_cluster_deferred_bytes");
			cr_assert_neq(deferred, UINT64_MAX, "the gauge is there");
			if (deferred > 0)
				more = 64;
		}
	}
	uint64_t sent_ms = mono_ms();
	cr_assert_gt(deferred, 0, "frames waited for core 0 after %d broadcasts", sent);
	atomic_store(&r.want, sent);
	pthread_join(t, NULL);
	cr_assert_not(r.bad, "core 1's client: frame %d of %d: %s", r.got, sent, r.why);
	cr_assert_eq(r.got, sent);
	uint64_t took = r.last_ms > sent_ms ? r.last_ms - sent_ms : 0;
	cr_assert_lt(took, 3000, "all %d on core 1 within %llu ms of the last send while core 0 "
	             "was full (its client is dropped after 5 s)", sent, (unsigned long long)took);
	close(stalled);
	close(r.fd);
	close(pub);
	cr_assert_eq(srv_stop(&S[1], 15000), 0);
	cr_assert_eq(srv_stop(&S[0], 15000), 0);
	nats_cleanup(&N[0]);
}

Test(cluster, flags)
{
	static const struct {
		const char *args[6];
		const char *msg;
	} bad[] = {
		{ { "--cluster", "http://x:1" }, "--cluster" },
		{ { "--cluster", "nats://127.0.0.1:99999" }, "--cluster" },
		{ { "--cluster", "nats://a:1,,nats://b:2" }, "--cluster" },
		{ { "--cluster", "" }, "--cluster" },
		{ { "--cluster", "nats://a:1", "--cluster-subject", "a.*" }, "--cluster-subject" },
		{ { "--cluster", "nats://a:1", "--cluster-subject", "a..b" }, "--cluster-subject" },
		{ { "--cluster", "nats://a:1", "--cluster-subject",
		    "a12345678901234567890123456789012345678901234567890123456789012345" },
		  "--cluster-subject" },
		{ { "--cluster", "nats://a:1", "--node-id", "a b" }, "--node-id" },
		{ { "--cluster", "nats://a:1", "--node-id", "0123456789012345678901234567890123" },
		  "--node-id" },
		{ { "--cluster", "nats://a:1", "--cluster-backlog", "1k" }, "--cluster-backlog" },
		{ { "--node-id", "a" }, "without --cluster" },
		{ { "--cluster-subject", "a" }, "without --cluster" },
	};
	char err[512];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st = srv_run_exit(bad[i].args, NULL, err, sizeof err, 5000);
		cr_assert_eq(st, 2, "case %zu exits 2 (%s)", i, err);
		cr_assert(strstr(err, bad[i].msg), "case %zu names %s: %s", i, bad[i].msg, err);
	}
	const char *const env[] = { "NET001_CLUSTER=ftp://nope", NULL };
	cr_assert_eq(srv_run_exit(NULL, env, err, sizeof err, 5000), 2);
	cr_assert(strstr(err, "NET001_CLUSTER"), "%s", err);
}
