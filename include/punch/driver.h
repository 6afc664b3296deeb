/* SPDX-License-Identifier: MIT */
/*
 * punch/driver.h: the ready-made I/O driver of libpunch: one punch_agent on
 * one UDP socket, run by a punch_loop (punch/io.h: punch_loop_run, or the
 * caller's own loop through punch_loop_fd, punch_loop_timeout_ms and
 * punch_loop_dispatch). It binds the socket, finds the machine's private endpoints
 * (every interface address, draft §3.3.2 and §4.2), feeds received
 * datagrams and time to the agent, sends what the agent queues and hands
 * the agent's events to a callback.
 *
 * TCP as the last resort (issue 5): when the server has not answered a
 * HELLO or REGISTER over UDP for tcp_fallback_ms (2 s by default; past
 * 250 ms the driver adds STUN Binding requests of its own every 250 ms,
 * and any answer keeps it on UDP, so only a path that drops all UDP falls
 * back, not a lossy one), the driver opens a TCP connection to the server's address and port and from
 * then on carries every datagram the agent addresses to the server over it,
 * framed (src/wire/frame.h); frames from it reach the agent as datagrams
 * from the server. The agent never knows. A connection not up in 10 s
 * counts as failed. Peer-to-peer datagrams stay on
 * UDP (where UDP is blocked they fail, and the agent takes the relay, which
 * goes through the server: over TCP). The connection is reopened with
 * backoff when it drops. While on TCP a STUN Binding request goes to the
 * server over UDP now and then (1 s, doubling to 60 s); when one is
 * answered UDP works after all (the first attempt was only unlucky), and
 * the driver goes back to it: the agent registers again over UDP, punchd
 * tells its peers, and hole punching can work again.
 *
 * TCP paths to peers (draft §3.5, §3.2): with PUNCH_AGENT_TCP the driver
 * asks every peer for one once a first path is up, and answers any peer's
 * offer: a new TCP port shared by a listener and connectors (§4.4), its
 * public endpoint from the server, simultaneous open or reversal, up to 3
 * tries; the connection is handed to the agent on a TCP socket index
 * (punch.h) and framed.
 *
 * The agent stays the caller's to use (punch_driver_agent): connect, send,
 * close with punch.h's calls, then punch_driver_flush. Events come to
 * on_event, never from punch_agent_poll_event (the driver drains it).
 * Threading: punch/io.h.
 */
#ifndef PUNCH_DRIVER_PUBLIC_H
#define PUNCH_DRIVER_PUBLIC_H

#include "punch/io.h"
#include "punch/punch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Long enough for 4 tries of a registration step over UDP (the agent's
 * 250 ms, doubling), short enough that a user behind a UDP-blocking
 * firewall does not wait long. */
#define PUNCH_DRIVER_TCP_FALLBACK_MS 2000u
/* Frames waiting for a slow TCP connection; past this datagrams are dropped. */
#define PUNCH_DRIVER_TCP_OUT_BYTES (64u * 1024)

typedef struct punch_driver punch_driver;
typedef void (*punch_driver_event_fn)(void *arg, punch_driver *d, const punch_event *ev);

typedef struct punch_driver_cfg {
    punch_agent_cfg agent;   /* local[] is filled from the interfaces when n_local is 0;
                                random defaults to the kernel's CSPRNG */
    punch_addr bind;         /* default: any address of the server's family, port 0 */
    uint32_t tcp_fallback_ms;  /* 0: PUNCH_DRIVER_TCP_FALLBACK_MS; UINT32_MAX: never */
    punch_driver_event_fn on_event;
    void *arg;
    /* agent.turn_server over TCP or TLS instead of UDP (punch --turn
     * turn://...?transport=tcp, turns://...; RFC 7065), through networks
     * that pass nothing but TCP: one connection carries the TURN messages
     * (RFC 8656 §12.5); the relayed address stays UDP. With TLS the
     * server's certificate must chain to turn_ca_file's CAs (NULL: the
     * system's) and name turn_host (a DNS name, also sent as SNI, or an
     * address). When the connection fails, cannot be verified or drops, an
     * error names the server (log and ATTEMPT event, technique turn). */
    uint8_t turn_transport;    /* PUNCH_DRIVER_TURN_UDP (0), _TCP or _TLS */
    const char *turn_host;
    const char *turn_ca_file;
} punch_driver_cfg;

