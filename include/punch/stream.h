/* SPDX-License-Identifier: MIT */
/*
 * punch/stream.h: reliable byte streams between two punch peers: usrsctp
 * (SCTP, RFC 9260: ordered, reliable, flow- and congestion-controlled) over
 * the agent's
 * authenticated datagrams, one SCTP association per stream, several at once
 * per peer. usrsctp runs without threads: its packets go out through
 * punch_agent_send (AF_CONN, one SCTP packet per punch datagram, never
 * fragmented) and come in from the driver, to which a punch_sctp attaches
 * as the consumer of the datagrams tagged PUNCH_STREAM_TAG (it hears each
 * peer's PATH and CLOSED events there too: the program passes nothing on);
 * its timers are ticked from a timer of the punch_loop. The wire format is
 * docs/protocol.md "Streams".
 *
 * A stream pipes file descriptors: bytes read from rfd go to the peer, the
 * peer's bytes are written to wfd (rfd and wfd may be one socket). The end
 * of rfd ends our direction only (FIN); the peer's FIN shuts wfd down for
 * writing when it is a socket. A stream is done when both directions ended
 * and each side confirmed it wrote out everything the other sent (DONE), or
 * when it fails; on_done says which.
 */
#ifndef PUNCH_STREAM_PUBLIC_H
#define PUNCH_STREAM_PUBLIC_H

#include <stdbool.h>
#include <stdint.h>

#include "punch/driver.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The first byte of every punch datagram that carries an SCTP packet, so
 * stream data is never taken for something else (e.g. a --datagram peer). */
#define PUNCH_STREAM_TAG 0x53
/* The largest SCTP packet: what fits one punch datagram after the tag and
 * the loss repair's header (5 bytes, src/stream/repair.h), rounded down to
 * SCTP's 4-byte chunk alignment. */
#define PUNCH_STREAM_MTU ((PUNCH_MAX_DATAGRAM - 1 - 5) & ~3u)

typedef struct punch_sctp punch_sctp;
typedef struct punch_stream punch_stream;

typedef struct punch_stream_result {
    int result;          /* 0: everything delivered both ways and confirmed;
                            PUNCH_ERR_UNSUPPORTED: refused (why says why);
                            another PUNCH_ERR_*: failed */
    char why[160];
    uint64_t bytes_sent, bytes_received;
} punch_stream_result;

typedef struct punch_sctp_cfg {
    punch_loop *loop;
    punch_driver *driver;
    bool accept;         /* take streams peers open (listen) */
    /* A peer opened a stream asking for service (0: the peer's stdin/stdout,
     * else a TCP port): call punch_stream_attach or punch_stream_refuse. */
    void (*on_open)(void *arg, punch_stream *st, int peer, uint16_t service);
    /* The stream ended; st is freed when this returns (its fds are not closed). */
    void (*on_done)(void *arg, punch_stream *st, const punch_stream_result *r);
    /* Every 10 ms while the SCTP clock runs (progress reports). */
    void (*on_tick)(void *arg, uint64_t now_ms);
    void *arg;
} punch_sctp_cfg;

typedef struct punch_sctp_counters {
    uint64_t packets_in, packets_out;
    uint64_t not_stream;   /* stream datagrams from peers past the 64 we serve, dropped */
    uint64_t oversize;     /* SCTP packets over PUNCH_STREAM_MTU, dropped (never seen so far) */
    uint64_t no_path;      /* SCTP packets that found no path to the peer (SCTP retransmits) */
    /* usrsctp's own drops of what came in: */
    uint64_t bad_checksum, bad_vtag, no_port, too_short, out_of_the_blue;
    /* usrsctp's sending, all associations: DATA chunks sent again after a
     * retransmission timeout (T3-rtx) or by fast retransmit, the T3-rtx
     * timeouts themselves, and SACK chunks sent. */
    uint64_t retransmits, fast_retransmits, timeouts, sacks_out;
    /* Of those timeouts, the ones that found the peer's window closed
     * (window-probe timeouts), and the window probes sent: a sender that
     * waits for a window update it never got (issue 14's slow mode). */
    uint64_t window_probe_timeouts, window_probes;
    /* Setting up: INIT and COOKIE-ECHO sent again after their timer fired
     * (each waited RTO.Initial or more: docs/protocol.md "Streams"). */
    uint64_t init_timeouts, cookie_timeouts;
    uint64_t path_kicks;   /* path changes that fired a backed-off retransmission timer at once */
    /* Loss repair under SCTP (src/stream/repair.h), all peers: packets we
     * sent again when asked, missing packets of the peers' mended before
     * SCTP saw a gap, and left to SCTP. */
    uint64_t repair_resent, repair_repaired, repair_given_up;
    uint64_t repair_malformed; /* stream datagrams whose repair header we could not read */
    /* Windows SCTP cut (a T3-rtx timeout, or a fast retransmit under 512 KB)
     * while the peer's repair concealed the path's losses, started over in
     * slow start (docs/streams.md "The second slow mode, under load"). */
    uint64_t window_restarts;
} punch_sctp_counters;

/* Attach to cfg->driver. usrsctp is one stack per process: one punch_sctp
 * at a time (the driver refuses a second on the same driver; nothing here
 * keeps process-wide state to refuse one on another driver). Returns 0,
 * PUNCH_ERR_LIMIT (the driver has a consumer of PUNCH_STREAM_TAG) or
 * PUNCH_ERR_NOMEM. */
int punch_sctp_new(punch_sctp **out, const punch_sctp_cfg *cfg);
/* Aborts the streams still open (no on_done). NULL-safe. */
void punch_sctp_free(punch_sctp *s);

/* Fill c with the counters of s. */
void punch_sctp_counters_get(const punch_sctp *s, punch_sctp_counters *c);

/* Open a stream to peer for service, piping rfd (-1: nothing to send) and
 * wfd. Packets wait for a path: SCTP retransmits until one exists. Returns
 * 0, PUNCH_ERR_NOMEM, PUNCH_ERR_LIMIT (loop full) or PUNCH_ERR_IO. */
int punch_stream_open(punch_sctp *s, int peer, uint16_t service, int rfd, int wfd, void *user,
                      punch_stream **out);
/* Serve an opened stream (from on_open) with rfd and wfd. Returns as above. */
int punch_stream_attach(punch_stream *st, int rfd, int wfd, void *user);
/* The peer's end of data leaves wfd open (it carries what a later stream
 * brings: punch listen --keep-open); call after attach or open. */
void punch_stream_keep_output(punch_stream *st);
/* Turn an opened stream down (from on_open); the opener's on_done gets why. */
void punch_stream_refuse(punch_stream *st, const char *why);
/* The user pointer given to punch_stream_open or punch_stream_attach. */
void *punch_stream_user(const punch_stream *st);
/* The peer id (punch.h) at the other end. */
int punch_stream_peer(const punch_stream *st);
/* Bytes carried so far: sent to the peer, received from it. */
void punch_stream_bytes(const punch_stream *st, uint64_t *sent, uint64_t *received);

#ifdef __cplusplus
}
#endif
#endif
