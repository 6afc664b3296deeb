/* SPDX-License-Identifier: MIT */
/*
 * TCP paths to peers (draft §3.5 TCP simultaneous open, §3.2 connection
 * reversal, and a direct connect to a public peer), as a sans-I/O state
 * machine: it decides when to listen and connect, from which port, to
 * where and with which TTL, and says so as commands the caller executes on
 * real sockets (src/driver/driver_tcp.c) or simulated ones (src/sim/tcp.c);
 * the caller reports what became of them as results. It reads no clock and
 * touches no socket; time comes in as now_ms, randomness from the config.
 *
 * It works beside one punch_agent: the offers and answers travel over the
 * agent's encrypted session (punch_agent_tcp_offer, PUNCH_EVENT_TCP_OFFER),
 * a connection that is up becomes one of the agent's candidates on a TCP
 * socket index (punch_agent_tcp_path), and a failed try is an ATTEMPT
 * event (punch_agent_tcp_failed). The caller hands it every agent event
 * (punch_tcp_paths_handle_event) before its own handling.
 *
 * A socket is named by a nonzero id the machine picks. The caller closes a
 * socket only when told (PUNCH_TCP_CLOSE), and at the end; after a result
 * that ends a socket (refused, timed out, closed, ...) it keeps the socket
 * until that command comes.
 */
#ifndef PUNCH_CORE_TCP_PATH_H
#define PUNCH_CORE_TCP_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "punch/punch.h"

/* Peers with a TCP path (or a try) at once. */
#define PUNCH_TCP_PATH_SLOTS 8
/* The first SYN of a simultaneous open: enough hops to leave the host and
 * its NAT, too few to reach the peer's (as the UDP openers, punch.h
 * open_ttl). */
#define PUNCH_TCP_OPEN_TTL 2

typedef struct punch_tcp_paths punch_tcp_paths;

typedef struct punch_tcp_paths_cfg {
    punch_agent *agent;         /* the agent whose peers these are (not owned) */
    punch_addr server;          /* punchd: says a TCP port's public endpoint (the one a
                                   REGISTERED event names from then on) */
    punch_addr server_other;    /* ...its address of the other family (AF_NONE: none
                                   yet; REGISTERED events of that family name it):
                                   a TCP path of that family (issue 16) */
    uint16_t udp_port;          /* the agent's UDP port: never used for TCP (punchd
                                   would take both for one peer) */
    size_t n_local;             /* this host's addresses of both families (ports
                                   ignored): an IPv4 TCP endpoint seen as one of them
                                   is public */
    punch_addr local[PUNCH_MAX_LOCAL];
    bool ask;                   /* ask every peer for a TCP path once its first path
                                   is up (PUNCH_AGENT_TCP) */
    uint8_t open_ttl;           /* the opening SYN's TTL; 0: PUNCH_TCP_OPEN_TTL;
                                   255: no opening SYN (both SYNs full, one side
                                   first: the old race, for comparison) */
    void (*random)(void *ctx, uint8_t *buf, size_t len);
    void *random_ctx;
} punch_tcp_paths_cfg;

typedef enum punch_tcp_cmd_kind {
    PUNCH_TCP_LISTEN = 1, /* open sock, bind it to local (port 0: any) with
                             SO_REUSEADDR/SO_REUSEPORT (§4.4), listen; answer
                             LISTENING with the address bound, or FAILED */
    PUNCH_TCP_CONNECT,    /* open sock, bind it to local, connect to remote, the
                             SYN with ttl (0: the system's); answer CONNECTED,
                             REFUSED, UNREACHABLE, TIMED_OUT or FAILED */
    PUNCH_TCP_RESYN,      /* connecting sock: when its SYN is still unanswered,
                             send a SYN again at once with the system's TTL (on
                             Linux: close it and connect again from the same
                             port to the same place, under the same id); when
                             the peer's SYN came in meanwhile, leave it. Results
                             as for CONNECT */
    PUNCH_TCP_SEND,       /* write data[0..len) on connected sock */
    PUNCH_TCP_CLOSE,      /* close sock (no longer needed, or failed) */
} punch_tcp_cmd_kind;

#define PUNCH_TCP_CMD_DATA 64

