/*
 * cluster.h - BROADCAST across several servers through NATS (--cluster).
 *
 *   worker (io_uring)                bridge (net/cluster.c)               NATS
 *   -----------------                ----------------------               ----
 *   bcast_send on the sender's
 *   worker: the frame into its
 *   ring to the bridge (one copy;  -> bridge thread: header in place,  -> PUB subject
 *   full: drop, count); an eventfd    publish once per broadcast          (no echo)
 *   write through its io_uring when   (the NATS client's buffer; away:
 *   the ring was empty                reconnect buffer, then drop+count)
 *
 *   bcast_poll: frames from its    <- delivery thread: check header and <- MSG subject
 *   ring from the bridge into the     frame, sequence per origin (gaps,
 *   log while it has room (the        duplicates), copy into every
 *   rest waits in the ring)           worker's ring (full: wait up to 6 s,
 *                                     then drop, count); MSG_RING to a
 *                                     worker that may sleep
 *
 * Workers take no lock and make no system call for the cluster: a ring
 * write and, when the bridge may be asleep, one more SQE in their next
 * submission. The bridge's threads never wait for a worker.
 *
 * Promise: at-most-once across servers, in order per sending connection on
 * every server; local delivery never waits for NATS. A broadcast lost on
 * the way (a queue full, NATS away or slow) is dropped and counted where
 * it is lost, and the receiving servers count it as a gap in the sender's
 * sequence numbers; nothing is retried.
 *
 * Threads: cluster_new/start/stop/free from main(); cluster_out() from a
 * worker on its own ring; the rest is the bridge's (cluster.c).
 */
#ifndef NET001_NET_CLUSTER_H
#define NET001_NET_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bytering.h"
#include "core/config.h"
#include "metrics/metrics.h"
#include "net/cluster_wire.h"

struct server;
struct worker;

/* Byte rings per worker, each way. */
#define CLUSTER_IN_RING     (UINT64_C(4) << 20)

struct cluster;

/*
 * Before server_start(): the rings between ncores workers and the bridge,
 * and the node id (cfg's, or a random one). 0, or -errno with one line in
 * err.
 */
int cluster_new(const struct config *cfg, uint32_t ncores, struct cluster **out,
                char *err, size_t errlen);
/*
 * After server_start(): connect to NATS (in the background if it is not
 * reachable yet: the server starts anyway, and says so once), subscribe,
 * start the bridge. 0, or -errno with one line in err.
 */
int cluster_start(struct cluster *cl, struct server *srv, char *err, size_t errlen);
/*
 * Before anything starts: whether the TLS files for NATS (--cluster-ca,
 * --cluster-cert and --cluster-key) load. 0, or -EINVAL with one line in
 * err (the server then exits 2, as for a bad --cert).
 */
int cluster_check_tls(const struct config *cfg, char *err, size_t errlen);
/* Before server_stop(): stop the bridge and close the NATS connection. */
void cluster_stop(struct cluster *cl);
/* After server_free(). NULL is a no-op. */
void cluster_free(struct cluster *cl);

const struct metrics_cluster *cluster_metrics(const struct cluster *cl);
const char *cluster_node_id(const struct cluster *cl);

/* Worker w's rings and the bridge's eventfd (for worker_new). */
struct bytering *cluster_ring_out(struct cluster *cl, uint32_t w);
struct bytering *cluster_ring_in(struct cluster *cl, uint32_t w);
int cluster_efd(const struct cluster *cl);

/*
 * On the worker that accepted a BROADCAST: the frame to the bridge, to be
 * published once (a full ring drops it and counts). Never waits.
 */
void cluster_out(struct worker *co, const uint8_t *frame, uint32_t size);

#endif
