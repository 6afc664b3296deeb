/* SPDX-License-Identifier: MIT */
/*
 * Inside src/stream: the state stream.c (the streams, the stack's life) and
 * packets.c (usrsctp's side: packets out and in, socket options, the
 * peers' AF_CONN addresses) share. Not an interface: stream.h is.
 */
#ifndef PUNCH_STREAM_STREAM_INTERNAL_H
#define PUNCH_STREAM_STREAM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <usrsctp.h>

#include "stream/repair.h"
#include "stream/stream.h"

/* The SCTP port an accepting side listens on, on each peer's AF_CONN
 * address; openers take an ephemeral port. */
#define ACCEPT_PORT 5001
#define MAX_PEERS 64
/* Streams a peer may have opened that we have not accepted yet: accepting
 * runs once per batch of datagrams, and usrsctp ABORTs a new association
 * past this (punch forward opens one per TCP connection, hundreds at once). */
#define ACCEPT_BACKLOG 1024
#define IN_CHUNK 65536     /* one DATA message at most: well under the send buffer */
#define OUT_BUF 65536      /* the peer's bytes waiting for wfd */
#define SERVE_BUDGET (1u << 20) /* bytes one stream moves to wfd per serve */
#define OUT_ROOM 2048      /* read from SCTP only with this much room (control messages fit) */
#define TICK_MS 10         /* usrsctp's clock: its timers have 1 ms ticks; 10 ms is plenty */
#define TRACE_EVERY 10     /* ticks between two debug traces of the streams: 100 ms */
#define FLUSH_EVERY 64     /* the agent queues 256 datagrams: send them before it fills */
/* Each stream's SCTP send and receive buffers. The window a path needs is
 * its rate times SCTP's round trip, and under loss that round trip is the
 * path's plus a repair's hold (repair.c: 90-100 ms on the lab's 40 ms path
 * at 5 % loss per link); usrsctp also counts 256 bytes per chunk against
 * the receive window (sctp_peer_chunk_oh). 4 MiB: about 2,900 packets in
 * flight, which the repair ring (REPAIR_RING) must hold. */
#define SOCKET_BUF (4u << 20)
/* Chunks an association may have queued and in flight (usrsctp's
 * sctp_max_chunks_on_queue, 512 by default): above what SOCKET_BUF holds
 * in full packets, so the buffer is the limit. */
#define MAX_CHUNKS_QUEUED 8192
#define INITIAL_CWND_PACKETS 10
#define RTO_MIN_MS 120
/* RTO.Min once a stream is up (stream_set_data_rto). The loss repair under
 * SCTP (repair.c) holds what follows a lost packet for a round trip or
 * three, and SCTP's receiver then still delays its SACK (DELAYED_SACK_MS,
 * 40 ms then): 40 ms + 40 ms + 20 ms on the lab's 40 ms path for one try,
 * 100 ms more for two. With 120 ms a repair that took a second try ran out the sender's
 * T3-rtx timer (srtt 40 ms, rttvar small): cwnd back to one packet and, in
 * slow start, ssthresh at 4 packets, so the rest of a 16 MiB transfer grew
 * its window by one packet per round trip (lab.stream_loss at 0.1 of TCP
 * BBR). Linux TCP's floor is 200 ms. A longer path's RTO is its own. */
#define DATA_RTO_MIN_MS 250
/* How long SCTP's receiver may hold a SACK for a second packet. usrsctp's
 * sender never restarts its T3-rtx timer while data is in flight (its
 * express SACK path): the timer runs out every RTO or two of a bulk
 * transfer and then counts as lost whatever has waited longer than srtt +
 * 4 rttvar, not longer than the RTO (sctp_mark_all_for_resend), and cuts
 * cwnd to one packet. A flight's odd last packet, its SACK delayed 40 ms on
 * a 40 ms path, was old enough often: at 0 % loss 9 runs in 89 (16 MiB,
 * lab path of bench/stream_loss_bench.sh) fell to 1.5-5.9 MB/s, T3 every
 * 500 ms with nothing lost; with 10 ms, 0 in 50 (docs/streams.md). */
#define DELAYED_SACK_MS 10
#define RTO_MAX_MS 10000
/* A window a fast retransmit cut under this, on a path whose losses the
 * peer's repair conceals, starts over in slow start (stream.c
 * restart_if_cut): from 512 KB, one packet per round trip took 20 s to
 * double at the lab's loaded 80-100 ms; slow start from 10 packets gets
 * back in about ten round trips. */
#define RESTART_BELOW (512u << 10)
/* RFC 9260 §16: RTO.Initial 1 s, for a path nothing is known of. */
#define RTO_INITIAL_MS 1000
/* The setup (INIT, COOKIE-ECHO) of a stream on a path whose round trip the
 * agent measured waits 3 round trips before sending again, at least RTO.Min
 * (its answers are not delayed as SACKs are, but usrsctp refuses an
 * RTO.Initial under RTO.Min: EINVAL, and the stream could not open). */
#define SETUP_RTO_MIN_MS RTO_MIN_MS
/* ...and on a path the agent has just proven (a handshake message heard,
 * its PONG still to come) but not timed, this long: a setup packet sent
 * again too soon costs one small datagram, one lost costs this wait. */
