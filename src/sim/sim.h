/* SPDX-License-Identifier: MIT */
/*
 * A discrete-event network simulator in virtual time (SPEC.md §2, tests/sim):
 * hosts, plain routers and NAT routers (src/nat) joined by point-to-point
 * links with delay, jitter, loss, duplication and reordering, all drawn from
 * one PRNG seeded by the caller. Same seed, same run: every delivery is
 * folded into a trace hash that tests compare.
 *
 * Time is microseconds (uint64_t) from 0; the NAT model inside NAT routers
 * runs on milliseconds (now_us / 1000).
 *
 * Sans-I/O endpoints attach to hosts: the simulator calls on_datagram() and
 * on_timeout() and asks next_timeout() after every call; an endpoint sends
 * with punch_sim_send(). Packets come from a pool and events sit in a binary
 * heap, both grown only when a run needs more than ever before, so a steady
 * run does not allocate.
 *
 * Routing: each node has a table of (prefix, length) -> link; longest
 * prefix wins. A host with no route sends everything on its first link.
 * A NAT router treats packets from a link marked inside as outbound
 * (unless they are routed to another inside link: a LAN), and every other
 * packet as inbound.
 */
#ifndef PUNCH_SIM_SIM_H
#define PUNCH_SIM_SIM_H

#include "nat/nat.h"
#include "nat/nat64.h"
#include "nat/portfwd.h"
#include "punch/punch.h"
#include "sim/rng.h"

#define PUNCH_SIM_MTU 1500
#define PUNCH_SIM_MAX_IFACES 8
#define PUNCH_SIM_TTL 64

typedef struct punch_sim punch_sim;

typedef struct punch_sim_cfg {
    uint64_t seed;
    size_t max_packets;  /* packets in flight at once, rounded up to 256; 0: 65536.
                          * Beyond it packets are dropped and counted. */
} punch_sim_cfg;

typedef struct punch_sim_link_cfg {
    uint64_t delay_us;   /* one way */
    uint64_t jitter_us;  /* extra uniform in [0, jitter_us] per packet */
    double loss;         /* probability a packet is lost */
    double dup;          /* probability a packet is delivered twice */
    double reorder;      /* probability a packet is held back by reorder_us */
    uint64_t reorder_us; /* 0: 2 x delay_us + 1 */
} punch_sim_link_cfg;

/* One end of a link: a node, its address on that link (AF_NONE for none)
 * and, for a NAT router, whether it is the inside. */
typedef struct punch_sim_end {
    int node;
    punch_addr addr;
    bool inside;
} punch_sim_end;

/* A datagram as an endpoint sees it. Sending: local is the source, remote
 * the destination. Receiving: local is where it arrived, remote the sender. */
typedef struct punch_sim_datagram {
    uint8_t proto;       /* PUNCH_IP_UDP (default when 0) or PUNCH_IP_TCP; received:
                            PUNCH_IP_ICMP, a TCP segment of ours ran out of TTL
                            (local and remote are that segment's, len 0) */
    uint8_t tcp_flags;
    uint32_t tcp_seq;    /* TCP: the segment's sequence number (a SYN's: its ISN);
                            ICMP: the one of the segment it is about */
    uint8_t ttl;         /* sending: the IP TTL, 0: PUNCH_SIM_TTL (receiving: 0) */
    punch_addr local, remote;
    const uint8_t *data;
    size_t len;
} punch_sim_datagram;

typedef struct punch_sim_endpoint {
    void (*on_datagram)(void *ctx, punch_sim *sim, int host, uint64_t now_us,
                        const punch_sim_datagram *d);
    void (*on_timeout)(void *ctx, punch_sim *sim, int host, uint64_t now_us); /* may be NULL */
    uint64_t (*next_timeout)(void *ctx); /* may be NULL; UINT64_MAX: none */
    void *ctx;
} punch_sim_endpoint;

typedef struct punch_sim_counters {
    uint64_t sent;             /* datagrams handed in by endpoints */
    uint64_t transmitted;      /* packets put on a link */
    uint64_t delivered;        /* datagrams given to an endpoint */
    uint64_t lost, duplicated, reordered;
    uint64_t nat_dropped, nat_rst, nat_hairpinned;
    uint64_t no_route, ttl_expired, no_endpoint, pool_full;
    uint64_t events;           /* events processed */
} punch_sim_counters;

/* Returns 0 or PUNCH_ERR_NOMEM / PUNCH_ERR_INVAL. */
int punch_sim_new(punch_sim **sim, const punch_sim_cfg *cfg);
void punch_sim_free(punch_sim *sim);
/* Forget the topology, packets, counters and trace; time back to 0; PRNG
 * reseeded. Keeps the memory of the pools, so scenario loops are cheap. */
