/* SPDX-License-Identifier: MIT */
/*
 * The STUN Binding service of punchd, sans-I/O: RFC 8489 Binding answers,
 * RFC 3489 compatibility, and RFC 5780 behaviour discovery when the server
 * has a second IP address.
 *
 * The caller owns the sockets. It groups them per address family: a group is
 * one socket (no alternate) or four, local[ip][port] with ip/port index 0 for
 * the primary and 1 for the alternate (RFC 5780 §4.1: two IPs x two ports),
 * or two: one IP, two ports (has_second_port).
 * For each datagram it says which socket received it; the answer says which
 * socket to send from and to whom.
 */
#ifndef PUNCH_SERVER_BINDING_H
#define PUNCH_SERVER_BINDING_H

#include "punch/punch.h"
#include "server/ratelimit.h"

#define PUNCH_BINDING_MAX_GROUPS 8

typedef struct punch_binding_group {
    bool has_alt;            /* four sockets (RFC 5780) rather than one */
    /* Without has_alt: a second socket local[0][1] on another port of the
     * same IP, answering Binding like the first. A peer compares the two
     * mappings it sees (NAT discovery with one address); the answers name
     * no OTHER-ADDRESS, which RFC 5780 clients would take for a second IP. */
    bool has_second_port;
    punch_addr local[2][2];  /* [ip][port]; with has_alt all four concrete */
} punch_binding_group;

typedef struct punch_binding_cfg {
    size_t n_groups;
    punch_binding_group groups[PUNCH_BINDING_MAX_GROUPS];
    punch_ratelimit_cfg rate; /* answers per source IP (or IPv6 /64) */
} punch_binding_cfg;

typedef struct punch_binding_counters {
    uint64_t received;        /* datagrams handed in */
    uint64_t answered;        /* success responses produced */
    uint64_t errors;          /* error responses produced (400, 420) */
    uint64_t malformed;       /* dropped: not a well-formed STUN message */
    uint64_t not_request;     /* dropped: indications, responses */
    uint64_t unsupported;     /* dropped: other methods; classic CHANGE-REQUEST without --alt */
    uint64_t rate_limited;    /* dropped: source over its rate */
    uint64_t rate_limited_sources; /* times a source began to be over its rate */
    uint64_t no_room;         /* dropped: the answer did not fit the buffer */
} punch_binding_counters;

/* One received datagram. */
typedef struct punch_binding_in {
    uint64_t now_ms;
    size_t group;
    int ip, port;            /* which socket of the group: indices 0/1 */
    punch_addr src;          /* sender */
    punch_addr dst;          /* where it arrived (concrete when known) */
    const uint8_t *data;
    size_t len;
} punch_binding_in;

/* One answer: send out[0..len) from socket [ip][port] of the same group to dst. */
typedef struct punch_binding_out {
    int ip, port;
    bool changed;            /* sent from another socket than the one asked */
    punch_addr dst;
    size_t len;
} punch_binding_out;

typedef struct punch_binding_server punch_binding_server;

/* Returns 0, PUNCH_ERR_INVAL (bad group: alternate without concrete
 * addresses, too many groups) or PUNCH_ERR_NOMEM. */
int punch_binding_new(punch_binding_server **srv, const punch_binding_cfg *cfg);
void punch_binding_free(punch_binding_server *srv);

/* Handle one datagram. Returns 1 with an answer in buf/out, 0 when it is
 * dropped (and counted), or PUNCH_ERR_INVAL. buf should hold at least
 * in->len + 128 bytes; a smaller one drops answers that do not fit. */
int punch_binding_handle(punch_binding_server *srv, const punch_binding_in *in,
                         uint8_t *buf, size_t cap, punch_binding_out *out);

const punch_binding_counters *punch_binding_counters_get(const punch_binding_server *srv);

#endif