#define SETUP_RTO_UNTIMED_MS 300
/* usrsctp counts no IP header on AF_CONN, but its packets come out one
 * common header (12 bytes) over the MTU it is given: measured, and checked
 * on every packet (oversize). */
#define SCTP_PATH_MTU (PUNCH_STREAM_MTU - 12)

typedef struct sctp_peer {
    punch_sctp *owner;
    int id;
    bool used, accept_pending;
    bool has_path;                 /* a PATH event came: packets can go */
    bool unsent;                   /* a packet found no path (SCTP waits to send it again) */
    uint32_t rtt_us;               /* of the path in use, as the agent measured it; 0: unknown */
    bool relayed;                  /* the path in use goes through punchd's relay */
    punch_repair *repair;          /* made with the first stream packet either way */
    struct socket *listener;
} sctp_peer;

/* How a file descriptor may be used without blocking the loop. */
typedef enum fd_kind {
    FD_NONBLOCK = 1, /* pipe or socket, set O_NONBLOCK: try any time */
    FD_ALWAYS,       /* regular file, /dev/null: not pollable, never blocks for long */
    FD_POLLED,       /* terminal and the like: read only once epoll said so */
} fd_kind;

struct punch_stream {
    punch_sctp *owner;
    sctp_peer *peer;
    struct socket *so;
    punch_stream *next;
    void *user;
    uint16_t service;
    bool opener, up, open_sent, open_got, attached, refused_by_us;
    bool fin_sent, fin_got, done_sent, done_got, shut, over;
    int cc;                        /* usrsctp congestion control module set; -1: the default */
    uint32_t cwnd_seen;            /* its window when stream.c watch_windows last looked */
    bool keep_wfd;                 /* the peer's FIN does not end wfd */
    int rfd, wfd;
    fd_kind rkind, wkind;
    int rflags, wflags;            /* original file status flags, restored at the end */
    bool r_watched, w_watched, r_ready, w_blocked, r_eof;
    unsigned r_events, w_events;   /* what the loop waits for now */
    size_t in_len, out_off, out_len;
    uint64_t sent, received;
    int result;
    char why[160];
    uint8_t in[IN_CHUNK];
    uint8_t out[OUT_BUF];
};

struct punch_sctp {
    punch_sctp_cfg cfg;
    punch_loop_timer tick;
    uint64_t last_tick;
    sctp_peer peers[MAX_PEERS];
    punch_stream *streams;
    unsigned since_flush;
    bool kick;                     /* an upcall came: serve the streams again */
    unsigned trace_ticks;          /* ticks counted for trace_streams */
    uint32_t seen_t3, seen_fr;     /* usrsctp's T3-rtx timeouts, fast retransmits at the last tick */
    punch_sctp_counters c;
};

/* ---- packets.c ---- */

/* usrsctp's output callback (usrsctp_init_nothreads): one SCTP packet to
 * the peer whose AF_CONN address addr is, as one tagged punch datagram. */
int stream_conn_output(void *addr, void *buf, size_t len, uint8_t tos, uint8_t set_df);
/* A stream socket's upcall (arg: its punch_sctp): there is work. */
void stream_upcall(struct socket *so, void *arg, int flags);
/* Peer p's AF_CONN address with this SCTP port. */
struct sockaddr_conn stream_conn_addr(sctp_peer *p, uint16_t port);
/* Options every stream socket (and listener) gets. Returns 0 or PUNCH_ERR_IO. */
int stream_set_options(struct socket *so);
void stream_set_path_mtu(punch_stream *st);
/* The congestion control for st's path (stream_cc_for): set when the
 * association comes up and when the path changes kind. */
void stream_set_cc(punch_stream *st);
/* Slow start over for st: its module's initial window, ssthresh at the
 * peer's window. Returns whether usrsctp took it. */
bool stream_restart_window(punch_stream *st);
/* RTO.Min of an association that is up: DATA_RTO_MIN_MS. */
void stream_set_data_rto(punch_stream *st);
/* RTO.Initial for a new stream to p from what is known of its path.
 * Returns 0 or PUNCH_ERR_IO. */
int stream_set_setup_rto(struct socket *so, const sctp_peer *p);
/* Peer id's state, made (with its listener when accepting) on first use;
 * NULL when id is out of range. */
sctp_peer *stream_peer_get(punch_sctp *s, int id);
/* A datagram with PUNCH_STREAM_TAG from peer: an SCTP packet. */
void stream_take_packet(punch_sctp *s, int peer, const uint8_t *data, size_t len);
/* Every peer's loss repair: the clock moved. */
void stream_repair_tick(punch_sctp *s, uint64_t now);
/* Forget peer p's loss repair (it left). */
void stream_repair_drop(sctp_peer *p);
/* Add the live peers' repair counters to c's (the gone peers' are in it). */
void stream_repair_counters_add(const punch_sctp *s, punch_sctp_counters *c);

/* ---- stream.c ---- */

/* Serve every stream until no upcall asks for more. */
void stream_serve_all(punch_sctp *s);
/* stream_serve_all as a punch_loop_defer callback. */
void stream_serve_deferred(void *arg);

#endif