void punch_sim_reset(punch_sim *sim, uint64_t seed);

/* Nodes. Each returns the node's id (>= 0) or PUNCH_ERR_NOMEM. */
int punch_sim_add_host(punch_sim *sim);
int punch_sim_add_router(punch_sim *sim);
/* A NAT router running the model with cfg (copied). When cfg->random is
 * NULL the simulator's PRNG is injected. Returns the id, PUNCH_ERR_NOMEM or
 * PUNCH_ERR_INVAL (the NAT refused cfg). */
int punch_sim_add_nat(punch_sim *sim, const punch_nat_cfg *cfg);

/* Join two nodes. Returns the link's id, or PUNCH_ERR_INVAL (bad node, too
 * many links on a node) or PUNCH_ERR_NOMEM. */
int punch_sim_link(punch_sim *sim, const punch_sim_end *a, const punch_sim_end *b,
                   const punch_sim_link_cfg *cfg);
/* Change a link's delay, jitter and loss from now on (a link that goes
 * down: loss 1). Packets on it already keep their delivery. Returns 0 or
 * PUNCH_ERR_INVAL (no such link). */
int punch_sim_link_set(punch_sim *sim, int link_id, const punch_sim_link_cfg *cfg);
/* Route prefix/len at node through link. Returns 0 or PUNCH_ERR_INVAL
 * (the link does not touch the node) or PUNCH_ERR_NOMEM. */
int punch_sim_route(punch_sim *sim, int node, const punch_addr *prefix, unsigned len, int link);
/* Attach an endpoint (copied) to a host. Returns 0 or PUNCH_ERR_INVAL. */
int punch_sim_attach(punch_sim *sim, int host, const punch_sim_endpoint *ep);

/* Send a datagram from host at the current time. Returns 0, or
 * PUNCH_ERR_INVAL (not a host, too long) or PUNCH_ERR_LIMIT (pool full). */
int punch_sim_send(punch_sim *sim, int host, const punch_sim_datagram *d);
/* Ask the host's endpoint for its next timeout again (after the caller
 * changed it from outside a callback). */
void punch_sim_wake(punch_sim *sim, int host);
/* How many of the routers' ICMP time exceeded for host's TCP segments
 * may still reach it (-1, the default: all); the rest are not sent, as by
 * routers whose ICMP rate limit for it is spent (Linux: one a second per
 * destination after a burst of six). */
void punch_sim_set_icmp(punch_sim *sim, int host, int budget);

/* Process the next event. Returns false when there is none. */
bool punch_sim_step(punch_sim *sim);
/* Process every event up to and including until_us, then set the clock to
 * until_us. Returns the number of events processed. */
uint64_t punch_sim_run(punch_sim *sim, uint64_t until_us);

uint64_t punch_sim_now(const punch_sim *sim);
uint64_t punch_sim_seed(const punch_sim *sim);
/* A hash of everything delivered, lost and translated so far. */
uint64_t punch_sim_trace_hash(const punch_sim *sim);
/* The simulator's PRNG, for endpoints that need randomness. */
punch_rng *punch_sim_rng(punch_sim *sim);
/* The NAT model of a NAT router, or NULL. */
punch_nat *punch_sim_nat(punch_sim *sim, int node);
/* A NAT router's port forwards (src/nat/portfwd.h: what a UPnP, NAT-PMP
 * or PCP service adds), asked before its NAT model, or NULL. */
punch_nat_fwd *punch_sim_nat_fwd(punch_sim *sim, int node);
/* Make NAT node a NAT64 (src/nat/nat64.h): IPv6 from its inside to the
 * prefix (NULL or bits 0: 64:ff9b::/96; any RFC 6052 length) leaves as IPv4 from a pool starting at
 * pool, through the node's NAT model; everything else from the inside is
 * dropped. Returns 0, PUNCH_ERR_INVAL or PUNCH_ERR_NOMEM. */
int punch_sim_nat_nat64(punch_sim *sim, int node, const punch_nat64_prefix *prefix,
                        const punch_addr *pool);
const punch_sim_counters *punch_sim_counters_get(const punch_sim *sim);

/* A reflector endpoint, like a STUN Binding server: answers every datagram
 * with the sender's address as it saw it (punch_sim_reflect_decode() reads
 * it). ctx is unused. */
extern const punch_sim_endpoint punch_sim_reflector;
/* Returns 0, or PUNCH_ERR_MALFORMED. */
int punch_sim_reflect_decode(const uint8_t *data, size_t len, punch_addr *seen);

#endif