typedef struct punch_tcp_cmd {
    punch_tcp_cmd_kind kind;
    uint32_t sock;
    punch_addr local, remote;
    uint8_t ttl;
    size_t len;
    uint8_t data[PUNCH_TCP_CMD_DATA];
} punch_tcp_cmd;

typedef enum punch_tcp_result_kind {
    PUNCH_TCP_LISTENING = 1, /* sock listens at local */
    PUNCH_TCP_CONNECTED,     /* sock's connection is up */
    PUNCH_TCP_REFUSED,       /* sock's SYN was answered with a RST */
    PUNCH_TCP_UNREACHABLE,   /* an ICMP error for sock's SYN (time exceeded,
                                unreachable): it died on the way */
    PUNCH_TCP_TIMED_OUT,     /* the system gave up connecting sock */
    PUNCH_TCP_FAILED,        /* a local error (bind, connect, write) */
    PUNCH_TCP_CLOSED,        /* sock's connection ended (why says how) */
} punch_tcp_result_kind;

typedef struct punch_tcp_result {
    punch_tcp_result_kind kind;
    uint32_t sock;
    punch_addr local;        /* LISTENING: where */
    const char *why;         /* FAILED, CLOSED: in words; may be NULL */
} punch_tcp_result;

typedef struct punch_tcp_paths_counters {
    uint64_t paths;          /* connections up and handed to the agent */
    uint64_t failures;       /* tries that failed (refused, timed out, ...) */
    uint64_t errors;         /* local socket errors */
    uint64_t refused;        /* connections accepted from others than the peer;
                                offers past our capacity */
    uint64_t stale;          /* offers and answers of tries no longer under way */
    uint64_t early_rst;      /* first tries' full SYNs sent at the opener's ICMP
                                error and answered with RST: reopened */
    uint64_t dropped;        /* frames on a try's sockets that were not for us */
    uint64_t opened;         /* opening (low-TTL) SYNs sent */
    uint64_t reopened;       /* simultaneous-open SYNs answered with RST and the
                                NAT opened again by a low-TTL SYN (REOPENS) */
} punch_tcp_paths_counters;

/* Returns 0, PUNCH_ERR_INVAL (no agent or random) or PUNCH_ERR_NOMEM. */
int punch_tcp_paths_new(punch_tcp_paths **tp, const punch_tcp_paths_cfg *cfg);
/* NULL-safe. Sockets still open are the caller's to close. */
void punch_tcp_paths_free(punch_tcp_paths *tp);

/* One of the agent's events (PATH, TCP_OFFER and CLOSED matter). */
void punch_tcp_paths_handle_event(punch_tcp_paths *tp, uint64_t now_ms, const punch_event *ev);
/* What became of a command. Results for sockets no longer wanted are ignored. */
void punch_tcp_paths_handle_result(punch_tcp_paths *tp, uint64_t now_ms,
                                   const punch_tcp_result *r);
/* Listening sock accepted a connection from remote. Returns the id the
 * connection now has, or 0: close it (not the peer's, §6.1, or not now). */
uint32_t punch_tcp_paths_handle_accept(punch_tcp_paths *tp, uint64_t now_ms, uint32_t sock,
                                       const punch_addr *remote);
/* One frame read from connected sock (src/wire/frame.h). */
void punch_tcp_paths_handle_frame(punch_tcp_paths *tp, uint64_t now_ms, uint32_t sock,
                                  const uint8_t *data, size_t len);
void punch_tcp_paths_handle_timeout(punch_tcp_paths *tp, uint64_t now_ms);
/* UINT64_MAX: none. */
uint64_t punch_tcp_paths_next_timeout(const punch_tcp_paths *tp);
/* Returns 1 and fills *cmd, or 0 when there is none. Drain after every call. */
int punch_tcp_paths_poll_command(punch_tcp_paths *tp, punch_tcp_cmd *cmd);

/* The socket that carries the agent's TCP socket index agent_sock (its
 * datagrams go there as frames), or 0. */
uint32_t punch_tcp_paths_sock_for(const punch_tcp_paths *tp, punch_socket agent_sock);
const punch_tcp_paths_counters *punch_tcp_paths_counters_get(const punch_tcp_paths *tp);

#endif