enum { PUNCH_DRIVER_TURN_UDP = 0, PUNCH_DRIVER_TURN_TCP, PUNCH_DRIVER_TURN_TLS };

/* Make a driver on loop: the socket is bound, the agent starts
 * registering (cfg->agent is copied). Returns 0, PUNCH_ERR_IO (socket;
 * errno set), PUNCH_ERR_NOMEM or the agent's PUNCH_ERR_INVAL. */
int punch_driver_new(punch_driver **d, punch_loop *loop, const punch_driver_cfg *cfg);
/* Free the driver, its agent and its sockets (NULL-safe). Call
 * punch_agent_close for each peer and punch_driver_flush first for a
 * goodbye the peers hear at once. */
void punch_driver_free(punch_driver *d);

/* The driver's agent, for punch.h's calls (not punch_agent_free). */
punch_agent *punch_driver_agent(punch_driver *d);
/* Send what the agent queued and set the loop's timer to its next deadline:
 * call after using the agent directly (connect, send, close). */
void punch_driver_flush(punch_driver *d);
/* The socket's address as bound. */
const punch_addr *punch_driver_local(const punch_driver *d);
/* Where a path (a PATH event) leaves from: the interface address the
 * kernel picks towards its remote end, and the port of the socket it uses
 * (an extra socket of many-port probing, or ours). */
void punch_driver_path_local(const punch_driver *d, const punch_event_path *path,
                             punch_addr *out);

/* How datagrams to the server travel now: "udp" or "tcp". */
const char *punch_driver_transport(const punch_driver *d);
/* Over TCP, the server's address the connection goes to: the agent's
 * server's, or its address of the other family when only that one took
 * the connection (issue 16). NULL over UDP. */
const punch_addr *punch_driver_tcp_server(const punch_driver *d);

typedef struct punch_driver_stats {
    uint64_t tcp_fallbacks;    /* times UDP to the server was given up for TCP */
    uint64_t tcp_connects;     /* TCP connections to the server established */
    uint64_t tcp_failures;     /* connections that failed or dropped */
    uint64_t tcp_frames_in;    /* frames from the server handed to the agent */
    uint64_t tcp_frames_out;
    uint64_t tcp_dropped;      /* datagrams for the server dropped: no connection, or
                                  its output buffer was full */
    uint64_t udp_returns;      /* times a UDP probe was answered and UDP taken again */
    uint64_t extra_dropped;    /* many-port probing's datagrams not sent: no socket */
    uint64_t udp_unsent;       /* datagrams the kernel did not take (full socket buffer,
                                  an error such as unreachable) */
    /* TCP paths to peers (PUNCH_AGENT_TCP, or a peer's offer) */
    uint64_t tcp_paths;        /* connections up and handed to the agent */
    uint64_t tcp_path_failures;/* tries that failed (refused, timed out, ...) */
    uint64_t tcp_path_errors;  /* local socket errors */
    uint64_t tcp_path_refused; /* connections accepted from others than the peer, closed;
                                  offers past our capacity */
    uint64_t tcp_path_stale;   /* offers and answers of tries no longer under way */
    uint64_t tcp_path_dropped; /* datagrams not sent (no connection, buffer full) and
                                  frames from the server that were not our answer */
    uint64_t tcp_path_bad_frames; /* connections closed on a bad frame length */
} punch_driver_stats;

/* The driver's counters, valid as long as the driver. */
const punch_driver_stats *punch_driver_stats_get(const punch_driver *d);

/* The machine's interface addresses of this family (loopback excluded),
 * with port. Returns how many were written (at most cap). */
size_t punch_local_addresses(uint8_t family, uint16_t port, punch_addr *out, size_t cap);
/* Whether the machine has IPv6 and no IPv4 of its own: it reaches IPv4,
 * if at all, through a NAT64 (punch_agent_cfg.nat64_prefix). */
bool punch_local_ipv6_only(void);

#ifdef __cplusplus
}
#endif
#endif
