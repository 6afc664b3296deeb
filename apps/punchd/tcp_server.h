/* SPDX-License-Identifier: MIT */
/*
 * punchd's TCP side, the last resort for peers whose network drops UDP:
 * listening sockets, a bounded set of connections, each carrying framed
 * datagrams (src/wire/frame.h). Every complete frame goes to a callback
 * with the connection's remote address as its source, as if it were a UDP
 * datagram from there, so the sans-I/O rendezvous serves it unchanged; its
 * answers to that address come back through punch_tcp_server_send.
 *
 * Limits: at most max_conns connections (more are accepted and closed at
 * once, counted), at most per_ip_max of them from one source (IPv4
 * address or IPv6 /64, so one source cannot take every slot), new
 * connections per source within a rate, a registration (REGISTERED sent on
 * it) within unregistered_ms and then at least every idle_ms (a slow-loris
 * sender, or one sending garbage or HELLOs, is closed), and a bounded
 * output buffer per connection (a frame that does not fit is dropped and
 * counted). A malformed length (0, or over PUNCH_FRAME_MAX) closes the
 * connection. Nothing is allocated per frame.
 */
#ifndef PUNCH_PUNCHD_TCP_SERVER_H
#define PUNCH_PUNCHD_TCP_SERVER_H

#include "punch/punch.h"
#include "server/ratelimit.h"

#define PUNCH_TCP_SERVER_DEFAULT_MAX_CONNS 1024
/* A peer needs one connection; a NAT of a few dozen hosts, that many.
 * Counted per IPv4 address or IPv6 /64 (one host holds a whole /64). */
#define PUNCH_TCP_SERVER_DEFAULT_PER_IP 32
#define PUNCH_TCP_SERVER_MAX_LISTENERS 32
/* A connection must be registered (punchd answered REGISTERED on it) this
 * fast: a HELLO, a REGISTER and their answers take a few round trips; a
 * STUN Binding over TCP one... */
#define PUNCH_TCP_SERVER_DEFAULT_UNREGISTERED_MS 10000u
/* ...and then registered again at least this often: punchd's peer expiry
 * (3 keepalives of 25 s + 15 s), so a registered peer's keepalives always
 * keep it. Other frames, garbage included, never extend a connection. */
#define PUNCH_TCP_SERVER_DEFAULT_IDLE_MS 90000u
/* Frames waiting for a slow reader, per connection: 128 relayed datagrams
 * of 256 bytes, or 16 of the largest. */
#define PUNCH_TCP_SERVER_DEFAULT_OUT_BYTES (32u * 1024)

typedef void (*punch_tcp_server_frame_fn)(void *arg, uint64_t now_ms, const punch_addr *src,
                                          const punch_addr *local, const uint8_t *data,
                                          size_t len);

typedef struct punch_tcp_server_cfg {
    size_t max_conns;          /* 0: the defaults above */
    size_t per_ip_max;
    uint32_t unregistered_ms;
    uint32_t idle_ms;
    size_t out_bytes;
    punch_ratelimit_cfg rate;  /* new connections per source IP (per_sec 0: unlimited) */
    punch_tcp_server_frame_fn on_frame;
    void *arg;
} punch_tcp_server_cfg;

typedef struct punch_tcp_server_counters {
    uint64_t accepted;
    uint64_t refused_full;     /* closed at once: max_conns reached */
    uint64_t rate_limited;     /* closed at once: the source IP opened too many too fast */
    uint64_t rate_limited_sources; /* times a source IP began to open too many too fast */
    uint64_t refused_per_ip;   /* closed at once: the source IP holds per_ip_max already */
    uint64_t closed;           /* every close, for whatever reason (the peer's included) */
    uint64_t idle_closed;      /* not registered in time (slow loris, garbage, silent peer) */
    uint64_t bad_frames;       /* a length of 0 or over PUNCH_FRAME_MAX: closed */
    uint64_t truncated;        /* the stream ended inside a frame */
    uint64_t errors;           /* read or write errors (reset, ...): closed */
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t out_dropped;      /* frames not sent: the connection's buffer was full */
    uint64_t connections;      /* open now */
} punch_tcp_server_counters;

typedef struct punch_tcp_server punch_tcp_server;

/* Returns 0, PUNCH_ERR_INVAL (no on_frame, max_conns over 2^20) or
 * PUNCH_ERR_NOMEM. */
int punch_tcp_server_new(punch_tcp_server **srv, const punch_tcp_server_cfg *cfg);
void punch_tcp_server_free(punch_tcp_server *srv);

/* Listen on a. *bound gets the address bound. Returns 0, PUNCH_ERR_LIMIT or
 * PUNCH_ERR_IO (errno set). */
int punch_tcp_server_listen(punch_tcp_server *srv, const punch_addr *a, punch_addr *bound);

/* One descriptor for the caller's loop: readable when any listener or
 * connection has work; then call punch_tcp_server_run. */
int punch_tcp_server_fd(const punch_tcp_server *srv);
void punch_tcp_server_run(punch_tcp_server *srv, uint64_t now_ms);

/* Whether a connection comes from addr (its remote address and port). */
bool punch_tcp_server_holds(const punch_tcp_server *srv, const punch_addr *addr);
/* Send a datagram to the connection from dst. Returns 1 (queued or sent), 0
 * (no connection from dst: use UDP) or PUNCH_ERR_NOBUFS (dropped, counted). */
int punch_tcp_server_send(punch_tcp_server *srv, const punch_addr *dst, const uint8_t *data,
                          size_t len);

uint64_t punch_tcp_server_next_timeout(const punch_tcp_server *srv);
/* Close connections that missed their frame deadline. */
void punch_tcp_server_handle_timeout(punch_tcp_server *srv, uint64_t now_ms);

const punch_tcp_server_counters *punch_tcp_server_counters_get(const punch_tcp_server *srv);

#endif
