/* SPDX-License-Identifier: MIT */
/*
 * TCP for a simulated host (src/sim): enough of RFC 9293 to run the TCP
 * paths of src/core/tcp_path.h in virtual time. Sockets are named by the
 * ids tcp_path gives them. It sends SYN, SYN-ACK, ACK, RST and FIN
 * segments through the simulator's NATs (which track TCP flags, and drop
 * or RST unsolicited SYNs as configured), does the simultaneous open of
 * §3.4 of RFC 9293 (a SYN to a socket in SYN-SENT), retransmits a SYN after
 * 1 s, doubling, 3 times (the first SYN with the TTL asked for, the rest
 * with the full one), answers a SYN to a port nobody listens on with RST,
 * and carries one frame per data segment.
 *
 * Each socket has an ISN of its own, carried by its SYN and SYN-ACK (a
 * RESYN is a new socket on the same 4-tuple in the driver: a new ISN), so
 * a NAT with isn-check sees what Linux conntrack sees. An ICMP time
 * exceeded about a socket's SYN ends it in SYN-SENT and SYN-RECEIVED, as
 * Linux's tcp_v4_err does (one about another ISN is not for it).
 * Not modelled: sequence numbers past the handshake, retransmission of
 * data (run TCP over lossless links), windows.
 */
#ifndef PUNCH_SIM_TCP_H
#define PUNCH_SIM_TCP_H

#include "core/tcp_path.h"
#include "sim/sim.h"

#define PUNCH_SIM_TCP_SOCKS 64

typedef struct punch_sim_tcp_cb {
    /* A connection completed on listener `listener` from remote: the id it
     * gets, or 0 (it is reset). */
    uint32_t (*accept)(void *ctx, uint64_t now_ms, uint32_t listener, const punch_addr *remote);
    void (*result)(void *ctx, uint64_t now_ms, const punch_tcp_result *r);
    void (*frame)(void *ctx, uint64_t now_ms, uint32_t sock, const punch_addr *remote,
                  const uint8_t *data, size_t len);
    void *ctx;
} punch_sim_tcp_cb;

typedef struct punch_sim_tcp_sock {
    uint32_t id;
    uint8_t state;             /* 0: free */
    uint32_t listener;         /* a connection being accepted: its listener */
    punch_addr local, remote;
    unsigned syns;             /* SYNs sent */
    uint32_t isn;              /* its SYN's and SYN-ACK's sequence number */
    uint64_t resend_ms;        /* SYN-SENT: the next SYN */
} punch_sim_tcp_sock;

typedef struct punch_sim_tcp {
    punch_sim *sim;
    int host;
    punch_addr addr;           /* the host's address (port ignored) */
    punch_addr addr6;          /* ...its IPv6 one beside it (dual stack), AF_NONE: none */
    punch_sim_tcp_cb cb;
    uint16_t next_port;        /* for LISTEN on port 0 */
    uint32_t next_isn;         /* a clock's, as RFC 6528: later for each new socket */
    punch_sim_tcp_sock socks[PUNCH_SIM_TCP_SOCKS];
} punch_sim_tcp;

void punch_sim_tcp_init(punch_sim_tcp *t, punch_sim *sim, int host, const punch_addr *addr,
                        const punch_sim_tcp_cb *cb);
/* A dual-stack host: its IPv6 address, for sockets of that family. */
void punch_sim_tcp_set_addr6(punch_sim_tcp *t, const punch_addr *addr6);
/* Execute one of tcp_path's commands. */
void punch_sim_tcp_exec(punch_sim_tcp *t, uint64_t now_ms, const punch_tcp_cmd *c);
/* A TCP segment that arrived at the host. */
void punch_sim_tcp_segment(punch_sim_tcp *t, uint64_t now_ms, const punch_sim_datagram *d);
/* An ICMP time exceeded for a segment of ours (d->proto PUNCH_IP_ICMP):
 * the connect on that 4-tuple whose SYN it was about (d->tcp_seq) ends in
 * SYN-SENT or SYN-RECEIVED, as on Linux (PUNCH_TCP_UNREACHABLE); one
 * being accepted is forgotten. */
void punch_sim_tcp_icmp(punch_sim_tcp *t, uint64_t now_ms, const punch_sim_datagram *d);
/* Write one frame on a connected socket. Returns 0 or PUNCH_ERR_NOTFOUND. */
int punch_sim_tcp_write(punch_sim_tcp *t, uint32_t sock, const uint8_t *data, size_t len);
void punch_sim_tcp_timeout(punch_sim_tcp *t, uint64_t now_ms);
/* In ms; UINT64_MAX: none. */
uint64_t punch_sim_tcp_next_timeout(const punch_sim_tcp *t);

#endif
