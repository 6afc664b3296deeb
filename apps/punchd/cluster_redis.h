/* SPDX-License-Identifier: MIT */
/*
 * punchd --cluster: the members of a cluster share their names through
 * Redis (docs/cluster.md). hiredis' asynchronous API runs on punchd's own
 * loop through an adapter here, so Redis never blocks the datagram loop.
 *
 *   REGISTERED (every registration, keepalives too): SET punch:name:NAME
 *       to the signed record (src/server/cluster.h) with a TTL of the
 *       peer's expiry.
 *   LOOKUP (a CONNECT for a name not registered here): GET the record;
 *       INTRODUCE the asker to it and PUBLISH a signed INTRO on the
 *       channel of the member it is registered at, which INTRODUCEs its
 *       peer to the asker; or REFUSED(NO_PEER) with an event saying why.
 *       Relayed addresses at TURN servers follow in TURN messages, both
 *       ways.
 *   Each second: the far members of the halves of relays held here, their
 *       heartbeats; a half whose member stopped follows its far peer to
 *       the member it registers at next.
 *
 * When Redis goes away the member keeps serving its own peers, says so
 * ("cluster" event, state "down"), refuses lookups at once, and connects
 * again every second until Redis is back ("up").
 */
#ifndef PUNCH_PUNCHD_CLUSTER_REDIS_H
#define PUNCH_PUNCHD_CLUSTER_REDIS_H

#include <stdbool.h>

#include "common/events.h"
#include "io/loop.h"
#include "server/cluster.h"
#include "server/rendezvous.h"

typedef struct punchd_cluster punchd_cluster;

typedef struct punchd_cluster_stats {
    uint64_t lookups;         /* CONNECTs for names not registered here */
    uint64_t lookups_failed;  /* of those, refused (cluster-lookup-failed events) */
    uint64_t introduced;      /* introductions across members, both sides */
    uint64_t intro_no_peer;   /* INTRO for a peer no longer registered here */
    uint64_t timeouts;        /* connections given up: Redis answered nothing for 2 s */
    uint64_t names_taken;     /* registrations refused: the name is another key's at
                                 another member */
    uint64_t moves;           /* INTROs sent again: a peer here in a relay session across
                                 members came back from a new endpoint */
    uint64_t moves_lost;      /* such news not sent: Redis was away */
    uint64_t intro_superseded; /* INTROs of a session our peer has left (news of a far
                                  peer that moved, come after it was introduced to another) */
    uint64_t turn_sent;       /* TURNs sent: a peer here with a relayed address at a TURN
                                 server, introduced across members */
    uint64_t turn_told;       /* TURNs taken: a TURN_ADDR to a peer here about its peer
                                 at another member */
    uint64_t halves_moved;    /* halves of relays across members moved to the member their
                                 far peer failed over to (cluster-relay-moved events) */
    uint64_t left_told;       /* a peer registered here had left another member that is
                                 alive: that member told (our record on its channel) */
    uint64_t left_passed;     /* such news passed on to the far member of a half held here
                                 for the peer that left */
} punchd_cluster_stats;

typedef struct punchd_cluster_cfg {
    punch_loop *loop;
    punch_rendezvous *rv;
    punch_events **events;         /* where punchd's events go (reopened on SIGHUP) */
    punch_addr redis;
    unsigned db;
    uint8_t secret[PUNCH_CLUSTER_SECRET_LEN];
    uint32_t record_ttl_ms;        /* the peers' expiry */
    /* Where other members send this member the relayed datagrams of
     * sessions across members (PUNCH_AF_NONE: no relay across members). */
    punch_addr relay_addr;
    /* Called (deferred to the end of the loop's turn) after the cluster
     * queued answers in rv: send them. */
    punch_loop_defer_fn drain;
    void *drain_arg;
} punchd_cluster_cfg;

/* redis://IP[:PORT][/DB] into *addr (port 6379 when none) and *db.
 * Returns 0 or -1. */
int punchd_cluster_parse_url(const char *text, punch_addr *addr, unsigned *db);

/* Read the secret file (at least 32 bytes; hashed to the key). Returns 0
 * or -1 (logged, naming the file). */
int punchd_cluster_read_secret(const char *path, uint8_t secret[PUNCH_CLUSTER_SECRET_LEN]);

/* Start connecting to Redis (a member without Redis keeps serving its own
 * peers and tries again every second). Returns 0 or -1 (logged). */
int punchd_cluster_new(punchd_cluster **c, const punchd_cluster_cfg *cfg);
void punchd_cluster_free(punchd_cluster *c);

/* Hand it each rendezvous event. Returns true when the event was the
 * cluster's alone (a LOOKUP, a refresh) and is not for the events file. */
bool punchd_cluster_on_event(punchd_cluster *c, const punch_rendezvous_event *ev);

/* For the counters event and /metrics. */
const punch_cluster_counters *punchd_cluster_counters(const punchd_cluster *c);
const punchd_cluster_stats *punchd_cluster_stats_get(const punchd_cluster *c);
/* ,"cluster_up":B,"cluster_...":N... for the counters event. */
void punchd_cluster_format_counters(const punchd_cluster *c, char *buf, size_t cap);
bool punchd_cluster_up(const punchd_cluster *c);

#endif
